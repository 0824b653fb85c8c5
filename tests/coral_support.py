"""Coral's side of the external moderation phase, for tests: requests built as Coral builds them, and
Coral's response validation ported from its Joi schema (server/.../pipeline/phases/external.ts).

Coral serialises the request with ``JSON.stringify(request, null, 2)`` (2-space indent, non-ASCII
characters left as they are), signs that exact string with every active secret
(``sha256=<hex>``, comma-joined), and validates a non-empty answer with ``stripUnknown: true``: unknown
keys are dropped, known keys must hold allowed values, and a failure means the phase is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["CoralAnswer", "coral_body", "coral_signature", "validate_coral_answer"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
COMMENT_STATUS = Literal["NONE", "APPROVED", "REJECTED", "PREMOD", "SYSTEM_WITHHELD"]


class _Stripped(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Joi's stripUnknown


class _RejectionReason(_Stripped):
    code: str | None = None
    legalGrounds: str | None = None  # noqa: N815 - Coral's field names
    detailedExplanation: str | None = None  # noqa: N815
    customReason: str | None = None  # noqa: N815


class _ModerationAction(_Stripped):
    status: COMMENT_STATUS | None = None
    rejectionReason: _RejectionReason | None = None  # noqa: N815


class _Action(_Stripped):
    actionType: Literal["FLAG"]  # noqa: N815
    reason: Literal["COMMENT_DETECTED_TOXIC", "COMMENT_DETECTED_SPAM"]


class CoralAnswer(_Stripped):
    moderationAction: _ModerationAction | None = None  # noqa: N815
    actions: list[_Action] | None = None
    status: COMMENT_STATUS | None = None
    tags: list[Literal["FEATURED", "STAFF"]] | None = None


def validate_coral_answer(status: int, text: str) -> CoralAnswer | None:
    """What Coral makes of an answer: None where it carries on as if no phase had answered (publish)."""
    if not 200 <= status < 300 or status == 204 or text in ("", "{}"):
        return None
    return CoralAnswer.model_validate(json.loads(text))  # raises like Joi's validate on a bad answer


def coral_body(
    body: str,
    *,
    tenant: str,
    action: str = "NEW",
    role: str = "COMMENTER",
    parent: str | None = None,
    author: str = "baf4e943-3594-4fcc-b2ba-3e8de7a76352",
    story: str = "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6",
) -> str:
    """The request body, key order and formatting as Coral's ``generateFetchOptions`` produces it."""
    request: dict[str, Any] = {
        "action": action,
        "comment": {"body": body, "parentID": parent},
        "author": {"id": author, "role": role},
        "story": {"id": story, "url": "http://localhost:1313/posts/a-story-url/"},
        "site": {"id": "a4bede88-2d2c-4424-bc18-4322a9e285a6"},
        "tenantID": tenant,
        "tenantDomain": "localhost",
    }
    # JSON.stringify escapes only lone surrogates among non-ASCII characters (well-formed JSON.stringify, ES2019).
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(request, indent=2, ensure_ascii=False))


def coral_signature(body: str, *secrets: str) -> str:
    """``X-Coral-Signature``: one ``sha256=`` HMAC per active secret, comma-joined, over the UTF-8 body."""
    return ",".join("sha256=" + hmac.new(s.encode(), body.encode(), hashlib.sha256).hexdigest() for s in secrets)
