"""Bearer-key authentication as a FastAPI dependency per scope, one alias per scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from moderation_service.api.state import state_of
from moderation_service.keys import ApiKey

__all__ = ["AdminKey", "ModerateKey", "ModeratorKey", "SubmitKey", "require"]


# Declares the scheme in the OpenAPI document; errors stay ours (401 problem+json), so it never raises itself.
_BEARER = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer msk_<id>_<secret>`")


def require(scope: str) -> Callable[..., ApiKey]:
    def dependency(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> ApiKey:
        bearer = credentials.credentials.strip() if credentials is not None else None
        return state_of(request).keys.authenticate(bearer, scope)

    return dependency


ModerateKey = Annotated[ApiKey, Depends(require("moderate"))]  # sync moderation, rulebooks, signposting
SubmitKey = Annotated[ApiKey, Depends(require("submit"))]  # the queue
ModeratorKey = Annotated[ApiKey, Depends(require("moderator"))]  # people: escalations and feedback
AdminKey = Annotated[ApiKey, Depends(require("admin"))]  # rulebook reloads
