"""Crisis and support resources for a locale, for forums that show them outside a decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from moderation_service.api.auth import ModerateKey
from moderation_service.api.routing import v1_router
from moderation_service.api.state import services_of
from moderation_service.service import Signposting
from moderation_service.service import rulebooks as service

__all__ = ["router"]

router = v1_router("/v1", "signposting")


@router.get("/signposting", response_model=Signposting)
def signposting(request: Request, key: ModerateKey, locale: Annotated[str | None, Query(max_length=35)] = None) -> Signposting:
    return service.signposting(services_of(request), locale)
