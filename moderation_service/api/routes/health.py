"""Liveness and readiness, open without a key so orchestrators can probe them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from moderation_service.service.rulebooks import readiness

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    state = getattr(request.app.state, "moderation", None)
    ready = readiness(state.services) if state is not None else None
    if ready is None or not ready.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    body = {"status": "ready", "rulebooks": ready.rulebooks, "rulebook_version": ready.rulebook_version}
    return JSONResponse({**body, "rulebooks_current": ready.rulebooks_current, "models": ready.models})
