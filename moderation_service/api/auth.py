"""Bearer-key authentication as a FastAPI dependency per scope, one alias per scope; and the key's data scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from moderation_service.api.state import state_of
from moderation_service.keys import ApiKey
from moderation_service.service.scope import Scope

__all__ = ["AdminKey", "ModerateKey", "ModeratorKey", "SubmitKey", "require", "scope_of"]


# Declares the scheme in the OpenAPI document; errors stay ours (401 problem+json), so it never raises itself.
_BEARER = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer msk_<id>_<secret>`")


def require(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per request that under load waits
    # on the GIL behind the model runners; the check is a hash and a dict look-up, as AuthFirst does on the loop.
    async def dependency(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> ApiKey:
        bearer = credentials.credentials.strip() if credentials is not None else None
        return state_of(request).keys.authenticate(bearer, scope)

    return dependency


def scope_of(key: ApiKey) -> Scope:
    """The tenant and communities whose data this key reaches."""
    return Scope(tenant=key.tenant, communities=key.communities)


ModerateKey = Annotated[ApiKey, Depends(require("moderate"))]  # sync moderation, rulebooks, signposting
SubmitKey = Annotated[ApiKey, Depends(require("submit"))]  # the queue
ModeratorKey = Annotated[ApiKey, Depends(require("moderator"))]  # people: escalations and feedback
AdminKey = Annotated[ApiKey, Depends(require("admin"))]  # rulebook reloads
