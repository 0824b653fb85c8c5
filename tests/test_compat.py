"""Perspective and Coral clients, exactly as they call: in-process, and the third-party clients against a real server."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

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


# --- Coral ---------------------------------------------------------------------------------------


class CoralAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actionType: Literal["FLAG"]  # noqa: N815
    reason: Literal["COMMENT_DETECTED_TOXIC", "COMMENT_DETECTED_SPAM"]


class CoralResponse(BaseModel):
    """The documented External Moderation Response, strictly."""

    model_config = ConfigDict(extra="forbid")
    actions: list[CoralAction] | None = None
    status: Literal["NONE", "APPROVED", "REJECTED", "PREMOD", "SYSTEM_WITHHELD"] | None = None
    tags: list[Literal["FEATURED", "STAFF"]] | None = None


def coral_request(body: str, role: str = "COMMENTER", parent: str | None = None) -> bytes:
    """Built like the examples in Coral's EXTERNAL_MODERATION_PHASES.md."""
    return json.dumps(
        {
            "action": "NEW",
            "comment": {"body": body, "parentID": parent},
            "author": {"id": "baf4e943-3594-4fcc-b2ba-3e8de7a76352", "role": role},
            "story": {"id": "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6", "url": "http://localhost:1313/posts/a-story-url/"},
            "site": {"id": "a4bede88-2d2c-4424-bc18-4322a9e285a6"},
            "tenantID": TENANT,
            "tenantDomain": "localhost",
        }
    ).encode()


def coral_sign(raw: bytes, *secrets: str) -> str:
    return ",".join("sha256=" + hmac.new(s.encode(), raw, hashlib.sha256).hexdigest() for s in secrets)


def coral_post(api: Api, raw: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json", **({"X-Coral-Signature": signature} if signature else {})}
    with api.client(None) as c:
        return c.post("/integrations/coral/moderation-phase", content=raw, headers=headers)


def test_coral_allow_is_204(compat: Api) -> None:
    raw = coral_request("Here's a comment!")
    assert coral_post(compat, raw, coral_sign(raw, NEW_SECRET)).status_code == 204


def test_coral_hold_is_withheld_and_flagged_toxic_or_spam(compat: Api) -> None:
    toxic = coral_request("you idiot")
    spam = coral_request("Turmeric capsules for sale, DM for prices", parent="d79b787f-f406-49a0-a179-72e3652e54be")
    first = coral_post(compat, toxic, coral_sign(toxic, NEW_SECRET))
    second = coral_post(compat, spam, coral_sign(spam, NEW_SECRET))
    assert first.status_code == 200 and second.status_code == 200
    a, b = CoralResponse.model_validate(first.json()), CoralResponse.model_validate(second.json())
    assert a.status == "SYSTEM_WITHHELD" and a.actions and a.actions[0].reason == "COMMENT_DETECTED_TOXIC"
    assert b.status == "SYSTEM_WITHHELD" and b.actions and b.actions[0].reason == "COMMENT_DETECTED_SPAM"


def test_coral_rotated_secret_header_any_valid_signature_counts(compat: Api) -> None:
    raw = coral_request("Here's a comment!")
    assert coral_post(compat, raw, coral_sign(raw, "some-unknown-secret-000", OLD_SECRET)).status_code == 204


@pytest.mark.parametrize("signature", [None, "sha256=deadbeef", "sha1=abc", "garbage"])
def test_coral_bad_or_missing_signature_is_401(compat: Api, signature: str | None) -> None:
    raw = coral_request("you idiot")
    response = coral_post(compat, raw, signature)
    assert response.status_code == 401 and response.json()["code"] == "bad_signature"


def test_coral_tampered_body_is_401(compat: Api) -> None:
    raw = coral_request("Here's a comment!")
    signature = coral_sign(raw, NEW_SECRET)
    assert coral_post(compat, raw.replace(b"comment!", b"comment?"), signature).status_code == 401


def test_coral_escalation_is_queued_with_story_url(compat: Api, keys: Keys) -> None:
    raw = coral_request("I'm going to kill myself tonight")
    response = coral_post(compat, raw, coral_sign(raw, NEW_SECRET))
    body = CoralResponse.model_validate(response.json())
    assert body.status == "SYSTEM_WITHHELD" and body.actions
    with compat.client(keys.moderator) as c:
        open_items = c.get("/v1/escalations").json()["escalations"]
    assert any(e["context"] == "http://localhost:1313/posts/a-story-url/" and e["priority"] == "urgent" for e in open_items)


def test_coral_staff_are_not_withheld_by_default(compat: Api) -> None:
    raw = coral_request("you idiot", role="MODERATOR")
    assert coral_post(compat, raw, coral_sign(raw, NEW_SECRET)).status_code == 204


CRISIS_CASES = [
    # (text, Coral status: withheld for imminent, flagged but published for high, allowed for safe)
    ("I can't do this anymore, I've got my tablets saved up", "SYSTEM_WITHHELD"),
    ("ya no quiero vivir, tengo las pastillas preparadas", "SYSTEM_WITHHELD"),
    ("Honestly everyone would be better off without me", None),
    ("Just kill me now, three hours on hold to the DWP", "allow"),
]


@pytest.mark.parametrize(("text", "status"), CRISIS_CASES)
def test_coral_crisis_posts(compat: Api, text: str, status: str | None) -> None:
    raw = coral_request(text)
    response = coral_post(compat, raw, coral_sign(raw, NEW_SECRET))
    if status == "allow":
        assert response.status_code == 204
        return
    body = CoralResponse.model_validate(response.json())
    assert body.status == status and body.actions, "every risk post is flagged; imminent ones are also withheld"


def test_coral_lone_surrogate_is_still_moderated(compat: Api) -> None:
    raw = coral_request("you idiot \ud800")
    response = coral_post(compat, raw, coral_sign(raw, NEW_SECRET))
    assert response.status_code == 200
    assert CoralResponse.model_validate(response.json()).status == "SYSTEM_WITHHELD"
