"""Redis-backed state: submissions, decisions, idempotency, escalations, feedback, audit trail.

Redis is the only stateful part. Multi-step changes run as Lua scripts so they are atomic: a
submission is stored with its idempotency key in one step, and a decision is stored at most once
however many times a job runs. Post text lives under its own key with a short TTL; the record
without text is kept longer. The audit trail never holds text or author ids.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from moderation_service.decision import Decision, Priority
from moderation_service.errors import ModerationError

__all__ = ["IdempotencyConflict", "Store", "StoreUnavailable", "Submission", "connect"]

P = "ms:"
PENDING = P + "pending"  # submissions not yet finished, scored by when they were last (re)queued
LEASES = P + "leases"  # running jobs, scored by when their lease runs out
WEBHOOKS_DUE = P + "webhooks:due"  # deliveries waiting for their retry time
ESCALATIONS_OPEN = P + "escalations:open"  # open escalations, scored by creation time (oldest first)
ESCALATIONS_ACKED = P + "escalations:acked"  # handled escalations, scored by when a moderator acknowledged them
FEEDBACK_INDEX = P + "feedback"
AUDIT = P + "audit"
DECISIONS_STORED = P + "stats:decisions_stored"


class StoreUnavailable(ModerationError):
    """Redis cannot be reached; the API answers 503 with Retry-After."""


class IdempotencyConflict(ModerationError):
    """The same (key, post_id) was submitted before with a different text."""


@dataclass(frozen=True)
class Submission:
    id: str
    status: str
    post_id: str
    attempt: int
    created_at: float
    updated_at: float
    decision: dict[str, Any] | None
    error: str | None
    callback_url: str | None
    webhook_status: str | None
    webhook_attempts: int


def connect(url: str) -> redis.Redis:
    """A client that fails fast (the API must answer 503 quickly, not hang) and reconnects by itself."""
    return redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=2, health_check_interval=15, retry_on_timeout=False)


_CREATE = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
redis.call('HSET', KEYS[2], 'status', 'queued', 'post_id', ARGV[4], 'key_id', ARGV[5], 'attempt', 1,
  'created_at', ARGV[6], 'updated_at', ARGV[6], 'callback_url', ARGV[7], 'text_hash', ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'event', 'submitted', 'id', ARGV[1], 'key_id', ARGV[5])
return 'new'
"""

_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' or status == 'failed' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'attempt')) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

_COMPLETE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' or status == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'done', 'decision', ARGV[1], 'updated_at', ARGV[2], 'action', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'event', 'decided', 'id', ARGV[4], 'action', ARGV[3])
return 1
"""

_REQUEUE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' or status == 'failed' then
  redis.call('ZREM', KEYS[2], ARGV[1]); redis.call('ZREM', KEYS[3], ARGV[1]); return -1
end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt'))
if attempt >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[3], 'updated_at', ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[1]); redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'event', 'failed', 'id', ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempt', attempt + 1, 'updated_at', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'event', 'requeued', 'id', ARGV[1])
return attempt + 1
"""

