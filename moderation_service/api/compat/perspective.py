"""A Perspective-compatible ``comments:analyze`` endpoint, with a discovery document.

Attribute mapping (our category -> Perspective attribute). Scores are this service's calibrated
probabilities, so 0.7 means "about 70 % of such texts are what the category names":

| Perspective attribute | our category | note |
|---|---|---|
| TOXICITY | toxicity | |
| SEVERE_TOXICITY | toxicity, squared | no separate model: always <= TOXICITY, like Perspective's |
| INSULT | toxicity | our toxicity covers insults |
| PROFANITY | toxicity | no separate swearing model: a proxy |
| IDENTITY_ATTACK | identity_attack | includes disability and illness |
| THREAT | threat | |
| DISTRESS | distress | this service's own attribute |
| SUICIDE_RISK | suicide_risk | this service's own attribute |

Only English is supported; other requested languages get Perspective's 400 error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import re2
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from moderation_service.api.state import services_of, state_of
from moderation_service.errors import AuthError, ForbiddenError, InputError
from moderation_service.service import PostIn
from moderation_service.service.moderate import judge_parts

__all__ = ["ATTRIBUTES", "AnalyzeRequest", "router"]

ATTRIBUTES: dict[str, tuple[str, Callable[[float], float]]] = {
    "TOXICITY": ("toxicity", lambda s: s),
    "SEVERE_TOXICITY": ("toxicity", lambda s: s * s),
    "INSULT": ("toxicity", lambda s: s),
    "PROFANITY": ("toxicity", lambda s: s),
    "IDENTITY_ATTACK": ("identity_attack", lambda s: s),
    "THREAT": ("threat", lambda s: s),
    "DISTRESS": ("distress", lambda s: s),
    "SUICIDE_RISK": ("suicide_risk", lambda s: s),
}
LANGUAGES = ("en",)
router = APIRouter(tags=["perspective"])
_BOUNDARY = re2.compile(r"[.!?]+\s+|\n+")  # sentence ends: punctuation then space, or a line break


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans without surrounding white space ("0.95" is not a boundary)."""
    spans, start = [], 0
    for match in [*_BOUNDARY.finditer(text), None]:
        end = match.start() + len(match.group().rstrip()) if match else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = match.end() if match else len(text)
    return spans


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Comment(_Loose):
    text: str
    type: str = "PLAIN_TEXT"


class _Requested(_Loose):
    scoreType: str = "PROBABILITY"  # noqa: N815 - Perspective's field names
    scoreThreshold: float | None = Field(default=None, ge=0, le=1)  # noqa: N815


class AnalyzeRequest(_Loose):
    comment: _Comment
    requestedAttributes: dict[str, _Requested] = Field(min_length=1)  # noqa: N815
    languages: list[str] | None = None
    doNotStore: bool = False  # noqa: N815 - nothing from this endpoint is stored either way
    spanAnnotations: bool = False  # noqa: N815
    clientToken: str | None = None  # noqa: N815
    communityId: str | None = None  # noqa: N815
    sessionId: str | None = None  # noqa: N815


def _google_error(status: int, state: str, message: str, error_type: str | None = None, **detail: Any) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": state}
    if error_type:
        error["details"] = [{"@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error", "errorType": error_type, **detail}]
    return JSONResponse({"error": error}, status_code=status)


def _score(value: float) -> dict[str, Any]:
    return {"value": round(value, 6), "type": "PROBABILITY"}


