"""The Perspective-compatible API, called by the real clients (google-api-python-client, PyPI ``perspective``)
against a real server, and in-process for the contract details (errors, spans, languages, limits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from moderation_service.core.pipeline import Pipeline
from moderation_service.service.feedback import suggestion_id
from tests.conftest import Api, Keys, Server, make_api, settings_for

# The two third-party clients leave their HTTP sockets to the garbage collector.
THIRD_PARTY_SOCKETS = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
BAD_KEY = "API key not valid. Please pass a valid API key."
EMOJI_TEXT = "😀😀 Lovely day. [fake toxicity=0.95] You are vile."


@pytest.fixture
def compat(shared_pipeline: Pipeline, shared_rules: Path, keys: Keys, redis_url: str) -> Api:
    return make_api(settings_for(shared_rules, keys, redis_url), shared_pipeline)


def build_client(server: Server, key: str) -> Any:
    from googleapiclient import discovery

    return discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey=key,
        discoveryServiceUrl=f"{server.url}/$discovery/rest?version={{apiVersion}}",
        static_discovery=False,
    )


# --- real clients ---------------------------------------------------------------------------------------------------


@THIRD_PARTY_SOCKETS
def test_google_api_python_client_works_unchanged(server: Server, keys: Keys) -> None:
    client = build_client(server, keys.moderate)
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
def test_google_batch_request_works(server: Server, keys: Keys) -> None:
    """``new_batch_http_request``: two analyses and a suggestion in one multipart/mixed call to ``batchPath``."""
    client = build_client(server, keys.moderate)
    got: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: Exception | None) -> None:
        got[request_id] = exception or response

    batch = client.new_batch_http_request(callback=collect)
    for i, score in enumerate(("0.2", "0.8")):
        body = {"comment": {"text": f"[fake toxicity={score}] hello"}, "requestedAttributes": {"TOXICITY": {}}}
        batch.add(client.comments().analyze(body=body), request_id=f"analyze-{i}")
    suggestion = {"comment": {"text": "a batch suggestion"}, "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.0}}}}
    batch.add(client.comments().suggestscore(body=suggestion), request_id="suggest")
    batch.execute()
    client.close()
    assert got["analyze-0"]["attributeScores"]["TOXICITY"]["summaryScore"]["value"] == 0.2
    assert got["analyze-1"]["attributeScores"]["TOXICITY"]["summaryScore"]["value"] == 0.8
    assert got["suggest"] == {"detectedLanguages": ["en"], "requestedLanguages": []}


@THIRD_PARTY_SOCKETS
def test_google_client_suggestscore_is_stored_as_feedback(server: Server, keys: Keys, redis_url: str) -> None:
    client = build_client(server, keys.moderate)
    text = "you absolute muppet, see you at the meeting"
    body = {"comment": {"text": text}, "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.0}}}, "clientToken": "c-1"}
    assert client.comments().suggestscore(body=body).execute()["clientToken"] == "c-1"
    client.close()
    stored = redis.Redis.from_url(redis_url).lrange(f"ms:feedback:{suggestion_id(text)}", 0, -1)
    assert len(stored) == 1 and b'"final_action":"allow"' in stored[0] and b"toxicity=0.00" in stored[0]
    assert b"muppet" not in stored[0], "the text itself is never stored"


@THIRD_PARTY_SOCKETS
def test_perspective_pypi_client(server: Server, keys: Keys) -> None:
    from perspective import PerspectiveAPI

    client = PerspectiveAPI(keys.moderate)
    client.api_client.url = f"{server.url}/v1alpha1/{{endpoint}}"
    result = client.score("[fake identity_attack=0.77] words", tests=["IDENTITY_ATTACK", "TOXICITY"])
    assert result == {"IDENTITY_ATTACK": 0.77, "TOXICITY": 0.0}
    suggested = client.suggest_score("some words", {"TOXICITY": {"summaryScore": {"value": 0.9}}}, client_token="p-1")
    assert suggested["clientToken"] == "p-1"


# --- the contract, in-process ---------------------------------------------------------------------------------------


def analyze(api: Api, body: dict[str, Any], key: str | None, *, header: bool = False) -> Any:
    with api.client(None) as c:
        if header:
            return c.post("/v1alpha1/comments:analyze", headers={"X-Goog-Api-Key": key or ""}, json=body)
        return c.post("/v1alpha1/comments:analyze", params={"key": key} if key else None, json=body)


def test_span_scores_by_default_one_whole_text_span_in_utf16(compat: Api, keys: Keys) -> None:
    body = {"comment": {"text": EMOJI_TEXT}, "requestedAttributes": {"TOXICITY": {}}}
    [span] = analyze(compat, body, keys.moderate).json()["attributeScores"]["TOXICITY"]["spanScores"]
    assert (span["begin"], span["end"]) == (0, len(EMOJI_TEXT.encode("utf-16-le")) // 2)
    assert span["score"] == {"value": 0.95, "type": "PROBABILITY"}


def test_sentence_spans_are_utf16_offsets(compat: Api, keys: Keys) -> None:
    body = {"comment": {"text": EMOJI_TEXT}, "requestedAttributes": {"TOXICITY": {}, "THREAT": {"scoreThreshold": 0.5}}}
    response = analyze(compat, {**body, "spanAnnotations": True}, keys.moderate).json()
    spans = response["attributeScores"]["TOXICITY"]["spanScores"]
    units = EMOJI_TEXT.encode("utf-16-le")
    pieces = [units[2 * s["begin"] : 2 * s["end"]].decode("utf-16-le") for s in spans]  # slicing as JavaScript does
    assert pieces == ["😀😀 Lovely day.", "[fake toxicity=0.95] You are vile."]
    assert [s["score"]["value"] for s in spans] == [0.0, 0.95]
    assert "THREAT" not in response["attributeScores"]  # under its scoreThreshold


def test_experimental_fast_and_versioned_names_are_scored(compat: Api, keys: Keys) -> None:
    names = ["TOXICITY_EXPERIMENTAL", "TOXICITY_FAST", "TOXICITY@6", "INSULT_EXPERIMENTAL", "THREAT_EXPERIMENTAL"]
    body = {"comment": {"text": "[fake toxicity=0.6 threat=0.3] you lot"}, "requestedAttributes": {n: {} for n in names}}
    scores = analyze(compat, body, keys.moderate).json()["attributeScores"]
    assert {n: scores[n]["summaryScore"]["value"] for n in names} == dict(zip(names, [0.6, 0.6, 0.6, 0.6, 0.3], strict=True))


def test_abuse_heads_are_read_where_perspective_has_an_attribute(compat: Api, keys: Keys) -> None:
    """INSULT reads the insult head, IDENTITY_ATTACK the higher of the two group-hate scores, SPAM and COMMERCIAL
    the commercial head; without the heads, INSULT reads toxicity and a selling score is refused, never made up."""
    names = ["INSULT", "IDENTITY_ATTACK", "SPAM", "COMMERCIAL", "TOXICITY"]
    text = "[fake toxicity=0.2 insult=0.8 identity_attack=0.1 identity_hate=0.6 commercial=0.7] hi"
    scores = analyze(compat, {"comment": {"text": text}, "requestedAttributes": {n: {} for n in names}}, keys.moderate).json()
    assert {n: scores["attributeScores"][n]["summaryScore"]["value"] for n in names} == dict(
        zip(names, [0.8, 0.6, 0.7, 0.7, 0.2], strict=True)
    )
    without = {"comment": {"text": "[fake toxicity=0.3] hi"}, "requestedAttributes": {"INSULT": {}}}
    assert analyze(compat, without, keys.moderate).json()["attributeScores"]["INSULT"]["summaryScore"]["value"] == 0.3
    refused = analyze(compat, {**without, "requestedAttributes": {"SPAM": {}}}, keys.moderate)
    assert (
        refused.status_code == 400 and refused.json()["error"]["message"] == "Attribute SPAM is not scored by the models this server runs"
    )


def test_drop_unsupported_attributes(compat: Api, keys: Keys) -> None:
    body = {"comment": {"text": "[fake toxicity=0.4] hi there"}, "requestedAttributes": {"SEXUALLY_EXPLICIT": {}, "TOXICITY": {}}}
    kept = analyze(compat, {**body, "dropUnsupportedAttributes": True}, keys.moderate).json()["attributeScores"]
    assert list(kept) == ["TOXICITY"]
    refused = analyze(compat, body, keys.moderate)
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["message"] == "Attribute SEXUALLY_EXPLICIT does not support request languages: en"
    assert error["details"][0]["errorType"] == "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"


def test_spanish_comment_is_not_scored_as_english(compat: Api, keys: Keys) -> None:
    text = "Eres un idiota y nadie en este foro quiere leer lo que escribes"
    body = {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}}
    refused = analyze(compat, body, keys.moderate)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "Attribute TOXICITY does not support request languages: es"
    dropped = analyze(compat, {**body, "dropUnsupportedAttributes": True}, keys.moderate).json()
    assert dropped == {"attributeScores": {}, "languages": ["es"], "detectedLanguages": ["es"]}


@pytest.mark.parametrize(
    ("score_type", "status"), [("PROBABILITY", 200), ("SCORE_TYPE_UNSPECIFIED", 200), ("STD_DEV_SCORE", 400), ("RAW", 400)]
)
def test_score_type_echoed_or_refused(compat: Api, keys: Keys, score_type: str, status: int) -> None:
    body = {"comment": {"text": "hello there"}, "requestedAttributes": {"TOXICITY": {"scoreType": score_type}}}
    response = analyze(compat, body, keys.moderate)
    assert response.status_code == status
    if status == 400:
        assert response.json()["error"]["message"] == f"Requested score type {score_type} is not supported"
    else:
        assert response.json()["attributeScores"]["TOXICITY"]["summaryScore"]["type"] == "PROBABILITY"


def test_html_comment_type_is_read_as_text(compat: Api, keys: Keys) -> None:
    body = {"comment": {"text": "<p>[fake toxicity=0.7] hi&nbsp;there</p>", "type": "HTML"}, "requestedAttributes": {"TOXICITY": {}}}
    response = analyze(compat, body, keys.moderate).json()
    assert response["attributeScores"]["TOXICITY"]["spanScores"][0]["end"] == len("[fake toxicity=0.7] hi there")


def test_limit_is_20_kb_of_utf8(compat: Api, keys: Keys) -> None:
    """Perspective counts bytes: 10,241 two-byte characters are over the limit, 10,000 are not."""
    ok = analyze(compat, {"comment": {"text": "é" * 10_000}, "requestedAttributes": {"TOXICITY": {}}}, keys.moderate)
    over = analyze(compat, {"comment": {"text": "é" * 10_241}, "requestedAttributes": {"TOXICITY": {}}}, keys.moderate)
    assert ok.status_code == 200
    assert over.status_code == 400 and over.json()["error"]["details"][0]["errorType"] == "COMMENT_TOO_LONG"


def test_key_in_header_and_missing_key(compat: Api, keys: Keys) -> None:
    body = {"comment": {"text": "hello there"}, "requestedAttributes": {"TOXICITY": {}}}
    assert analyze(compat, body, keys.moderate, header=True).status_code == 200
    missing = analyze(compat, body, None)
    assert missing.status_code == 403
    assert missing.json()["error"] == {"code": 403, "message": "The request is missing a valid API key.", "status": "PERMISSION_DENIED"}


@pytest.mark.parametrize(
    ("body", "key_ok", "message", "error_type"),
    [
        ({"comment": {"text": "hi"}, "requestedAttributes": {"NOT_AN_ATTRIBUTE": {}}}, True, "Unknown attribute: NOT_AN_ATTRIBUTE", None),
        (
            {"comment": {"text": "hola"}, "requestedAttributes": {"TOXICITY": {}}, "languages": ["es"]},
            True,
            "Attribute TOXICITY does not support request languages: es",
            "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
        ),
        ({"comment": {"text": "  "}, "requestedAttributes": {"TOXICITY": {}}}, True, "Comment text was too short.", "COMMENT_EMPTY"),
        (
            {"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}},
            False,
            "API key not valid. Please pass a valid API key.",
            "API_KEY_INVALID",
        ),
        ({"comment": {}, "requestedAttributes": {"TOXICITY": {}}}, True, "Invalid JSON payload: comment.text: Field required", None),
    ],
)
def test_perspective_style_errors(
    compat: Api, keys: Keys, body: dict[str, Any], key_ok: bool, message: str, error_type: str | None
) -> None:
    response = analyze(compat, body, keys.moderate if key_ok else "msk_bad_key")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and error["message"] == message
    assert (error["details"][0]["errorType"] if "details" in error else None) == error_type


def test_discovery_document_is_complete_and_refuses_unknown_versions(compat: Api) -> None:
    with compat.client(None) as c:
        doc = c.get("/$discovery/rest", params={"version": "v1alpha1"}).json()
        unknown = c.get("/$discovery/rest", params={"version": "v2"})
    assert set(doc["resources"]["comments"]["methods"]) == {"analyze", "suggestscore"}
    assert doc["batchPath"] == "batch" and {"key", "alt", "fields", "prettyPrint", "quotaUser"} <= set(doc["parameters"])
    assert {"AnalyzeCommentRequest", "SpanScore", "SuggestCommentScoreRequest", "TextEntry", "Context"} <= set(doc["schemas"])
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b"{}"), ("multipart/mixed; boundary=b", b"--b\r\n\r\nnot an http request\r\n--b--"), ("multipart/mixed", b"")],
)
def test_malformed_batch_is_400(compat: Api, content_type: str, body: bytes) -> None:
    with compat.client(None) as c:
        response = c.post("/batch", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
