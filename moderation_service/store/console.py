"""Console sign-ins and moderators' console settings, kept in Redis so every API process shares them.

A session is found by the SHA-256 of its cookie, so a copy of Redis cannot be replayed as cookies.
Its TTL is the idle timeout, renewed on each request; it holds the key id and CSRF token, never post
text. Tenancy is not copied into it: each request asks the live keys, so a revoked key signs out.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict

from moderation_service.errors import StoreUnavailable
from moderation_service.store import keys

__all__ = ["ConsolePrefs", "ConsoleSession", "ConsoleSessions"]


class ConsoleSession(BaseModel):
    model_config = ConfigDict(frozen=True)

    key_id: str
    csrf: str
    created_at: float


class ConsolePrefs(BaseModel):
    model_config = ConfigDict(frozen=True)

    show_sensitive: bool = False  # keep self-harm and hate posts unblurred for this moderator


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class ConsoleSessions:
    def __init__(self, client: redis.Redis, idle_s: int, max_age_s: int) -> None:
        self.redis, self.idle_s, self.max_age_s = client, idle_s, max_age_s

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable("the console's session store (Redis) is unreachable") from exc

    def start(self, key_id: str) -> tuple[str, ConsoleSession]:
        """A new session: the cookie value to hand to the browser once, and what is stored."""
        cookie = secrets.token_urlsafe(32)
        session = ConsoleSession(key_id=key_id, csrf=secrets.token_urlsafe(32), created_at=time.time())
        self._call(self.redis.set, keys.console_session(_digest(cookie)), session.model_dump_json(), ex=self.idle_s)
        return cookie, session

    def find(self, cookie: str) -> ConsoleSession | None:
        """The session, its idle timer renewed; None when unknown, idle too long or past its maximum age."""
        name = keys.console_session(_digest(cookie))
        raw = self._call(self.redis.get, name)
        if raw is None:
            return None
        session = ConsoleSession.model_validate_json(raw)
        if time.time() - session.created_at > self.max_age_s:
            self._call(self.redis.delete, name)
            return None
        self._call(self.redis.expire, name, self.idle_s)
        return session

    def end(self, cookie: str) -> None:
        self._call(self.redis.delete, keys.console_session(_digest(cookie)))

    def prefs(self, key_id: str) -> ConsolePrefs:
        raw = self._call(self.redis.get, keys.console_prefs(key_id))
        return ConsolePrefs.model_validate_json(raw) if raw else ConsolePrefs()

    def save_prefs(self, key_id: str, prefs: ConsolePrefs) -> None:
        self._call(self.redis.set, keys.console_prefs(key_id), prefs.model_dump_json())
