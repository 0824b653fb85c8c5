"""Perspective and Coral clients, exactly as they call: in-process, and the third-party clients against a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moderation_service.config import CoralSettings
from moderation_service.core.pipeline import Pipeline
from tests.conftest import CORAL_NEW_SECRET as NEW_SECRET
from tests.conftest import CORAL_OLD_SECRET as OLD_SECRET
from tests.conftest import CORAL_TENANT as TENANT
from tests.conftest import Api, Keys, Server, make_api, settings_for


@pytest.fixture
def compat(shared_pipeline: Pipeline, shared_rules: Path, keys: Keys, redis_url: str) -> Api:
    coral = CoralSettings(secrets={TENANT: [NEW_SECRET, OLD_SECRET]})
    return make_api(settings_for(shared_rules, keys, redis_url, coral=coral), shared_pipeline)


# --- Perspective -------------------------------------------------------------------------------


# The two third-party clients leave their HTTP sockets to the garbage collector.
THIRD_PARTY_SOCKETS = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")


@THIRD_PARTY_SOCKETS
def test_google_api_python_client_works_unchanged(server: Server, keys: Keys) -> None:
    from googleapiclient import discovery

    client = discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey=keys.moderate,
        discoveryServiceUrl=f"{server.url}/$discovery/rest?version=v1alpha1",
        static_discovery=False,
    )
    body = {
        "comment": {"text": "[fake toxicity=0.91 threat=0.2] you are awful"},
        "requestedAttributes": {"TOXICITY": {}, "THREAT": {}, "SEVERE_TOXICITY": {}, "DISTRESS": {}},
        "clientToken": "tok-1",
    }
    response = client.comments().analyze(body=body).execute()
    client.close()
    scores = response["attributeScores"]
    assert scores["TOXICITY"]["summaryScore"] == {"value": 0.91, "type": "PROBABILITY"}
    assert scores["THREAT"]["summaryScore"]["value"] == 0.2
    assert scores["SEVERE_TOXICITY"]["summaryScore"]["value"] < scores["TOXICITY"]["summaryScore"]["value"]
    assert response["clientToken"] == "tok-1" and response["detectedLanguages"] == ["en"]


@THIRD_PARTY_SOCKETS
def test_perspective_pypi_client(server: Server, keys: Keys) -> None:
    from perspective import PerspectiveAPI

    client = PerspectiveAPI(keys.moderate)
    client.api_client.url = f"{server.url}/v1alpha1/{{endpoint}}"
    result = client.score("[fake identity_attack=0.77] words", tests=["IDENTITY_ATTACK", "TOXICITY"])
    assert result == {"IDENTITY_ATTACK": 0.77, "TOXICITY": 0.0}


def analyze(api: Api, key: str | None, body: dict[str, Any]) -> Any:
    with api.client(None) as c:
        return c.post("/v1alpha1/comments:analyze", params={"key": key} if key else None, json=body)


def test_span_annotations_and_threshold(compat: Api, keys: Keys) -> None:
    text = "Lovely to see you all. [fake toxicity=0.95] You are vile."
    body = {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}, "THREAT": {"scoreThreshold": 0.5}}, "spanAnnotations": True}
    response = analyze(compat, keys.moderate, body).json()
    spans = response["attributeScores"]["TOXICITY"]["spanScores"]
    assert [text[s["begin"] : s["end"]].strip() for s in spans] == ["Lovely to see you all.", "[fake toxicity=0.95] You are vile."]
    assert spans[0]["score"]["value"] == 0.0 and spans[1]["score"]["value"] == 0.95
    assert "THREAT" not in response["attributeScores"]  # under its scoreThreshold


@pytest.mark.parametrize(
    ("body", "key_ok", "status", "error_type"),
    [
        ({"comment": {"text": "hi"}, "requestedAttributes": {"FLIRTATION": {}}}, True, 400, "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"),
        (
            {"comment": {"text": "hola"}, "requestedAttributes": {"TOXICITY": {}}, "languages": ["es"]},
            True,
            400,
            "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
        ),
        ({"comment": {"text": "  "}, "requestedAttributes": {"TOXICITY": {}}}, True, 400, "COMMENT_EMPTY"),
        ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}}, False, 400, "API_KEY_INVALID"),
        ({"comment": {}, "requestedAttributes": {"TOXICITY": {}}}, True, 400, None),
    ],
)
def test_perspective_style_errors(compat: Api, keys: Keys, body: dict[str, Any], key_ok: bool, status: int, error_type: str | None) -> None:
    response = analyze(compat, keys.moderate if key_ok else "msk_bad_key", body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status and error["status"] == "INVALID_ARGUMENT" and error["message"]
    if error_type:
        assert error["details"][0]["errorType"] == error_type
