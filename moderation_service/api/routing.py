"""The one way a ``/v1`` router is made: its problem+json responses declared, unknown query parameters refused."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from moderation_service.api.problems import API_PROBLEMS, problem_responses
from moderation_service.api.strict_query import refuse_unknown_query

__all__ = ["v1_router"]


def v1_router(prefix: str, tag: str, *more_problems: int) -> APIRouter:
    """``more_problems``: statuses beyond the common ones (e.g. 409 where a post_id can conflict)."""
    responses = problem_responses(*API_PROBLEMS, *more_problems)
    return APIRouter(prefix=prefix, tags=[tag], responses=responses, dependencies=[Depends(refuse_unknown_query)])
