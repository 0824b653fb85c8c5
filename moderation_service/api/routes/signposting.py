"""Crisis and support resources for a locale, for forums that show them outside a decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from moderation_service.api.auth import require
from moderation_service.api.state import state_of
from moderation_service.decision import Signposting
from moderation_service.keys import ApiKey

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["signposting"])


@router.get("/signposting", response_model=Signposting)
def signposting(
    request: Request,
    key: Annotated[ApiKey, Depends(require("moderate"))],
    locale: Annotated[str | None, Query(max_length=35)] = None,
) -> Signposting:
    state = state_of(request)
    return state.directory.lookup(locale or state.settings.default_locale)
