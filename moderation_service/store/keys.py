"""Every Redis key and RQ queue key the service uses, in one place (nothing outside ``store`` builds one)."""

from __future__ import annotations

import hashlib

__all__ = [
    "AOF_REWRITE_TURN",
    "AUDIT",
    "DECISIONS_STORED",
    "ESCALATIONS_ACKED",
    "ESCALATIONS_OPEN",
    "FEEDBACK_INDEX",
    "KEYS_REVOKED",
    "LEASES",
    "PENDING",
    "PREFIX",
    "REAPER_LOCK",
    "RULEBOOK_VERSION",
    "WEBHOOKS_DUE",
    "console_prefs",
    "console_session",
    "decision",
    "escalation",
    "feedback",
    "idempotency",
    "rq_queue",
    "submission",
    "tenant_escalations",
    "tenant_feedback",
    "text",
]

PREFIX = "ms:"
PENDING = PREFIX + "pending"  # submissions not yet finished, scored by when they were last (re)queued
LEASES = PREFIX + "leases"  # running jobs, scored by when their lease runs out
WEBHOOKS_DUE = PREFIX + "webhooks:due"  # deliveries waiting for their retry time
ESCALATIONS_OPEN = PREFIX + "escalations:open"  # open escalations, scored by creation time (oldest first)
ESCALATIONS_ACKED = PREFIX + "escalations:acked"  # handled escalations, scored by when a moderator acknowledged them
FEEDBACK_INDEX = PREFIX + "feedback"
AUDIT = PREFIX + "audit"
DECISIONS_STORED = PREFIX + "stats:decisions_stored"
REAPER_LOCK = PREFIX + "reaper:lock"
KEYS_REVOKED = PREFIX + "keys:revoked"  # API key id -> when it was revoked (every process reads it)
AOF_REWRITE_TURN = PREFIX + "aof:rewrite"  # held for one rewrite interval by the worker that asked Redis to rewrite
RULEBOOK_VERSION = PREFIX + "rulebooks:version"  # the rulebook digest every process follows


def submission(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}"


def text(sub_id: str) -> str:
    """The submitted post (with its text): kept only for the short text TTL."""
    return f"{PREFIX}text:{sub_id}"


def idempotency(key_id: str, post_id: str) -> str:
    """Per API key and post; the post id is hashed so a client's ids never appear in key names."""
    return f"{PREFIX}idem:{key_id}:{hashlib.sha256(post_id.encode()).hexdigest()[:32]}"


def escalation(decision_id: str) -> str:
    return f"{PREFIX}esc:{decision_id}"


def decision(decision_id: str) -> str:
    """A sync allow/hold decision's record (no text), so moderators can give feedback on it."""
    return f"{PREFIX}decision:{decision_id}"


def feedback(decision_id: str) -> str:
    return f"{PREFIX}feedback:{decision_id}"


def tenant_escalations(tenant: str, status: str) -> str:
    """One tenant's open or acknowledged escalations (the global sets above stay for metrics)."""
    return f"{PREFIX}t:{tenant}:escalations:{status}"


def tenant_feedback(tenant: str) -> str:
    return f"{PREFIX}t:{tenant}:feedback"


def console_session(digest: str) -> str:
    """A console sign-in, under a hash of its cookie (the cookie itself is never stored)."""
    return f"{PREFIX}console:session:{digest}"


def console_prefs(key_id: str) -> str:
    """A moderator's console settings (keep sensitive posts unblurred), by API key id."""
    return f"{PREFIX}console:prefs:{key_id}"


def rq_queue(name: str) -> str:
    """The list RQ keeps a queue's waiting job ids in (RQ's own naming)."""
    return f"rq:queue:{name}"
