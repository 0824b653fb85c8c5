"""ASGI middleware: a body-size limit applied before reading, and the per-request log and metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moderation_service.api.problems import problem
from moderation_service.metrics import Metrics

__all__ = ["BodyLimit", "RequestLog"]

log = logging.getLogger("moderation_service.requests")


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


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestLog:
    """One JSON log line and the HTTP metrics per request, labelled by route template (never raw paths)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        offered = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
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
