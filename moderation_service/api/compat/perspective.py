"""A Perspective-compatible API: ``comments:analyze``, ``comments:suggestscore``, Google batches, discovery.

Attribute mapping (our category -> Perspective attribute). Scores are this service's calibrated
probabilities, so 0.7 means "about 70 % of such texts are what the category names":

| Perspective attribute | our category | note |
|---|---|---|
| TOXICITY, TOXICITY_FAST | toxicity | |
| SEVERE_TOXICITY | toxicity, squared | no separate model: always <= TOXICITY, like Perspective's |
| INSULT | insult | the abuse head for abuse aimed at a person; toxicity when no abuse heads are loaded |
| PROFANITY | toxicity | no separate swearing model: a proxy |
| IDENTITY_ATTACK | identity_attack or identity_hate, the higher | includes disability and illness |
| THREAT | threat | |
| DISTRESS | distress | this service's own attribute |
| SUICIDE_RISK | suicide_risk | this service's own attribute |
| COMMERCIAL, SPAM | commercial | no Perspective selling attribute: its retired SPAM (unsolicited commercial content) is the nearest |

``*_EXPERIMENTAL`` names score like their base attribute; ``@version`` suffixes are accepted and
ignored. Perspective's other attributes (SEXUALLY_EXPLICIT, FLIRTATION, the New York Times ones) are
known but not scored: an error, or dropped with ``dropUnsupportedAttributes``, as Perspective treats an
attribute its model lacks. The language is detected when the request names none, and a comment our
models do not read (Spanish, say) gets Perspective's language error instead of English scores.

Span offsets are UTF-16 code units, as in the discovery document (JavaScript string indices).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import re2
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from moderation_service.api.compat.google_batch import BatchError, parse_batch, render_batch
from moderation_service.api.compat.perspective_discovery import VERSION, discovery_document
from moderation_service.api.state import services_of, state_of
from moderation_service.errors import AuthError, ForbiddenError, InputError, ModerationError, OverloadedError
from moderation_service.keys import ApiKey
from moderation_service.service import Decision, PostIn, Services, html_to_text
from moderation_service.service.feedback import record_suggestion
from moderation_service.service.moderate import admit, judge_parts

__all__ = ["ATTRIBUTES", "MAX_TEXT_BYTES", "UNSCORED", "AnalyzeRequest", "GoogleError", "SuggestRequest", "router", "utf16_offset"]

ATTRIBUTES: dict[str, tuple[str, Callable[[float], float]]] = {
    "TOXICITY": ("toxicity", lambda s: s),
    "TOXICITY_FAST": ("toxicity", lambda s: s),
    "SEVERE_TOXICITY": ("toxicity", lambda s: s * s),
    "INSULT": ("insult", lambda s: s),
    "PROFANITY": ("toxicity", lambda s: s),
    "IDENTITY_ATTACK": ("identity_attack", lambda s: s),
    "THREAT": ("threat", lambda s: s),
    "DISTRESS": ("distress", lambda s: s),
    "SUICIDE_RISK": ("suicide_risk", lambda s: s),
    "COMMERCIAL": ("commercial", lambda s: s),
    "SPAM": ("commercial", lambda s: s),
}
# A label the loaded models lack is read from its nearest one (a Detoxify backend, or no abuse heads trained).
_FALLBACK = {"insult": "toxicity"}
# Labels read together, as their maximum: the abuse head for group hate beside the encoder's own category.
_ALSO = {"identity_attack": "identity_hate"}
# Perspective's attributes that this service has no model for.
UNSCORED = frozenset(
    "SEXUALLY_EXPLICIT FLIRTATION ATTACK_ON_AUTHOR ATTACK_ON_COMMENTER INCOHERENT INFLAMMATORY LIKELY_TO_REJECT OBSCENE "
    "UNSUBSTANTIAL".split()
)
PROBABILITY_TYPES = ("PROBABILITY", "SCORE_TYPE_UNSPECIFIED")
MAX_TEXT_BYTES = 20 * 1024  # Perspective counts UTF-8 bytes of comment.text
router = APIRouter(tags=["perspective"])
_BOUNDARY = re2.compile(r"[.!?]+\s+|\n+")  # sentence ends: punctuation then space, or a line break
_ERROR_TYPE = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"


class GoogleError(Exception):
    """An answer in Google's error format (``{"error": {code, message, status, details}}``)."""

    def __init__(self, code: int, status: str, message: str, error_type: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = {"code": code, "message": message, "status": status}
        if error_type:
            self.body["details"] = [{"@type": _ERROR_TYPE, "errorType": error_type, **detail}]
        self.code = code


def _base(name: str) -> str:
    """``TOXICITY@6`` -> ``TOXICITY``; ``INSULT_EXPERIMENTAL`` -> ``INSULT``."""
    return name.split("@", 1)[0].removesuffix("_EXPERIMENTAL")


def utf16_offset(text: str, index: int) -> int:
    """A Python string index as a UTF-16 code unit offset (characters beyond U+FFFF count twice)."""
    return index + sum(1 for ch in text[:index] if ord(ch) > 0xFFFF)


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
    scoreType: str | None = None  # noqa: N815 - Perspective's field names
    scoreThreshold: float | None = Field(default=None, ge=0, le=1)  # noqa: N815


class AnalyzeRequest(_Loose):
    comment: _Comment
    requestedAttributes: dict[str, _Requested] = Field(min_length=1)  # noqa: N815
    languages: list[str] | None = None
    doNotStore: bool = False  # noqa: N815 - nothing from analyze is stored either way
    spanAnnotations: bool = False  # noqa: N815
    dropUnsupportedAttributes: bool = False  # noqa: N815
    clientToken: str | None = None  # noqa: N815
    communityId: str | None = None  # noqa: N815
    sessionId: str | None = None  # noqa: N815


class _SuggestedScore(_Loose):
    value: float = Field(ge=0, le=1)


class _SuggestedAttribute(_Loose):
    summaryScore: _SuggestedScore | None = None  # noqa: N815


class SuggestRequest(_Loose):
    comment: _Comment
    attributeScores: dict[str, _SuggestedAttribute] = Field(min_length=1)  # noqa: N815
    languages: list[str] | None = None
    clientToken: str | None = None  # noqa: N815
    communityId: str | None = None  # noqa: N815


def _authenticate(request_key: str | None, header_key: str | None, request: Request) -> ApiKey:
    token = request_key or header_key
    if not token:
        raise GoogleError(403, "PERMISSION_DENIED", "The request is missing a valid API key.")
    try:
        return state_of(request).keys.authenticate(token, "moderate")
    except ForbiddenError as exc:
        raise GoogleError(403, "PERMISSION_DENIED", "The API key does not have the moderate scope.") from exc
    except AuthError as exc:
        raise GoogleError(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID") from exc


def _parse(model: type[AnalyzeRequest] | type[SuggestRequest], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise GoogleError(400, "INVALID_ARGUMENT", f"Invalid JSON payload: {where}: {exc.errors()[0]['msg']}") from exc


def _post(comment: _Comment) -> PostIn:
    text = html_to_text(comment.text) if comment.type == "HTML" else comment.text
    if len(comment.text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise GoogleError(400, "INVALID_ARGUMENT", f"Comment text too long: at most {MAX_TEXT_BYTES} bytes.", "COMMENT_TOO_LONG")
    try:
        return PostIn(text=text)
    except ValidationError as exc:
        raise GoogleError(400, "INVALID_ARGUMENT", "Comment text was too short.", "COMMENT_EMPTY") from exc


def _languages(requested: list[str] | None, attribute: str) -> None:
    other = [lang for lang in requested or [] if lang.split("-")[0].lower() != "en"]
    if requested and len(other) == len(requested):
        detail = {"requestedLanguages": requested, "attribute": attribute}
        raise GoogleError(
            400, "INVALID_ARGUMENT", f"Attribute {attribute} does not support request languages: {', '.join(other)}",
            "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE", languageNotSupportedByAttributeError=detail,
        )  # fmt: skip


def _score(value: float) -> dict[str, Any]:
    return {"value": round(value, 6), "type": "PROBABILITY"}


def _wanted(body: AnalyzeRequest, detected: str, readable: bool) -> dict[str, tuple[str, Callable[[float], float], _Requested]]:
    """The attributes to score; unknown, unscored or unreadable ones are an error or dropped, as Perspective does."""
    wanted = {}
    for name, params in body.requestedAttributes.items():
        base = _base(name)
        if base not in ATTRIBUTES and base not in UNSCORED:
            raise GoogleError(400, "INVALID_ARGUMENT", f"Unknown attribute: {name}")
        if params.scoreType is not None and params.scoreType not in PROBABILITY_TYPES:
            raise GoogleError(400, "INVALID_ARGUMENT", f"Requested score type {params.scoreType} is not supported")
        if base in ATTRIBUTES and readable:
            wanted[name] = (*ATTRIBUTES[base], params)
        elif not body.dropUnsupportedAttributes:
            languages = body.languages or [detected]
            detail = {"detectedLanguages": [detected], "requestedLanguages": body.languages or [], "attribute": name}
            raise GoogleError(
                400, "INVALID_ARGUMENT", f"Attribute {name} does not support request languages: {', '.join(languages)}",
                "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE", languageNotSupportedByAttributeError=detail,
            )  # fmt: skip
    return wanted


def _label_score(scores: dict[str, float], label: str, attribute: str) -> float:
    """The score an attribute reads: its label (or the nearest one the models have), with any label read beside it."""
    label = label if label in scores else _FALLBACK.get(label, label)
    if label not in scores:
        raise GoogleError(400, "INVALID_ARGUMENT", f"Attribute {attribute} is not scored by the models this server runs")
    also = _ALSO.get(label)
    return max(scores[label], scores.get(also, 0.0)) if also else scores[label]


def _analyze(services: Services, body: AnalyzeRequest) -> dict[str, Any]:
    _languages(body.languages, next(iter(body.requestedAttributes)))
    post = _post(body.comment)
    text = post.text
    spans = _sentences(text) if body.spanAnnotations else []
    try:
        admit(services)
        whole, parts = judge_parts(services, post, [text[s:e] for s, e in spans])
    except OverloadedError as exc:
        raise GoogleError(503, "UNAVAILABLE", "The service is overloaded; try again shortly.") from exc
    except InputError as exc:
        raise GoogleError(400, "INVALID_ARGUMENT", str(exc), "COMMENT_TOO_LONG") from exc
    detected = whole.language or "und"
    wanted = _wanted(body, detected, whole.language_supported)
    decisions: list[Decision] = [whole, *parts]
    if wanted and (any(d.degraded for d in decisions) or not whole.scores):
        raise GoogleError(503, "UNAVAILABLE", "The scoring models are unavailable; try again shortly.")
    if not spans:
        spans = [(0, len(text))]
        parts = [whole]
    scores: dict[str, Any] = {}
    for name, (category, transform, params) in wanted.items():
        summary = transform(_label_score(whole.scores, category, name))
        if params.scoreThreshold is not None and summary < params.scoreThreshold:
            continue
        span_scores = [
            {
                "begin": utf16_offset(text, s),
                "end": utf16_offset(text, e),
                "score": _score(transform(_label_score(d.scores, category, name))),
            }
            for (s, e), d in zip(spans, parts, strict=True)
        ]
        scores[name] = {"spanScores": span_scores, "summaryScore": _score(summary)}
    response: dict[str, Any] = {"attributeScores": scores, "languages": body.languages or [detected], "detectedLanguages": [detected]}
    if body.clientToken is not None:
        response["clientToken"] = body.clientToken
    return response


def _suggest(services: Services, body: SuggestRequest, key: ApiKey) -> dict[str, Any]:
    post = _post(body.comment)
    suggested: dict[str, float] = {}
    for name, entry in body.attributeScores.items():
        base = _base(name)
        if base not in ATTRIBUTES and base not in UNSCORED:
            raise GoogleError(400, "INVALID_ARGUMENT", f"Unknown attribute: {name}")
        if base in ATTRIBUTES and entry.summaryScore is not None:
            suggested[ATTRIBUTES[base][0]] = max(suggested.get(ATTRIBUTES[base][0], 0.0), entry.summaryScore.value)
    decision = record_suggestion(services, post, suggested, key.id)
    response: dict[str, Any] = {"detectedLanguages": [decision.language or "und"], "requestedLanguages": body.languages or []}
    if body.clientToken is not None:
        response["clientToken"] = body.clientToken
    return response


def _call(services: Services, request: Request, path: str, query_key: str | None, header_key: str | None, raw: bytes) -> tuple[int, Any]:
    """One Perspective method call (also one part of a batch): (status, JSON body)."""
    try:
        key = _authenticate(query_key, header_key, request)
        if path.endswith("comments:analyze"):
            return 200, _analyze(services, _parse(AnalyzeRequest, raw))
        if path.endswith("comments:suggestscore"):
            return 200, _suggest(services, _parse(SuggestRequest, raw), key)
        raise GoogleError(404, "NOT_FOUND", f"Method not found: {path}")
    except GoogleError as exc:
        return exc.code, {"error": exc.body}
    except ModerationError as exc:  # e.g. the store is down for suggestscore
        return 503, {"error": {"code": 503, "message": f"The service is unavailable: {exc.__class__.__name__}", "status": "UNAVAILABLE"}}


async def _method(request: Request) -> JSONResponse:
    raw = await request.body()
    args = (services_of(request), request, request.url.path, request.query_params.get("key"), request.headers.get("x-goog-api-key"), raw)
    status, body = await run_in_threadpool(_call, *args)
    return JSONResponse(body, status_code=status)


@router.post(f"/{VERSION}/comments:analyze")
async def analyze(request: Request) -> JSONResponse:
    """Scores for the requested attributes (``?key=`` or ``X-Goog-Api-Key``)."""
    return await _method(request)


@router.post(f"/{VERSION}/comments:suggestscore")
async def suggestscore(request: Request) -> JSONResponse:
    """A suggested score, stored as moderator feedback on this service's decision for the text."""
    return await _method(request)


def _batch(services: Services, request: Request, content_type: str, raw: bytes) -> tuple[str, bytes]:
    answers = []
    for part in parse_batch(content_type, raw):
        status, body = _call(services, request, part.path, part.query.get("key"), part.headers.get("x-goog-api-key"), part.body)
        answers.append((part.content_id, status, body))
    return render_batch(answers)


@router.post("/batch", include_in_schema=False)  # Google's wire format, described by the discovery document
async def batch(request: Request) -> Response:
    """Google's batch endpoint (``batchPath``): several method calls in one ``multipart/mixed`` request."""
    raw = await request.body()
    try:
        content_type, body = await run_in_threadpool(_batch, services_of(request), request, request.headers.get("content-type", ""), raw)
    except BatchError as exc:
        return JSONResponse({"error": {"code": 400, "message": str(exc), "status": "INVALID_ARGUMENT"}}, status_code=400)
    return Response(body, media_type=content_type)


@router.get("/$discovery/rest")
def discovery(request: Request, version: str = VERSION) -> JSONResponse:
    """The discovery document (``googleapiclient.discovery.build``, Node ``googleapis-common``)."""
    if version != VERSION:
        message = f"Discovery document not found for API service: commentanalyzer {version}"
        return JSONResponse({"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}, status_code=404)
    return JSONResponse(discovery_document(str(request.base_url)))
