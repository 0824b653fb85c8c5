"""Bearer-key authentication as a FastAPI dependency per scope, one alias per scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from moderation_service.api.state import state_of
from moderation_service.keys import ApiKey

__all__ = ["AdminKey", "ModerateKey", "ModeratorKey", "SubmitKey", "require"]


def require(scope: str) -> Callable[[Request], ApiKey]:
    def dependency(request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        return state_of(request).keys.authenticate(bearer, scope)

    return dependency


ModerateKey = Annotated[ApiKey, Depends(require("moderate"))]  # sync moderation, rulebooks, signposting
SubmitKey = Annotated[ApiKey, Depends(require("submit"))]  # the queue
ModeratorKey = Annotated[ApiKey, Depends(require("moderator"))]  # people: escalations and feedback
AdminKey = Annotated[ApiKey, Depends(require("admin"))]  # rulebook reloads
