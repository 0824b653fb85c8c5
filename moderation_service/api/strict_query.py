"""Unknown query parameters are refused (422), as unknown body keys are: a typo must not be silently ignored."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

__all__ = ["refuse_unknown_query"]


def _query_names(dependant: Dependant) -> set[str]:
    """Query parameters of a route and of every dependency it has (FastAPI keeps its own walk private)."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def refuse_unknown_query(request: Request) -> None:
    """A router dependency: every query parameter must be one the route declares.

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    hop on every ``/v1`` request for a check that is a few dict look-ups (none at all without a query string).
    """
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in known]
    if unknown:
        errors = [{"loc": ("query", name), "msg": "not a parameter of this route", "type": "extra_forbidden"} for name in unknown]
        raise RequestValidationError(errors)
