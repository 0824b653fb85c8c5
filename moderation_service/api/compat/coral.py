"""Coral's external moderation phase: Coral POSTs each new or edited comment, we answer in time.

The request is signed like Coral's webhooks: ``X-Coral-Signature: sha256=<hex HMAC-SHA256 of the raw
body>``, several comma-separated while a secret is rotated; any one valid signature from the tenant's
secrets is enough, compared in constant time. Nothing is parsed before that check passes.

Coral aborts the call after the phase timeout (default 200 ms) and then publishes the comment, and
it treats any non-2xx answer the same way. So once the signature holds, every path answers inside
the tenant's budget with an opinion: the model's decision when it is ready in time, else the rules
and crisis grammars' (partial), and a withheld flag when the comment cannot be read whole (too long,
not the documented shape, an internal failure). Escalations are written after the answer has gone.

Mapping: allow -> 204 (no opinion); hold -> SYSTEM_WITHHELD + FLAG; escalate -> FLAG, withheld when the
decision says not to publish (imminent risk, threats), and recorded in the escalation queue with the
story URL so a moderator can find it. Coral has only two flag reasons: spam, and toxic for the rest
(a distress post shows as ``COMMENT_DETECTED_TOXIC``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.background import BackgroundTask

from moderation_service.api.problems import problem
from moderation_service.api.state import arrived, services_of
from moderation_service.errors import InputError
from moderation_service.service import Action, Decision, PostIn, Services, html_to_text
from moderation_service.service.in_time import InTime, answer_by, finish_in_background, moderate_in_time_async, record_now, to_record_now

__all__ = ["ExternalModerationRequest", "escalation_id", "router", "signature_valid"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["coral"])
SPAM_CATEGORIES = {"commercial"}
TOXIC = "COMMENT_DETECTED_TOXIC"
WITHHELD = {"status": "SYSTEM_WITHHELD", "actions": [{"actionType": "FLAG", "reason": TOXIC}]}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Comment(_Model):
    body: str
    parentID: str | None = None  # noqa: N815 - Coral's field names


class _Author(_Model):
    id: str
    role: str


class _Story(_Model):
    id: str
    url: str


class _Site(_Model):
    id: str


class ExternalModerationRequest(_Model):
    action: str
    comment: _Comment
    author: _Author
    story: _Story
    site: _Site
    tenantID: str  # noqa: N815
    tenantDomain: str  # noqa: N815


def signature_valid(header: str | None, body: bytes, keys: list[str]) -> bool:
    """True when any ``sha256=`` signature in the header matches any of the tenant's signing secrets."""
    if not header or not keys:
        return False
    offered = [value for prefix, _, value in (part.strip().partition("=") for part in header.split(",")) if prefix == "sha256"]
    expected = [hmac.new(key.encode(), body, hashlib.sha256).hexdigest() for key in keys]
    # Compare every pair so timing does not depend on which one matched.
    matches = [hmac.compare_digest(o, e) for o in offered for e in expected]
    return any(matches)


def escalation_id(payload: ExternalModerationRequest, text: str) -> str:
    """One escalation per (tenant, story, author, parent, text): Coral sends no comment id, and re-sends on EDIT."""
    text_hash = hashlib.sha256(text.encode()).hexdigest()
    parts = [payload.tenantID, payload.story.id, payload.author.id, payload.comment.parentID or "", text_hash]
    return "coral-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _response(decision: Decision, cut: bool) -> dict[str, Any] | None:
    """Coral's answer, or None for "no opinion" (204): only when the whole comment was read and is fine."""
    if decision.action is Action.allow and not cut:
        return None
    categories = {r.category for r in decision.reasons if r.action is not Action.allow}
    reason = "COMMENT_DETECTED_SPAM" if categories and categories <= SPAM_CATEGORIES else TOXIC
    body: dict[str, Any] = {"actions": [{"actionType": "FLAG", "reason": reason}]}
    if not decision.publish or cut:
        body["status"] = "SYSTEM_WITHHELD"
    return body


def _text(services: Services, body: str) -> tuple[str, bool]:
    """The comment as a reader sees it, cut to the length the pipeline judges; and whether it was cut."""
    text = html_to_text(body) if services.coral.body_format == "HTML" else body
    limit = services.pipeline.max_text_chars
    return (text[:limit], True) if len(text) > limit else (text, False)


async def _judge(services: Services, payload: ExternalModerationRequest, started: float) -> tuple[InTime | None, bool]:
    text, cut = _text(services, payload.comment.body)
    try:
        post = PostIn(text=text, community=services.coral.rulebook)
    except ValidationError:
        return None, cut  # nothing readable (an image, white space): nothing to judge
    deadline = answer_by(started, services.coral.budget_ms(payload.tenantID))
    [result] = await moderate_in_time_async(services, [post], deadline, [escalation_id(payload, text)])
    return result, cut


@router.post("/integrations/coral/moderation-phase")
async def moderation_phase(request: Request) -> Response:
    started = arrived(request)
    services = services_of(request)
    coral = services.coral
    raw = await request.body()
    all_secrets = [secret for tenant_secrets in coral.secrets.values() for secret in tenant_secrets]
    if not signature_valid(request.headers.get("x-coral-signature"), raw, all_secrets):
        return problem(401, "bad_signature", "Unauthorized", "missing or invalid X-Coral-Signature")
    try:
        payload = ExternalModerationRequest.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        # Signed by a tenant's secret, so it is Coral (or a changed Coral): fail closed, never publish unread.
        log.error("coral request not in the documented shape; withheld")
        return JSONResponse(WITHHELD)
    if not signature_valid(request.headers.get("x-coral-signature"), raw, coral.secrets.get(payload.tenantID, [])):
        return problem(401, "bad_signature", "Unauthorized", "the signature does not belong to this tenant")
    try:
        result, cut = await _judge(services, payload, started)  # the loop awaits the model runners: no thread hop
    except InputError:
        result, cut = None, False
    except Exception as exc:  # an answer Coral reads as "no opinion" would publish it: withhold instead
        log.error("coral comment not judged; withheld", extra={"error": exc.__class__.__name__})
        return JSONResponse(WITHHELD)
    if result is None:
        return JSONResponse(WITHHELD) if cut else Response(status_code=204)
    finish_in_background(services, [result], [None], payload.story.url)  # callbacks only: no I/O, no thread
    # Only when there is something to record now: a background task costs a thread hop after the answer.
    task = BackgroundTask(record_now, services, [result], [None], payload.story.url) if to_record_now(result) else None
    body = _response(result.decision, cut)
    return Response(status_code=204, background=task) if body is None else JSONResponse(body, background=task)
