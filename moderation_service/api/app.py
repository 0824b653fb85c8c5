"""The FastAPI app factory: keys, routes and middleware here; the service parts come from ``bootstrap``.

Rulebooks and models load in the lifespan hook (not at import, not in the factory), so building an
app is cheap and a test can build one per case. ``services`` lets a caller hand in parts it built.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.registry import Collector

from moderation_service import bootstrap
from moderation_service.api.compat import coral, perspective
from moderation_service.api.middleware import AuthFirst, BodyLimit, RequestLog
from moderation_service.api.problems import install_problem_handlers
from moderation_service.api.routes import escalations, health, moderate, rulebooks, signposting, submissions
from moderation_service.api.state import AppState, services_of, state_of
from moderation_service.config import Settings
from moderation_service.console import Access
from moderation_service.console import create_router as console_router
from moderation_service.logs import configure_logging
from moderation_service.metrics import ModelRunCollector, QueueCollector, scrape_registry
from moderation_service.service import Services
from moderation_service.service.rulebook_sync import start_follower
from moderation_service.service.rulebooks import publish_versions, reload_quietly

__all__ = ["app_from_env", "create_app"]


def create_app(settings: Settings, registry: CollectorRegistry | None = None, services: Services | None = None) -> FastAPI:
    configure_logging(settings.log_level)
    keys = bootstrap.load_keys(settings)
    process_registry, metrics = bootstrap.build_metrics(registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Parts handed in (tests sharing one pipeline) still count into this app's own metrics.
        if services is None:
            parts = bootstrap.build_services(settings, metrics)
        else:
            parts = dataclasses.replace(services, metrics=metrics)
            publish_versions(parts)
        if parts.store is not None:
            keys.watch_revocations(parts.store.revoked_keys)  # `keys revoke` reaches this process within seconds
        app.state.moderation = AppState(keys, parts)
        collectors: list[Collector] = [ModelRunCollector(parts.pipeline.runs)]
        if parts.store and parts.queue:
            collectors.append(QueueCollector(parts.store, parts.queue.names))
        app.state.scrape_registry = scrape_registry(process_registry, collectors)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, reload_quietly, parts)
        follower = start_follower(parts)  # reloads published by any process reach this one within seconds
        yield
        follower.stopping.set()
        if services is None:
            parts.close()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    app = FastAPI(title="moderation-service", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    for module in (health, moderate, rulebooks, signposting, submissions, escalations, perspective, coral):
        app.include_router(module.router)
    app.include_router(console_router(Access(services_of, lambda request: state_of(request).keys)))
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes, read_timeout_s=settings.api.body_read_timeout_s)
    app.add_middleware(AuthFirst)  # outside BodyLimit: a stranger's body is never read
    app.add_middleware(RequestLog, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.scrape_registry), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory (``moderation_service.api.app:app_from_env``) for several worker processes."""
    return create_app(bootstrap.load_settings())
