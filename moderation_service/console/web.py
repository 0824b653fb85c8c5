"""Console pages: sign-in, the human queue with protected viewing, one escalation with feedback, settings.

Every page needs a signed-in moderator (a key with the ``moderator`` scope) and shows only that key's
tenant and communities. Every form is a POST with the session's CSRF token; no post text ever goes
into a URL. Pages are ``Cache-Control: no-store`` since they hold post text.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError

from moderation_service.console.pages import HERE, page, refused, to_sign_in
from moderation_service.console.pages import guard as check
from moderation_service.console.session import COOKIE, PRE_COOKIE, Access, Moderator, same_origin
from moderation_service.console.tools import add_tools
from moderation_service.errors import AuthError, ForbiddenError, NotFoundError
from moderation_service.service import Action, FeedbackIn, FeedbackOutcome
from moderation_service.service.feedback import acknowledge, record_feedback
from moderation_service.service.review import review_item, review_queue
from moderation_service.service.rulebooks import rulebooks
from moderation_service.store.console import ConsolePrefs

__all__ = ["create_router"]

_STATIC = {"console.css": "text/css", "live-tests.js": "text/javascript"}


def create_router(access: Access) -> APIRouter:
    """The console's routes, reaching services and keys through ``access``."""
    router = APIRouter(prefix="/console", include_in_schema=False)

    def guard(request: Request, csrf: str | None = None, post: bool = False) -> Moderator | Response:
        return check(access, request, csrf, post)

    @router.get("")
    def home(request: Request) -> Response:
        return RedirectResponse("/console/queue" if access.moderator(request) else "/console/sign-in", status_code=303)

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        """The stylesheet and the playground's small script: a fixed list, never a path from the request."""
        media = _STATIC.get(name)
        if media is None:
            return Response(status_code=404)
        return FileResponse(HERE / "static" / name, media_type=media, headers={"Cache-Control": "max-age=300"})

    @router.get("/sign-in")
    def sign_in_form(request: Request) -> Response:
        if access.moderator(request):
            return RedirectResponse("/console/queue", status_code=303)
        token = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
        idle = access.services_of(request).api.console_idle_timeout_s // 60
        response = page(request, "sign_in.html", None, sign_in_token=token, idle_minutes=idle, title="Sign in")
        access.set_cookie(request, response, PRE_COOKIE, token, max_age=3600)
        return response

    @router.post("/sign-in")
    def sign_in(request: Request, key: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
        expected = request.cookies.get(PRE_COOKIE, "")
        if not (same_origin(request) and expected and secrets.compare_digest(expected.encode(), csrf.encode())):
            return refused(request, None, 403, "This sign-in form has expired. Reload the page and try again.")
        try:
            api_key = access.keys_of(request).authenticate(key.strip(), "moderator")
        except (AuthError, ForbiddenError) as exc:
            message = "That key is not valid." if isinstance(exc, AuthError) else "That key has no moderator scope."
            idle = access.services_of(request).api.console_idle_timeout_s // 60
            return page(request, "sign_in.html", None, 401, sign_in_token=expected, error=message, idle_minutes=idle, title="Sign in")
        cookie, _ = access.sessions(request).start(api_key.id)
        redirect = RedirectResponse("/console/queue", status_code=303)
        access.set_cookie(request, redirect, COOKIE, cookie)
        redirect.delete_cookie(PRE_COOKIE, path="/console")
        return redirect

    @router.post("/sign-out")
    def sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        moderator = guard(request, csrf, post=True)
        if not isinstance(moderator, Moderator):
            return moderator
        cookie = request.cookies.get(COOKIE, "")
        access.sessions(request).end(cookie)
        response = to_sign_in()
        response.delete_cookie(COOKIE, path="/console")
        return response

    @router.get("/queue")
    def queue(request: Request, done: str | None = None) -> Response:
        moderator = guard(request)
        if not isinstance(moderator, Moderator):
            return moderator
        items = review_queue(access.services_of(request), moderator.scope)
        notice = {"acked": "Acknowledged.", "feedback": "Thank you: feedback saved."}.get(done or "")
        return page(request, "queue.html", moderator, items=items, notice=notice, title="Human queue", now=time.time())

    @router.get("/escalations/{decision_id}")
    def escalation(request: Request, decision_id: str) -> Response:
        moderator = guard(request)
        if not isinstance(moderator, Moderator):
            return moderator
        services = access.services_of(request)
        try:
            item = review_item(services, moderator.scope, decision_id)
        except NotFoundError:
            return refused(request, moderator, 404, "There is no escalation with that id in your communities.")
        return page(request, "item.html", moderator, item=item, form=_feedback_form(services), title="Escalation")

    @router.post("/escalations/{decision_id}/ack")
    def ack(request: Request, decision_id: str, csrf: Annotated[str, Form()] = "") -> Response:
        moderator = guard(request, csrf, post=True)
        if not isinstance(moderator, Moderator):
            return moderator
        try:
            acknowledge(access.services_of(request), decision_id, moderator.key.id, moderator.scope)
        except NotFoundError:
            return refused(request, moderator, 404, "There is no open escalation with that id in your communities.")
        return RedirectResponse("/console/queue?done=acked", status_code=303)

    @router.post("/escalations/{decision_id}/feedback")
    def feedback(
        request: Request,
        decision_id: str,
        csrf: Annotated[str, Form()] = "",
        outcome: Annotated[str, Form()] = "",
        final_action: Annotated[str, Form()] = "",
        categories: Annotated[list[str] | None, Form()] = None,
        note: Annotated[str, Form()] = "",
    ) -> Response:
        moderator = guard(request, csrf, post=True)
        if not isinstance(moderator, Moderator):
            return moderator
        services = access.services_of(request)
        try:
            verdict = FeedbackIn(outcome=outcome, final_action=final_action, categories=categories or [], note=note)
            record_feedback(services, decision_id, verdict, moderator.key.id, moderator.scope)
        except NotFoundError:
            return refused(request, moderator, 404, "There is no decision with that id in your communities.")
        except ValidationError:
            item = review_item(services, moderator.scope, decision_id)
            error = "Choose whether the decision was upheld or overturned, and the final action."
            return page(request, "item.html", moderator, 422, item=item, form=_feedback_form(services), error=error, title="Escalation")
        return RedirectResponse("/console/queue?done=feedback", status_code=303)

    @router.get("/settings")
    def settings_page(request: Request, saved: bool = False) -> Response:
        moderator = guard(request)
        if not isinstance(moderator, Moderator):
            return moderator
        return page(request, "settings.html", moderator, saved=saved, title="Settings")

    @router.post("/settings")
    def save_settings(request: Request, csrf: Annotated[str, Form()] = "", show_sensitive: Annotated[str, Form()] = "") -> Response:
        moderator = guard(request, csrf, post=True)
        if not isinstance(moderator, Moderator):
            return moderator
        access.sessions(request).save_prefs(moderator.key.id, ConsolePrefs(show_sensitive=show_sensitive == "on"))
        return RedirectResponse("/console/settings?saved=true", status_code=303)

    add_tools(router, access)
    return router


def _feedback_form(services: Any) -> dict[str, Any]:
    categories = sorted({c for book in rulebooks(services)[1] for c in book.categories})
    return {"outcomes": [o.value for o in FeedbackOutcome], "actions": [a.value for a in Action], "categories": categories}
