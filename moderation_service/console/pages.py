"""What every console page shares: templates, security headers, the refusal page, and the sign-in guard."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from moderation_service.console.session import Access, Moderator, same_origin

__all__ = ["HERE", "guard", "page", "refused", "templates", "to_sign_in"]

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send "Origin: null" and drop SameSite cookies
    "X-Content-Type-Options": "nosniff",
}


_FORGED = "This form has expired or did not come from this console. Reload the page and try again."


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 5400:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


templates.env.filters["age"] = _age


def page(request: Request, name: str, moderator: Moderator | None, status: int = 200, **context: Any) -> HTMLResponse:
    """A console page with the security headers every page gets."""
    context = {"moderator": moderator, "csrf": moderator.session.csrf if moderator else "", "now": time.time(), **context}
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(_HEADERS)
    return response


def refused(request: Request, moderator: Moderator | None, status: int, message: str) -> HTMLResponse:
    return page(request, "refused.html", moderator, status=status, message=message, title="Not allowed")


def to_sign_in() -> RedirectResponse:
    return RedirectResponse("/console/sign-in", status_code=303)


def guard(access: Access, request: Request, csrf: str | None = None, post: bool = False) -> Moderator | Response:
    """The moderator, or the response to send instead (sign in again, or 403 for a forged or foreign form)."""
    moderator = access.moderator(request)
    if moderator is None:
        return to_sign_in()
    if post and not (same_origin(request) and moderator.csrf_ok(csrf)):
        return refused(request, moderator, 403, _FORGED)
    return moderator
