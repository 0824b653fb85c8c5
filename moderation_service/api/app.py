"""The FastAPI app factory: settings, keys and routes here; rulebooks and models in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from moderation_service.api.compat import coral, perspective
from moderation_service.api.middleware import BodyLimit, RequestLog
from moderation_service.api.problems import install_problem_handlers
from moderation_service.api.routes import escalations, health, moderate, rulebooks, signposting, submissions
from moderation_service.api.state import AppState
from moderation_service.classifiers.base import create_classifier
from moderation_service.config import Settings
from moderation_service.crisis import CrisisDetector, LanguageDetector, load_grammars
from moderation_service.errors import ConfigError, RulebookError
from moderation_service.keys import KeyStore
from moderation_service.logs import configure_logging
from moderation_service.metrics import Metrics, QueueCollector, create_metrics, scrape_registry
from moderation_service.pipeline import Pipeline
from moderation_service.queue import store_from_settings
from moderation_service.rulebook.registry import RulebookSet
from moderation_service.signposting import load_directory

__all__ = ["build_pipeline", "create_app", "load_keys"]

log = logging.getLogger(__name__)


def load_keys(settings: Settings) -> KeyStore:
    """Keys from the keys file and/or the env var; refuse to run with none."""
    text = settings.api_keys
    if settings.api_keys_file is not None:
        try:
            text += "\n" + settings.api_keys_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read API keys file {settings.api_keys_file}: {exc.strerror}") from exc
    keys = KeyStore.from_lines(text, source=str(settings.api_keys_file or "MODERATION_API_KEYS"))
    if not len(keys):
        raise ConfigError("no API keys configured: set MODERATION_API_KEYS_FILE (see `moderation-service keys create`)")
    return keys


def build_pipeline(settings: Settings, metrics: Metrics | None = None) -> Pipeline:
    """Everything the core needs, loaded once per process (API or worker)."""
    directory = load_directory(settings.rules_dir / "signposting")
    books = RulebookSet(settings.rules_dir, settings.default_rulebook, directory.helpline_numbers())
    books.reload()
    classifiers = [create_classifier(name, settings) for name in settings.classifier_names]
    crisis = CrisisDetector(load_grammars(settings.rules_dir / "crisis", compile_now=("en",)), LanguageDetector())
    crisis.warm(background=True)
    pipeline = Pipeline(
        books,
        directory,
        classifiers,
        crisis=crisis,
        fallback_action=settings.fallback_action,
        classifier_timeout_s=settings.classifier_timeout_s,
        timeout_per_kchar_s=settings.classifier_timeout_per_kchar_s,
        max_text_chars=settings.max_text_chars,
        default_locale=settings.default_locale,
        classifier_threads=settings.classifier_threads,
        metrics=metrics,
    )
    if metrics is not None:
        metrics.set_versions(((b.name, b.version) for b in books.all()), pipeline.model_versions)
    return pipeline


def create_app(settings: Settings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    keys = load_keys(settings)
    process_registry = registry or CollectorRegistry()
    metrics = create_metrics(process_registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pipeline = build_pipeline(settings, metrics)
        store = store_from_settings(settings)
        app.state.moderation = AppState(settings, keys, pipeline, store)
        collectors = [QueueCollector(store, [settings.queue_name, f"{settings.queue_name}-webhooks"])] if store else []
        app.state.scrape_registry = scrape_registry(process_registry, collectors)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, _reload_on_signal, pipeline.rulebooks)
        yield
        pipeline.close()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    app = FastAPI(title="moderation-service", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    for module in (health, moderate, rulebooks, signposting, submissions, escalations, perspective, coral):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestLog, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.scrape_registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _reload_on_signal(books: RulebookSet) -> None:
    try:
        versions = books.reload()
    except RulebookError as exc:
        log.error("rulebook reload refused; last good rulebooks stay live", extra={"problems": [str(p) for p in exc.problems]})
        return
    log.info("rulebooks reloaded", extra={"versions": versions})
