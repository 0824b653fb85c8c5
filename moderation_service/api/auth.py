"""Bearer-key authentication as a FastAPI dependency per scope."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from moderation_service.api.state import state_of
from moderation_service.keys import ApiKey

__all__ = ["require"]


def require(scope: str) -> Callable[[Request], ApiKey]:
    def dependency(request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        return state_of(request).keys.authenticate(bearer, scope)

    return dependency
