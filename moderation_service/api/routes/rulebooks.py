"""The published code of conduct, and live reload of rulebooks (last good one stays on failure)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from moderation_service.api.auth import require
from moderation_service.api.state import state_of
from moderation_service.keys import ApiKey
from moderation_service.rulebook.render import render_html, render_markdown

__all__ = ["router"]

router = APIRouter(prefix="/v1/rulebooks", tags=["rulebooks"])


@router.get("")
def list_rulebooks(request: Request, key: Annotated[ApiKey, Depends(require("moderate"))]) -> dict[str, object]:
    state = state_of(request)
    return {
        "default": state.rulebooks.default,
        "rulebooks": [
            {
                "name": b.name,
                "title": b.title,
                "community": b.community,
                "version": b.version,
                "version_note": b.version_note,
                "categories": list(b.categories),
                "rules": len(b.rules),
            }
            for b in state.rulebooks.all()
        ],
    }


@router.get("/{name}/code-of-conduct")
def code_of_conduct(
    name: str,
    request: Request,
    key: Annotated[ApiKey, Depends(require("moderate"))],
    format: Literal["md", "html"] = "html",
) -> Response:
    """Rendered from the rulebook that is enforced, so what members read cannot drift from it."""
    book = state_of(request).rulebooks.get(name)
    if format == "md":
        return PlainTextResponse(render_markdown(book), media_type="text/markdown; charset=utf-8")
    return HTMLResponse(render_html(book))


@router.post("/reload")
def reload_rulebooks(request: Request, key: Annotated[ApiKey, Depends(require("admin"))]) -> dict[str, object]:
    """Reload from disk; an invalid file is refused with its problems (422) and nothing changes."""
    return {"reloaded": state_of(request).rulebooks.reload()}
