"""Liveness and readiness, open without a key so orchestrators can probe them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    state = getattr(request.app.state, "moderation", None)
    if state is None or not state.rulebooks.loaded:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse(
        {
            "status": "ready",
            "rulebooks": {b.name: b.version for b in state.rulebooks.all()},
            "models": list(state.pipeline.model_versions),
        }
    )
