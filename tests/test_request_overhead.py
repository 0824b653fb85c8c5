"""What a request costs outside the pipeline: no thread hop that the work does not need, and the checks still hold.

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: a hand-over to another thread and
back on every request, which under load waits on the GIL behind the model runners. The figures are in
``benchmarks/results/api_http_overhead*.md``; these tests keep the shape that makes them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from tests.conftest import Api, Keys

# The moderation paths: their work is in this process (the loop awaits the model runners). Routes that write to
# Redis (submissions, escalations, the console) are plain ``def`` on purpose: the pool keeps the loop free.
_HOT = {"/v1/moderate", "/v1/moderate/batch", "/integrations/coral/moderation-phase", "/v1alpha1/comments:analyze"}


def _sync_calls(dependant: Dependant) -> list[str]:
    call = dependant.call
    # A dependency may be an instance with an async ``__call__`` (fastapi.security's HTTPBearer).
    awaited = call is None or inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)
    found = [] if awaited else [getattr(call, "__qualname__", type(call).__name__)]
    for sub in dependant.dependencies:
        found += _sync_calls(sub)
    return found


def _api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """Every endpoint, also those inside included routers (FastAPI keeps those as one route per router)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (router := getattr(route, "original_router", None)) is not None:
            found += _api_routes(router.routes)
    return found


def test_no_moderation_route_hands_its_request_to_a_thread_for_an_endpoint_or_dependency(api: Api) -> None:
    routes = [route for route in _api_routes(api.app.routes) if route.path in _HOT]
    assert {route.path for route in routes} == _HOT
    threaded = {route.path: calls for route in routes if (calls := _sync_calls(route.dependant))}
    assert not threaded, f"these run in FastAPI's thread pool on every request: {threaded}"


def test_unknown_query_parameters_are_still_refused_and_known_ones_taken(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        plain = c.post("/v1/moderate", json={"text": "Morning all, the new tablets are helping."})
        typo = c.post("/v1/moderate?dry_rn=1", json={"text": "Morning all, the new tablets are helping."})
        known = c.get("/v1/rulebooks/peer-support/code-of-conduct", params={"format": "md"})
        unknown = c.get("/v1/rulebooks/peer-support/code-of-conduct", params={"format": "md", "colour": "blue"})
    assert plain.status_code == 200 and known.status_code == 200
    assert typo.status_code == 422 and typo.json()["errors"][0]["loc"] == ["query", "dry_rn"]
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == ["query", "colour"]
