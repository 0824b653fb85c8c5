"""The discovery document of the Perspective-compatible API (Google's ``discovery#restDescription`` format).

Written from the published ``commentanalyzer:v1alpha1`` contract (methods, schemas, standard query
parameters, ``batchPath``), so generated clients (google-api-python-client, Node ``googleapis-common``)
build the same methods and validate the same shapes as against Google's service; only the root URL
points here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VERSION", "discovery_document"]

VERSION = "v1alpha1"
SCORE_TYPES = ["SCORE_TYPE_UNSPECIFIED", "PROBABILITY", "STD_DEV_SCORE", "PERCENTILE", "RAW"]


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _query(description: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "location": "query", "description": description, **extra}


def _schema(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"id": name, "type": "object", "description": description, "properties": properties}


def _ref(name: str, description: str = "") -> dict[str, Any]:
    return {"$ref": name, "description": description}


def _list(item: dict[str, Any], description: str) -> dict[str, Any]:
    return {"type": "array", "items": item, "description": description}


_PARAMETERS = {
    "$.xgafv": _query("V1 error format.", enum=["1", "2"]),
    "access_token": _query("OAuth access token (not accepted here: use key)."),
    "alt": _query("Data format for response.", default="json", enum=["json", "media", "proto"]),
    "callback": _query("JSONP"),
    "fields": _query("Selector specifying which fields to include in a partial response."),
    "key": _query("API key (msk_...); the X-Goog-Api-Key header works as well."),
    "oauth_token": _query("OAuth 2.0 token (not accepted here: use key)."),
    "prettyPrint": _query("Returns response with indentations and line breaks.", "boolean", default="true"),
    "quotaUser": _query("Quota user (ignored)."),
    "uploadType": _query("Legacy upload protocol for media."),
    "upload_protocol": _query("Upload protocol for media."),
}

_LANGUAGES = _list({"type": "string"}, "Languages of the comment (ISO 639-1); detected when absent.")

_SCHEMAS = {
    "TextEntry": _schema(
        "TextEntry",
        "A body of text.",
        {
            "text": _string("UTF-8 text."),
            "type": _string("Type of the text field.", enum=["TEXT_TYPE_UNSPECIFIED", "PLAIN_TEXT", "HTML"]),
        },
    ),
    "ArticleAndParentComment": _schema(
        "ArticleAndParentComment",
        "The article and the parent comment a comment replies to.",
        {"article": _ref("TextEntry"), "parentComment": _ref("TextEntry")},
    ),
    "Context": _schema(
        "Context",
        "What the comment refers to (accepted, not used in scoring).",
        {"articleAndParentComment": _ref("ArticleAndParentComment"), "entries": _list({"$ref": "TextEntry"}, "A list of messages.")},
    ),
    "AttributeParameters": _schema(
        "AttributeParameters",
        "Configurable parameters for attribute scoring.",
        {
            "scoreThreshold": {"type": "number", "format": "float", "description": "Omit scores below this threshold."},
            "scoreType": _string("What type of scores to return (PROBABILITY only).", enum=SCORE_TYPES),
        },
    ),
    "Score": _schema(
        "Score",
        "A value and its score type.",
        {"type": _string("The type of the value.", enum=SCORE_TYPES), "value": {"type": "number", "format": "float"}},
    ),
    "SpanScore": _schema(
        "SpanScore",
        "A score for a span of the text; begin and end are UTF-16 code unit offsets, end exclusive.",
        {
            "begin": {"type": "integer", "format": "int32"},
            "end": {"type": "integer", "format": "int32"},
            "score": _ref("Score"),
        },
    ),
    "AttributeScores": _schema(
        "AttributeScores",
        "Per-span scores and the summary score of one attribute.",
        {"spanScores": _list({"$ref": "SpanScore"}, "Per-span scores."), "summaryScore": _ref("Score")},
    ),
    "AnalyzeCommentRequest": _schema(
        "AnalyzeCommentRequest",
        "The comment analysis request message.",
        {
            "clientToken": _string("Echoed in the response."),
            "comment": _ref("TextEntry"),
            "communityId": _string("Opaque community id (ignored: the default rulebook applies)."),
            "context": _ref("Context"),
            "doNotStore": {"type": "boolean", "description": "Nothing from analyze is stored either way."},
            "dropUnsupportedAttributes": {
                "type": "boolean",
                "description": "Drop attributes not supported for the comment's language instead of returning an error.",
            },
            "languages": _LANGUAGES,
            "requestedAttributes": {"type": "object", "additionalProperties": {"$ref": "AttributeParameters"}},
            "sessionId": _string("Session ID (ignored)."),
            "spanAnnotations": {"type": "boolean", "description": "Per-sentence span scores (one whole-text span otherwise)."},
        },
    ),
    "AnalyzeCommentResponse": _schema(
        "AnalyzeCommentResponse",
        "The comment analysis response message.",
        {
            "attributeScores": {"type": "object", "additionalProperties": {"$ref": "AttributeScores"}},
            "clientToken": _string("Same token as in the request."),
            "detectedLanguages": _list({"type": "string"}, "Languages detected in the comment."),
            "languages": _list({"type": "string"}, "The request's languages, or the detected one."),
        },
    ),
    "SuggestCommentScoreRequest": _schema(
        "SuggestCommentScoreRequest",
        "Scores the client believes the comment should have; stored as moderator feedback.",
        {
            "attributeScores": {"type": "object", "additionalProperties": {"$ref": "AttributeScores"}},
            "clientToken": _string("Echoed in the response."),
            "comment": _ref("TextEntry"),
            "communityId": _string("Opaque community id (ignored: the default rulebook applies)."),
            "context": _ref("Context"),
            "languages": _LANGUAGES,
            "sessionId": _string("Session ID (ignored)."),
        },
    ),
    "SuggestCommentScoreResponse": _schema(
        "SuggestCommentScoreResponse",
        "The comment score suggestion response message.",
        {
            "clientToken": _string("Same token as in the request."),
            "detectedLanguages": _list({"type": "string"}, "Languages detected in the comment."),
            "requestedLanguages": _list({"type": "string"}, "The request's languages."),
        },
    ),
}


def _method(name: str, request: str, response: str, description: str) -> dict[str, Any]:
    path = f"{VERSION}/comments:{name}"
    return {
        "id": f"commentanalyzer.comments.{name}",
        "description": description,
        "path": path,
        "flatPath": path,
        "httpMethod": "POST",
        "parameters": {},
        "parameterOrder": [],
        "request": {"$ref": request},
        "response": {"$ref": response},
    }


def discovery_document(root_url: str) -> dict[str, Any]:
    """The document for the service at ``root_url`` (ending in ``/``)."""
    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": f"commentanalyzer:{VERSION}",
        "name": "commentanalyzer",
        "canonicalName": "Comment Analyzer",
        "version": VERSION,
        "version_module": True,
        "revision": "20261127",
        "title": "Perspective Comment Analyzer API (moderation-service compatible)",
        "description": "Perspective-compatible scoring by moderation-service: calibrated probabilities from its own models.",
        "protocol": "rest",
        "rootUrl": root_url,
        "servicePath": "",
        "basePath": "",
        "baseUrl": root_url,
        "batchPath": "batch",
        "parameters": _PARAMETERS,
        "schemas": _SCHEMAS,
        "resources": {
            "comments": {
                "methods": {
                    "analyze": _method(
                        "analyze", "AnalyzeCommentRequest", "AnalyzeCommentResponse", "Scores the text for the requested attributes."
                    ),
                    "suggestscore": _method(
                        "suggestscore", "SuggestCommentScoreRequest", "SuggestCommentScoreResponse", "Suggests scores (moderator feedback)."
                    ),
                }
            }
        },
    }