@router.post("/v1alpha1/comments:analyze")
async def analyze(request: Request, key: Annotated[str | None, Query()] = None) -> JSONResponse:
    try:
        state_of(request).keys.authenticate(key, "moderate")
    except ForbiddenError:
        return _google_error(403, "PERMISSION_DENIED", "The API key does not have the moderate scope.")
    except AuthError:
        return _google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
    try:
        body = AnalyzeRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        return _google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload: {where}: {exc.errors()[0]['msg']}")
    unknown = [a for a in body.requestedAttributes if a not in ATTRIBUTES]
    if unknown:
        return _google_error(
            400, "INVALID_ARGUMENT", f"Attribute {unknown[0]} does not exist in language \"en\".", "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
            languageNotSupportedByAttributeError={"detectedLanguages": ["en"], "attribute": unknown[0]},
        )  # fmt: skip
    other = [lang for lang in body.languages or [] if lang.split("-")[0].lower() not in LANGUAGES]
    if other:
        return _google_error(
            400, "INVALID_ARGUMENT", f"Attribute {next(iter(body.requestedAttributes))} does not support request languages: {other[0]}",
            "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
            languageNotSupportedByAttributeError={"requestedLanguages": body.languages, "attribute": next(iter(body.requestedAttributes))},
        )  # fmt: skip
    try:
        post = PostIn(text=body.comment.text)
    except ValidationError:
        return _google_error(400, "INVALID_ARGUMENT", "Comment text was too short.", "COMMENT_EMPTY")
    spans = _sentences(body.comment.text) if body.spanAnnotations else []
    try:
        whole, parts = await run_in_threadpool(judge_parts, services_of(request), post, [body.comment.text[s:e] for s, e in spans])
    except InputError as exc:
        return _google_error(400, "INVALID_ARGUMENT", str(exc), "COMMENT_TOO_LONG")
    decisions = [whole, *parts]
    if any(d.degraded for d in decisions) or not decisions[0].scores:
        return _google_error(503, "UNAVAILABLE", "The scoring models are unavailable; try again shortly.")
    scores: dict[str, Any] = {}
    for attribute, requested in body.requestedAttributes.items():
        category, transform = ATTRIBUTES[attribute]
        summary = transform(decisions[0].scores[category])
        if requested.scoreThreshold is not None and summary < requested.scoreThreshold:
            continue
        entry: dict[str, Any] = {"summaryScore": _score(summary)}
        if body.spanAnnotations:
            entry["spanScores"] = [
                {"begin": s, "end": e, "score": _score(transform(d.scores[category]))}
                for (s, e), d in zip(spans, decisions[1:], strict=True)
            ]
        scores[attribute] = entry
    response: dict[str, Any] = {"attributeScores": scores, "languages": body.languages or ["en"], "detectedLanguages": ["en"]}
    if body.clientToken is not None:
        response["clientToken"] = body.clientToken
    return JSONResponse(response)


@router.get("/$discovery/rest")
def discovery(request: Request, version: str = "v1alpha1") -> JSONResponse:
    """Enough of Google's discovery format for ``googleapiclient.discovery.build`` to work unchanged."""
    root = str(request.base_url)
    return JSONResponse(
        {
            "kind": "discovery#restDescription",
            "discoveryVersion": "v1",
            "id": "commentanalyzer:v1alpha1",
            "name": "commentanalyzer",
            "version": "v1alpha1",
            "title": "Perspective Comment Analyzer API (moderation-service compatible)",
            "protocol": "rest",
            "rootUrl": root,
            "servicePath": "",
            "baseUrl": root,
            "batchPath": "batch",
            "parameters": {
                "key": {"type": "string", "location": "query", "description": "API key"},
                "alt": {"type": "string", "location": "query", "default": "json", "enum": ["json"]},
                "fields": {"type": "string", "location": "query"},
                "prettyPrint": {"type": "boolean", "location": "query", "default": "true"},
            },
            "schemas": {
                "AnalyzeCommentRequest": {"id": "AnalyzeCommentRequest", "type": "object"},
                "AnalyzeCommentResponse": {"id": "AnalyzeCommentResponse", "type": "object"},
            },
            "resources": {
                "comments": {
                    "methods": {
                        "analyze": {
                            "id": "commentanalyzer.comments.analyze",
                            "path": "v1alpha1/comments:analyze",
                            "flatPath": "v1alpha1/comments:analyze",
                            "httpMethod": "POST",
                            "parameters": {},
                            "parameterOrder": [],
                            "request": {"$ref": "AnalyzeCommentRequest"},
                            "response": {"$ref": "AnalyzeCommentResponse"},
                        }
                    }
                }
            },
        }
    )
