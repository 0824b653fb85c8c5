"""The FastAPI app factory: settings, keys and routes here; rulebooks and models in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moderation_service.api.compat import coral, perspective
from moderation_service.api.problems import install_problem_handlers, problem
from moderation_service.api.routes import escalations, health, moderate, rulebooks, signposting, submissions
from moderation_service.api.state import AppState
from moderation_service.classifiers.base import create_classifier
from moderation_service.config import Settings
from moderation_service.errors import ConfigError, RulebookError
from moderation_service.keys import KeyStore
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


def build_pipeline(settings: Settings) -> Pipeline:
    """Everything the core needs, loaded once per process (API or worker)."""
    directory = load_directory(settings.rules_dir / "signposting")
    books = RulebookSet(settings.rules_dir, settings.default_rulebook, directory.helpline_numbers())
    books.reload()
    classifiers = [create_classifier(name, settings) for name in settings.classifier_names]
    pipeline = Pipeline(
        books,
        directory,
        classifiers,
        fallback_action=settings.fallback_action,
        classifier_timeout_s=settings.classifier_timeout_s,
        max_text_chars=settings.max_text_chars,
        default_locale=settings.default_locale,
        classifier_threads=settings.classifier_threads,
    )
    return pipeline


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413 before they are read into memory."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, "body_too_large", "Body too large", f"request bodies are limited to {self.limit} bytes")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    keys = load_keys(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pipeline = build_pipeline(settings)
        app.state.moderation = AppState(settings, keys, pipeline, store_from_settings(settings))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, _reload_on_signal, pipeline.rulebooks)
        yield
        pipeline.close()

    app = FastAPI(title="moderation-service", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    for module in (health, moderate, rulebooks, signposting, submissions, escalations, perspective, coral):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


def _reload_on_signal(books: RulebookSet) -> None:
    try:
        versions = books.reload()
    except RulebookError as exc:
        log.error("rulebook reload refused; last good rulebooks stay live", extra={"problems": [str(p) for p in exc.problems]})
        return
    log.info("rulebooks reloaded", extra={"versions": versions})
