"""RFC 9457 problem+json for every error, mapped from the service's exception tree in one place.

Validation errors list where and what, never the offending input: a post's text must not be
echoed into an error body that a proxy or a client might log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from moderation_service.errors import (
    AuthError,
    ForbiddenError,
    IdempotencyConflict,
    InputError,
    NotFoundError,
    RulebookError,
    StoreUnavailable,
    TextTooLongError,
    UnknownRulebookError,
)

__all__ = ["API_PROBLEMS", "PROBLEM_JSON", "install_problem_handlers", "problem", "problem_responses"]

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


_DESCRIPTIONS = {
    400: "Invalid JSON (not UTF-8, malformed, or nested too deeply)",
    401: "Missing or invalid API key",
    403: "The key lacks the scope this route needs",
    404: "No such resource, or unknown community (with the known ones)",
    405: "Method not allowed (the Allow header lists the methods)",
    408: "The request body was not received in time",
    409: "post_id already submitted with other text",
    413: "Body or text too long",
    422: "The request does not match the schema, or an item is invalid",
    503: "Redis is unreachable or not configured; retry after Retry-After seconds",
}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "additionalProperties": True,
}
API_PROBLEMS = (400, 401, 403, 404, 405, 408, 413, 422, 503)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a router: each error it can answer, as RFC 9457 problem+json (never plain JSON)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        headers: dict[str, Any] = {}
        if status == 401:
            headers["WWW-Authenticate"] = {"schema": {"type": "string"}, "description": "Bearer"}
        if status == 405:
            headers["Allow"] = {"schema": {"type": "string"}, "description": "the allowed methods"}
        if status == 503:
            headers["Retry-After"] = {"schema": {"type": "string"}, "description": "seconds"}
        out[status] = {"description": _DESCRIPTIONS[status], "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}, "headers": headers}
    return out


def problem(status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": f"urn:moderation-service:problem:{code}", "title": title, "status": status, "detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]


_PLACES = {"query": "query parameter", "path": "path parameter", "header": "header", "cookie": "cookie"}


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    """Name each bad parameter (``query parameter 'format': Input should be 'html' or 'md'``); the body only in general.

    Pydantic's messages state what was expected, never the value sent.
    """
    parts = []
    for e in errors:
        loc = e["loc"]
        if loc and loc[0] in _PLACES:
            parts.append(f"{_PLACES[loc[0]]} {'.'.join(str(p) for p in loc[1:])!r}: {e['msg']}")
    if any(not e["loc"] or e["loc"][0] not in _PLACES for e in errors):
        parts.append("the request body does not match the schema")
    return "; ".join(dict.fromkeys(parts))


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "invalid_json", "Invalid JSON", "the request body is not valid JSON (UTF-8)")
        return problem(422, "validation_error", "Invalid request", _validation_detail(errors), errors=errors)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return problem(503, "store_unavailable", "Try again shortly", str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return problem(409, "idempotency_conflict", "Conflict", str(exc))

    @app.exception_handler(TextTooLongError)
    async def _too_long(request: Request, exc: TextTooLongError) -> JSONResponse:
        return problem(413, "text_too_long", "Text too long", str(exc), limit=exc.limit)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        return problem(422, "invalid_input", "Invalid input", str(exc))

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return problem(404, "not_found", "Not found", str(exc))

    @app.exception_handler(UnknownRulebookError)
    async def _unknown(request: Request, exc: UnknownRulebookError) -> JSONResponse:
        return problem(404, "unknown_community", "Unknown community", str(exc), known=exc.known)

    @app.exception_handler(ForbiddenError)
    async def _forbidden(request: Request, exc: ForbiddenError) -> JSONResponse:
        return problem(403, "forbidden", "Forbidden", str(exc))

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        return problem(401, "unauthorized", "Unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RulebookError)
    async def _rulebook(request: Request, exc: RulebookError) -> JSONResponse:
        problems = [{"file": p.file, "line": p.line, "rule_id": p.rule_id, "message": p.message} for p in exc.problems]
        return problem(
            422, "rulebook_invalid", "Rulebook refused", "the new rulebook is invalid; the last good one stays live", problems=problems
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI raises a plain 400 only when it cannot parse the body (e.g. nesting too deep).
        codes = {400: "invalid_json", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        code = codes.get(exc.status_code, "http_error")
        # Keep the exception's headers: a 405 must say which methods are allowed (Allow).
        return problem(exc.status_code, code, code.replace("_", " ").capitalize(), str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return problem(400, "invalid_json", "Invalid JSON", "the request body is nested too deeply")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the type only: the message of a foreign exception may quote the input.
        log.error("unhandled error", extra={"error": exc.__class__.__name__, "route": request.url.path})
        return problem(500, "internal_error", "Internal error", "the service failed; the request was not processed")
