"""Coral's external moderation phase: Coral POSTs each new or edited comment, we answer in time.

The request is signed like Coral's webhooks: ``X-Coral-Signature: sha256=<hex HMAC-SHA256 of the raw
body>``, possibly several comma-separated while a secret is rotated; any one valid signature from the
tenant's secrets is enough, compared in constant time. Nothing is parsed before that check passes.

Mapping: allow -> 204 (no opinion); hold -> SYSTEM_WITHHELD + FLAG; escalate -> FLAG, withheld when the
decision says not to publish (imminent risk, threats), and recorded in the escalation queue with the
story URL so a moderator can find it. Staff, moderators and admins are never withheld by default.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool

from moderation_service.api.problems import problem
from moderation_service.api.state import services_of
from moderation_service.errors import InputError
from moderation_service.service import Action, Decision, PostIn, Services
from moderation_service.service.escalate import record_escalation
from moderation_service.service.moderate import judge

__all__ = ["ExternalModerationRequest", "router", "signature_valid"]

router = APIRouter(tags=["coral"])
STAFF_ROLES = {"STAFF", "MODERATOR", "ADMIN"}
SPAM_CATEGORIES = {"commercial"}


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


def _response(decision: Decision) -> dict[str, Any]:
    categories = {r.category for r in decision.reasons if r.action is not Action.allow}
    reason = "COMMENT_DETECTED_SPAM" if categories and categories <= SPAM_CATEGORIES else "COMMENT_DETECTED_TOXIC"
    body: dict[str, Any] = {"actions": [{"actionType": "FLAG", "reason": reason}]}
    if not decision.publish:
        body["status"] = "SYSTEM_WITHHELD"
    return body


def _judge(services: Services, post: PostIn, story_url: str) -> Decision:
    """Judge the comment and, for an escalation, put it on the human queue with the story URL."""
    [decision] = judge(services, [post])
    record_escalation(services, decision, context=story_url)
    return decision


@router.post("/integrations/coral/moderation-phase")
async def moderation_phase(request: Request) -> Response:
    services = services_of(request)
    coral = services.coral
    raw = await request.body()
    all_secrets = [secret for tenant_secrets in coral.secrets.values() for secret in tenant_secrets]
    if not signature_valid(request.headers.get("x-coral-signature"), raw, all_secrets):
        return problem(401, "bad_signature", "Unauthorized", "missing or invalid X-Coral-Signature")
    try:
        payload = ExternalModerationRequest.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return problem(400, "invalid_request", "Invalid request", "not an External Moderation Request")
    if not signature_valid(request.headers.get("x-coral-signature"), raw, coral.secrets.get(payload.tenantID, [])):
        return problem(401, "bad_signature", "Unauthorized", "the signature does not belong to this tenant")
    try:
        post = PostIn(text=payload.comment.body, community=coral.rulebook)
        decision = await run_in_threadpool(_judge, services, post, payload.story.url)
    except (InputError, ValidationError):
        return Response(status_code=204)  # empty or oversized: Coral's own phases handle length
    if decision.action is Action.allow or (payload.author.role in STAFF_ROLES and not coral.withhold_staff):
        return Response(status_code=204)
    return JSONResponse(_response(decision))
