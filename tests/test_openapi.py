"""The OpenAPI document tells the truth: schemathesis generates requests from it against the app (real Redis
behind it) and checks every answer against it; plus the parts of the document #12 asked for, by name."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from moderation_service.config import ApiSettings
from moderation_service.core.pipeline import Pipeline
from moderation_service.keys import SCOPES, generate_key
from tests.conftest import Api, Keys, make_api, settings_for

PROBLEM_STATUSES = {"400", "401", "403", "404", "405", "408", "413", "422", "503"}
ALL_SCOPES, ALL_SCOPES_KEY = generate_key(list(SCOPES))
CONFIG = SchemathesisConfig.from_dict({"auth": {"openapi": {"HTTPBearer": {"bearer": ALL_SCOPES}}}})
COMPAT = ("/v1alpha1/", "/integrations/", "/$discovery/")  # the Coral and Perspective wire formats: tested in test_compat


@pytest.fixture
def fuzzed_app(shared_pipeline: Pipeline, shared_rules: Path, keys: Keys, redis_url: str) -> Iterator[Api]:
    api_settings = ApiSettings(api_keys=keys.lines + "\n" + ALL_SCOPES_KEY.line())
    api = make_api(settings_for(shared_rules, keys, redis_url, api=api_settings), shared_pipeline)
    with TestClient(api.app):  # runs the lifespan: the app's parts stay built while schemathesis calls it
        yield api


def _operations(api: Api) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app, config=CONFIG)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # every operation in the document is a valid one
        operations.append(result.ok())
    return [op for op in operations if not op.path.startswith(COMPAT)]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_route_answers_as_its_schema_says(fuzzed_app: Api, mode: GenerationMode) -> None:
    """Bounded (25 examples per operation and mode, derandomised): no 5xx, documented statuses, content types,
    headers and bodies; schema-invalid requests refused with 4xx; a wrong method is 405 with Allow.

    Not checked: that every schema-valid request is accepted. Rules no schema can state refuse some by design
    (a callback origin not on the operator's allow-list, text over the configured limit: 422 and 413).
    """
    failures: list[str] = []
    operations = _operations(fuzzed_app)
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def check(case: Any) -> None:
            # timeout: a bound on a busy CI machine, not a speed check.
            case.call_and_validate(excluded_checks=[positive_data_acceptance], timeout=120)

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE and not operation.path.startswith("/v1/")  # no parameters to get wrong
        except Exception as exc:  # every operation is tried; all failures are reported together
            detail = "".join(traceback.format_exception_only(exc)) + "".join(
                "".join(traceback.format_exception_only(sub)) for sub in getattr(exc, "exceptions", ())
            )
            failures.append(f"{operation.method.upper()} {operation.path}: {detail}"[:3000])
    assert not failures, "\n\n".join(failures)


def test_the_document_declares_bearer_auth_and_problem_responses(api: Api) -> None:
    with api.client(None) as c:
        document = c.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key: `Authorization: Bearer msk_<id>_<secret>`",
    }
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            declared = operation["responses"]
            assert PROBLEM_STATUSES <= set(declared), (method, path)
            for status in PROBLEM_STATUSES:
                assert list(declared[status]["content"]) == ["application/problem+json"], (method, path, status)
    assert "409" in document["paths"]["/v1/submissions"]["post"]["responses"]


def test_white_space_only_text_is_refused_by_the_schema(api: Api, keys: Keys) -> None:
    with api.client(None) as c:
        document = c.get("/openapi.json").json()
    text = document["components"]["schemas"]["ModerateRequest"]["properties"]["text"]
    assert "pattern" in text
    with api.client(keys.moderate) as c:
        for blank in (" ", "\n\t", "\u3000\u00a0", "\x1c"):
            r = c.post("/v1/moderate", json={"text": blank})
            assert r.status_code == 422 and r.json()["code"] == "validation_error", blank
