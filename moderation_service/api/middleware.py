"""ASGI middleware: authentication before the body is read, a body-size limit and read timeout, and the per-request log and metrics."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moderation_service.api.problems import problem
from moderation_service.api.state import ARRIVED
from moderation_service.errors import AuthError, ForbiddenError
from moderation_service.metrics import Metrics

__all__ = ["AuthFirst", "BodyLimit", "RequestLog"]

log = logging.getLogger("moderation_service.requests")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413 (declared or chunked) before they are read into memory, and
    answer 408 when a client stops sending its body for ``read_timeout_s`` (a slow client cannot hold a worker)."""

    def __init__(self, app: ASGIApp, limit: int, read_timeout_s: float = 30.0) -> None:
        self.app = app
        self.limit = limit
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        stopped: list[str] = []  # why the body read was cut short: "too_large" or "timeout"

        async def counted() -> Message:
            nonlocal seen
            try:
                async with asyncio.timeout(self.read_timeout_s):  # no extra task per message, as wait_for makes
                    message = await receive()
            except TimeoutError:
                stopped.append("timeout")
                raise _Stopped from None
            seen += len(message.get("body", b""))
            if seen > self.limit:
                stopped.append("too_large")
                raise _Stopped
            return message

        async def guarded(message: Message) -> None:
            # Once the read was cut short, the app's own answer (FastAPI turns the error into a 400) is dropped.
            if not stopped:
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _Stopped:
            pass
        if stopped and stopped[0] == "too_large":
            await self._refuse(scope, receive, send)
        elif stopped:
            response = problem(408, "request_timeout", "Request timeout", f"the body was not received within {self.read_timeout_s:g} s")
            await response(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, "body_too_large", "Body too large", f"request bodies are limited to {self.limit} bytes")
        await response(scope, receive, send)


class _Stopped(Exception):
    pass


class AuthFirst:
    """Check the bearer key of every ``/v1`` request before its body is read or parsed: a stranger gets 401,
    never a JSON parse error, and spends no parsing. The route's own dependency still checks the scope (403)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = getattr(getattr(scope.get("app"), "state", None), "moderation", None)
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or state is None:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        kind, _, token = header.partition(" ")
        try:
            state.keys.authenticate(token.strip() if kind.lower() == "bearer" else None, "moderate")
        except ForbiddenError:
            pass  # a valid key: the route decides whether its scope fits
        except AuthError as exc:
            response = problem(401, "unauthorized", "Unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestLog:
    """One JSON log line and the HTTP metrics per request, labelled by route template (never raw paths), and a
    ``Server-Timing: app;dur=MS`` header on every answer."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})[ARRIVED] = time.monotonic()  # routes' time budgets count from here
        offered = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                # Server-Timing: the time this process spent before answering, so a client (or a benchmark)
                # can tell the server's share of the latency from the network's and its own.
                timing = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode()), (b"server-timing", timing)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            latency = time.perf_counter() - started
            self.metrics.requests.labels(route=route, method=scope["method"], status=str(status["code"])).inc()
            self.metrics.request_latency.labels(route=route).observe(latency)
            if route not in ("/metrics", "/healthz", "/readyz"):
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "route": route,
                        "method": scope["method"],
                        "status": status["code"],
                        "latency_ms": round(latency * 1000, 2),
                    },
                )