_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZREM', KEYS[1], member) end
return due
"""


def _sub(sub_id: str) -> str:
    return f"{P}sub:{sub_id}"


def _text(sub_id: str) -> str:
    return f"{P}text:{sub_id}"


def text_hash(body: dict[str, Any]) -> str:
    content = json.dumps({k: body.get(k) for k in ("text", "title")}, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:32]


class Store:
    def __init__(self, client: redis.Redis, text_ttl_s: int, record_ttl_s: int) -> None:
        self.redis = client
        self.text_ttl_s = text_ttl_s
        self.record_ttl_s = record_ttl_s
        self._create = client.register_script(_CREATE)
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._requeue = client.register_script(_REQUEUE)
        self._pop_due = client.register_script(_POP_DUE)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable("the decision store (Redis) is unreachable") from exc

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    # --- submissions ---------------------------------------------------------------------------
    def create_submission(self, key_id: str, post_id: str, body: dict[str, Any], callback_url: str | None) -> tuple[str, bool]:
        """(submission id, created). Raises IdempotencyConflict or StoreUnavailable."""
        sub_id = secrets.token_hex(12)
        digest = text_hash(body)
        idem = f"{P}idem:{key_id}:{hashlib.sha256(post_id.encode()).hexdigest()[:32]}"
        now = f"{time.time():.6f}"
        keys = [idem, _sub(sub_id), _text(sub_id), PENDING, AUDIT]
        args = [sub_id, digest, self.record_ttl_s, post_id, key_id, now, callback_url or "", json.dumps(body), self.text_ttl_s]
        result = self._call(self._create, keys=keys, args=args)
        if result == b"new":
            return sub_id, True
        existing_id, _, existing_digest = result.decode().partition("|")
        if existing_digest != digest:
            raise IdempotencyConflict(f"post_id was already submitted with different text (submission {existing_id})")
        return existing_id, False

    def get(self, sub_id: str) -> Submission | None:
        raw = self._call(self.redis.hgetall, _sub(sub_id))
        if not raw:
            return None
        row = {k.decode(): v.decode() for k, v in raw.items()}
        return Submission(
            id=sub_id,
            status=row["status"],
            post_id=row.get("post_id", ""),
            attempt=int(row.get("attempt", "1")),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
            decision=json.loads(row["decision"]) if row.get("decision") else None,
            error=row.get("error"),
            callback_url=row.get("callback_url") or None,
            webhook_status=row.get("webhook_status"),
            webhook_attempts=int(row.get("webhook_attempts", "0")),
        )

    def body(self, sub_id: str) -> dict[str, Any] | None:
        raw = self._call(self.redis.get, _text(sub_id))
        return json.loads(raw) if raw else None

    def claim(self, sub_id: str, attempt: int, lease_s: float) -> bool:
        """Mark running under a lease; False when done, failed, or a newer attempt owns it."""
        now = time.time()
        return bool(self._call(self._claim, keys=[_sub(sub_id), LEASES], args=[attempt, f"{now:.6f}", f"{now + lease_s:.6f}", sub_id]))

    def extend_lease(self, sub_id: str, lease_s: float) -> None:
        """Heartbeat of a running job: only a job that stops beating is re-queued."""
        self._call(self.redis.zadd, LEASES, {sub_id: time.time() + lease_s}, xx=True)

    def complete(self, sub_id: str, decision: dict[str, Any]) -> bool:
        """Store the decision once; True only for the call that stored it."""
        keys = [_sub(sub_id), LEASES, PENDING, DECISIONS_STORED, AUDIT]
        args = [json.dumps(decision), f"{time.time():.6f}", decision["action"], sub_id]
        return bool(self._call(self._complete, keys=keys, args=args))

    def requeue(self, sub_id: str, max_attempts: int, reason: str) -> int:
        """Next attempt number; 0 when attempts are used up (now failed); -1 when already finished."""
        keys = [_sub(sub_id), LEASES, PENDING, AUDIT]
        return int(self._call(self._requeue, keys=keys, args=[sub_id, max_attempts, reason, f"{time.time():.6f}"]))

    def fail(self, sub_id: str, reason: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(_sub(sub_id), mapping={"status": "failed", "error": reason, "updated_at": f"{time.time():.6f}"})
        pipe.zrem(LEASES, sub_id)
        pipe.zrem(PENDING, sub_id)
        pipe.xadd(AUDIT, {"event": "failed", "id": sub_id}, maxlen=100_000, approximate=True)
        self._call(pipe.execute)

    def expired_leases(self, now: float, limit: int = 500) -> list[str]:
        return [m.decode() for m in self._call(self.redis.zrangebyscore, LEASES, "-inf", now, start=0, num=limit)]

    def stale_pending(self, older_than: float, limit: int = 500) -> list[str]:
        return [m.decode() for m in self._call(self.redis.zrangebyscore, PENDING, "-inf", older_than, start=0, num=limit)]

    def touch_pending(self, sub_id: str) -> None:
        self._call(self.redis.zadd, PENDING, {sub_id: time.time()}, xx=True)

    def decisions_stored(self) -> int:
        return int(self._call(self.redis.get, DECISIONS_STORED) or 0)

    # --- webhooks ------------------------------------------------------------------------------
    def schedule_webhook(self, sub_id: str, due: float) -> None:
        self._call(self.redis.zadd, WEBHOOKS_DUE, {sub_id: due})

    def pop_due_webhooks(self, now: float, limit: int = 200) -> list[str]:
        return [m.decode() for m in self._call(self._pop_due, keys=[WEBHOOKS_DUE], args=[f"{now:.6f}", limit])]

    def webhook_result(self, sub_id: str, status: str, attempts: int) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(_sub(sub_id), mapping={"webhook_status": status, "webhook_attempts": attempts})
        pipe.xadd(AUDIT, {"event": f"webhook_{status}", "id": sub_id}, maxlen=100_000, approximate=True)
        self._call(pipe.execute)

    # --- escalations ---------------------------------------------------------------------------
    def escalate(self, decision_id: str, decision: Decision, post_id: str | None = None, context: str = "") -> None:
        """Put an escalated decision on the human queue, with its priority and categories (never its text)."""
        categories = sorted({r.category for r in decision.reasons})
        self.add_escalation(decision_id, (decision.priority or Priority.normal).value, post_id, categories, context)

    def add_escalation(self, decision_id: str, priority: str, post_id: str | None, categories: list[str], context: str = "") -> None:
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.hset(
            f"{P}esc:{decision_id}",
            mapping={
                "priority": priority,
                "post_id": post_id or "",
                "categories": ",".join(categories),
                "created_at": now,
                "status": "open",
                "context": context,
            },
        )
        pipe.expire(f"{P}esc:{decision_id}", self.record_ttl_s)
        pipe.zadd(ESCALATIONS_OPEN, {decision_id: now}, nx=True)
        pipe.xadd(AUDIT, {"event": "escalated", "id": decision_id, "priority": priority}, maxlen=100_000, approximate=True)
        self._call(pipe.execute)

    def open_escalations(self, limit: int = 100) -> list[dict[str, Any]]:
        ids = [m.decode() for m in self._call(self.redis.zrange, ESCALATIONS_OPEN, 0, limit - 1)]
        return self._escalation_rows(ids)

    def acked_escalations(self, limit: int = 100) -> list[dict[str, Any]]:
        """Handled escalations, most recently acknowledged first (kept as long as their records)."""
        self._call(self.redis.zremrangebyscore, ESCALATIONS_ACKED, "-inf", time.time() - self.record_ttl_s)
        ids = [m.decode() for m in self._call(self.redis.zrevrange, ESCALATIONS_ACKED, 0, limit - 1)]
        return self._escalation_rows(ids)

    def _escalation_rows(self, ids: list[str]) -> list[dict[str, Any]]:
        pipe = self.redis.pipeline(transaction=False)  # one round trip, however many are open
        for decision_id in ids:
            pipe.hgetall(f"{P}esc:{decision_id}")
        rows = self._call(pipe.execute) if ids else []
        now = time.time()
        out = []
        for decision_id, raw in zip(ids, rows, strict=True):
            if not raw:
                continue
            row = {k.decode(): v.decode() for k, v in raw.items()}
            created = float(row["created_at"])
            out.append(
                {
                    "id": decision_id,
                    "priority": row["priority"],
                    "post_id": row["post_id"] or None,
                    "categories": [c for c in row["categories"].split(",") if c],
                    "context": row.get("context") or None,
                    "created_at": created,
                    "age_seconds": round(now - created, 1),
                    "status": row.get("status", "open"),
                    **({"acked_at": float(row["acked_at"]), "acked_by": row.get("acked_by")} if "acked_at" in row else {}),
                }
            )
        return out

    def ack_escalation(self, decision_id: str, key_id: str) -> bool:
        removed = self._call(self.redis.zrem, ESCALATIONS_OPEN, decision_id)
        if removed:
            pipe = self.redis.pipeline()
            now = time.time()
            pipe.hset(f"{P}esc:{decision_id}", mapping={"status": "acked", "acked_at": now, "acked_by": key_id})
            pipe.zadd(ESCALATIONS_ACKED, {decision_id: now})
            pipe.xadd(AUDIT, {"event": "escalation_acked", "id": decision_id, "key_id": key_id}, maxlen=100_000, approximate=True)
            self._call(pipe.execute)
        return bool(removed)

    # --- feedback ------------------------------------------------------------------------------
    def add_feedback(self, decision_id: str, feedback: dict[str, Any], key_id: str) -> None:
        record = {**feedback, "decision_id": decision_id, "key_id": key_id, "created_at": time.time()}
        pipe = self.redis.pipeline()
        pipe.rpush(f"{P}feedback:{decision_id}", json.dumps(record))
        pipe.zadd(FEEDBACK_INDEX, {decision_id: time.time()})
        pipe.xadd(
            AUDIT, {"event": "feedback", "id": decision_id, "outcome": str(feedback.get("outcome"))}, maxlen=100_000, approximate=True
        )
        self._call(pipe.execute)

    def iter_feedback(self) -> Iterator[dict[str, Any]]:
        for member in self._call(self.redis.zrange, FEEDBACK_INDEX, 0, -1):
            for raw in self._call(self.redis.lrange, f"{P}feedback:{member.decode()}", 0, -1):
                yield json.loads(raw)

    def decision_exists(self, decision_id: str) -> bool:
        return bool(self._call(self.redis.exists, _sub(decision_id), f"{P}esc:{decision_id}"))

    def audit_events(self, count: int = 1000) -> list[dict[str, str]]:
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in self._call(self.redis.xrevrange, AUDIT, count=count)]
