"""Who is signed in to the console: the session cookie, its CSRF token, and the live key behind it.

The cookie is HttpOnly, SameSite=Strict, and Secure when the request came over TLS; its Redis record
expires after the idle timeout. Each request asks the live keys again, so an expired, revoked or
narrowed key takes effect at once. Forms carry the session's CSRF token; the sign-in form, before any
session, uses a double-submit cookie. POSTs from another origin are refused outright.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request, Response

from moderation_service.errors import StoreUnavailable
from moderation_service.keys import ApiKey, LiveKeys
from moderation_service.service import Services
from moderation_service.service.scope import Scope
from moderation_service.store.console import ConsolePrefs, ConsoleSession, ConsoleSessions

__all__ = ["COOKIE", "PRE_COOKIE", "Moderator", "Access", "same_origin"]

COOKIE = "ms_console"
PRE_COOKIE = "ms_console_signin"


@dataclass(frozen=True)
class Moderator:
    key: ApiKey
    session: ConsoleSession
    prefs: ConsolePrefs

    @property
    def scope(self) -> Scope:
        return Scope(tenant=self.key.tenant, communities=self.key.communities)

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and secrets.compare_digest(token.encode(), self.session.csrf.encode())


def same_origin(request: Request) -> bool:
    """A POST's Origin (browsers send it) must be this server; no Origin (non-browser clients) is let through to CSRF."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


@dataclass(frozen=True)
class Access:
    """How the console reaches the process's parts (handed in by the API app)."""

    services_of: Callable[[Request], Services]
    keys_of: Callable[[Request], LiveKeys]

    def sessions(self, request: Request) -> ConsoleSessions:
        sessions = self.services_of(request).console
        if sessions is None:
            raise StoreUnavailable("the console needs Redis (MODERATION_REDIS_URL)")
        return sessions

    def moderator(self, request: Request) -> Moderator | None:
        """The signed-in moderator, or None (no cookie, idle too long, signed out, key revoked or expired)."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        sessions = self.sessions(request)
        session = sessions.find(cookie)
        if session is None:
            return None
        key = self.keys_of(request).active(session.key_id)
        if key is None or "moderator" not in key.scopes:
            sessions.end(cookie)
            return None
        return Moderator(key, session, sessions.prefs(key.id))

    @staticmethod
    def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/console", httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
