"""The published code of conduct, and live reload of rulebooks (last good one stays on failure)."""

from __future__ import annotations

from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from moderation_service.api.auth import AdminKey, ModerateKey
from moderation_service.api.routing import v1_router
from moderation_service.api.state import services_of
from moderation_service.service import rulebooks as service

__all__ = ["router"]

router = v1_router("/v1/rulebooks", "rulebooks")


@router.get("")
def list_rulebooks(request: Request, key: ModerateKey) -> dict[str, object]:
    default, books = service.rulebooks(services_of(request))
    return {"default": default, "rulebooks": [b.model_dump() for b in books]}


@router.get("/{name}/code-of-conduct")
def code_of_conduct(name: str, request: Request, key: ModerateKey, format: Literal["md", "html"] = "html") -> Response:
    """Rendered from the rulebook that is enforced, so what members read cannot drift from it."""
    text = service.code_of_conduct(services_of(request), name, format)
    if format == "md":
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")
    return HTMLResponse(text)


@router.post("/reload")
def reload_rulebooks(request: Request, key: AdminKey) -> dict[str, object]:
    """Reload from disk; an invalid file is refused with its problems (422) and nothing changes."""
    return service.reload_rulebooks(services_of(request)).model_dump()
