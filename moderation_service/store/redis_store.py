"""Redis-backed state: submissions, decisions, idempotency, escalations, feedback, audit trail.

Redis is the only stateful part. Multi-step changes run as Lua scripts so they are atomic: a
submission is stored with its idempotency key in one step, and a decision is stored at most once
however many times a job runs. Post text lives under its own key with a short TTL; the record
without text is kept longer. The audit trail never holds text or author ids. Redis errors are
wrapped into ``StoreUnavailable`` where they enter.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import redis

from moderation_service.core.decision import Action, Decision, Priority
from moderation_service.errors import IdempotencyConflict, StoreUnavailable
from moderation_service.store import keys, scripts
from moderation_service.store.rows import (
    DEFAULT_TENANT,
    Attempt,
    Claimed,
    Escalation,
    FeedbackIn,
    FeedbackRecord,
    QueuedDecision,
    QueueStats,
    Scope,
    Submission,
    SubmissionIn,
    WebhookDue,
    WebhookStatus,
)

__all__ = ["Store", "connect", "text_hash"]

_AUDIT_MAX = 100_000


def connect(url: str) -> redis.Redis:
    """A client that fails fast (the API must answer 503 quickly, not hang) and reconnects by itself."""
    return redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=2, health_check_interval=15, retry_on_timeout=False)


def text_hash(body: SubmissionIn) -> str:
    """What makes two submissions of one post_id "the same post" (idempotency): its title and text."""
    content = json.dumps({"text": body.text, "title": body.title}, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:32]


def _due(member: str) -> WebhookDue:
    if member.startswith("{"):
        return WebhookDue.model_validate_json(member)
    sub_id, _, attempt = member.partition(":")  # written by versions before the typed form; read, never written
    return WebhookDue(submission_id=sub_id, attempt=int(attempt or 1))


def _categories(raw: str) -> list[str]:
    if raw.startswith("["):
        return list(json.loads(raw))
    return [c for c in raw.split(",") if c]  # written by versions before the JSON form; read, never written


def _decision(raw: bytes) -> Decision:
    """An escalation's decision: a queued one is stored with its ids (written with it in ``complete``)."""
    return QueuedDecision.model_validate_json(raw) if b'"submission_id"' in raw else Decision.model_validate_json(raw)


def _now() -> str:
    return f"{time.time():.6f}"


class Store:
    def __init__(self, client: redis.Redis, text_ttl_s: int, record_ttl_s: int) -> None:
        self.redis = client
        self.text_ttl_s = text_ttl_s
        self.record_ttl_s = record_ttl_s
        self._create = client.register_script(scripts.CREATE)
        self._create_many = client.register_script(scripts.CREATE_MANY)
        self._claim = client.register_script(scripts.CLAIM)
        self._claim_many = client.register_script(scripts.CLAIM_MANY)
        self._complete = client.register_script(scripts.COMPLETE)
        self._requeue = client.register_script(scripts.REQUEUE)
        self._pop_due = client.register_script(scripts.POP_DUE)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable("the decision store (Redis) is unreachable") from exc

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def flush(self) -> None:
        """Drop everything in this database (tests and fresh installs only)."""
        self._call(self.redis.flushdb)

    # --- submissions ---------------------------------------------------------------------------
    def create_submission(self, key_id: str, body: SubmissionIn, tenant: str = DEFAULT_TENANT, community: str = "") -> tuple[str, bool]:
        """(submission id, created), kept under the key's tenant. Raises IdempotencyConflict or StoreUnavailable."""
        sub_id = secrets.token_hex(12)
        digest = text_hash(body)
        now = _now()
        names = [keys.idempotency(key_id, body.post_id), keys.submission(sub_id), keys.text(sub_id), keys.PENDING, keys.AUDIT]
        args = [sub_id, digest, self.record_ttl_s, body.post_id, key_id, now, body.callback_url or ""]
        args += [body.model_dump_json(), self.text_ttl_s, tenant, community]
        result = self._call(self._create, keys=names, args=args)
        if result == b"new":
            return sub_id, True
        existing_id, _, existing_digest = result.decode().partition("|")
        if existing_digest != digest:
            raise IdempotencyConflict(f"post_id was already submitted with different text (submission {existing_id})")
        return existing_id, False

    def create_submissions(
        self, key_id: str, bodies: list[SubmissionIn], tenant: str = DEFAULT_TENANT, communities: list[str] | None = None
    ) -> list[tuple[str, bool]]:
        """A batch under the key's tenant, all or nothing: (submission id, created) per item, or IdempotencyConflict with nothing stored."""
        names = [keys.PENDING, keys.AUDIT]
        args: list[str | int] = [self.record_ttl_s, key_id, _now(), self.text_ttl_s, tenant]
        for body, community in zip(bodies, communities or [""] * len(bodies), strict=True):
            sub_id = secrets.token_hex(12)
            names += [keys.idempotency(key_id, body.post_id), keys.submission(sub_id), keys.text(sub_id)]
            args += [sub_id, text_hash(body), body.post_id, body.callback_url or "", body.model_dump_json(), community]
        result = self._call(self._create_many, keys=names, args=args)
        if isinstance(result, bytes):
            _, index, existing_id = result.decode().split("|")
            raise IdempotencyConflict(
                f"items[{index}]: post_id was already submitted with different text (submission {existing_id}); nothing was stored"
            )
        out = []
        for entry in result:
            created, _, sub_id = entry.decode().rpartition("|")
            out.append((sub_id, created == "new"))
        return out

    def get(self, sub_id: str) -> Submission | None:
        raw = self._call(self.redis.hgetall, keys.submission(sub_id))
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
            decision=QueuedDecision.model_validate_json(row["decision"]) if row.get("decision") else None,
            error=row.get("error"),
            callback_url=row.get("callback_url") or None,
            webhook_status=row.get("webhook_status") or None,
            webhook_attempts=int(row.get("webhook_attempts", "0")),
            tenant=row.get("tenant") or DEFAULT_TENANT,
            community=row.get("community") or None,
        )

    def body(self, sub_id: str) -> SubmissionIn | None:
        """The submitted post, or None once its text has expired."""
        raw = self._call(self.redis.get, keys.text(sub_id))
        return SubmissionIn.model_validate_json(raw) if raw else None

    def claim(self, sub_id: str, attempt: int, lease_s: float) -> bool:
        """Mark running under a lease; False when done, failed, or a newer attempt owns it."""
        now = time.time()
        args = [attempt, f"{now:.6f}", f"{now + lease_s:.6f}", sub_id]
        return bool(self._call(self._claim, keys=[keys.submission(sub_id), keys.LEASES], args=args))

    def claim_many(self, attempts: Sequence[Attempt], lease_s: float) -> list[Claimed]:
        """A batch job's claim: each attempt by ``claim``'s rule, with the claimed posts and tenants, in one round trip.

        Only the claimed attempts come back (the others are finished, or a newer attempt owns them).
        """
        if not attempts:
            return []
        now = time.time()
        names = [keys.LEASES]
        args: list[str | int] = [f"{now:.6f}", f"{now + lease_s:.6f}"]
        for item in attempts:
            names += [keys.submission(item.submission_id), keys.text(item.submission_id)]
            args += [item.submission_id, item.attempt]
        flat = self._call(self._claim_many, keys=names, args=args)
        claimed = []
        for index, item in enumerate(attempts):
            verdict, raw, tenant = flat[3 * index : 3 * index + 3]
            if verdict == b"run":
                body = SubmissionIn.model_validate_json(raw) if raw else None
                claimed.append(Claimed(**dict(item), body=body, tenant=tenant.decode() or DEFAULT_TENANT))
        return claimed

    def extend_lease(self, sub_id: str, lease_s: float) -> None:
        """Heartbeat of a running job: only a job that stops beating is re-queued."""
        self.extend_leases([sub_id], lease_s)

    def extend_leases(self, sub_ids: Sequence[str], lease_s: float) -> None:
        """One heartbeat for a whole batch (only leases still held are moved: a finished post's is gone)."""
        if sub_ids:
            until = time.time() + lease_s
            self._call(self.redis.zadd, keys.LEASES, dict.fromkeys(sub_ids, until), xx=True)

    def complete(self, decision: QueuedDecision, *, webhook: bool = False) -> bool:
        """Store the decision once, with its escalation and its first webhook delivery, in one atomic step (the outbox).

        True only for the call that stored it. A worker that dies right after cannot lose the
        escalation or the webhook: they were written with the decision, or nothing was. The webhook
        waits in the due set (already due) until the reaper, or the caller, hands it to the queue.
        """
        sub_id = decision.submission_id
        tenant = (self._call(self.redis.hget, keys.submission(sub_id), "tenant") or DEFAULT_TENANT.encode()).decode()  # never changes
        return bool(self._call(self._complete_on, self.redis, decision, webhook, tenant))

    def complete_many(self, claimed: Sequence[Claimed], decisions: Mapping[str, QueuedDecision], errors: Mapping[str, str]) -> set[str]:
        """A batch job's results in one round trip: each decision as ``complete`` stores it (atomic, at most once),
        each error as ``fail`` marks it, by submission id. Returns the ids whose decision this call stored."""
        pipe = self.redis.pipeline(transaction=False)
        stored: list[str] = []
        for item in claimed:
            decision = decisions.get(item.submission_id)
            if decision is not None:
                webhook = item.body is not None and bool(item.body.callback_url)
                self._complete_on(pipe, decision, webhook, item.tenant)
                stored.append(item.submission_id)
        for item in claimed:
            if item.submission_id in errors and item.submission_id not in decisions:
                self._fail_on(pipe, item.submission_id, errors[item.submission_id])
        results = self._call(pipe.execute) if len(pipe) else []
        return {sub_id for sub_id, result in zip(stored, results, strict=False) if result}

    def _complete_on(self, client: redis.Redis | redis.client.Pipeline, decision: QueuedDecision, webhook: bool, tenant: str) -> Any:
        sub_id = decision.submission_id
        names = [keys.submission(sub_id), keys.LEASES, keys.PENDING, keys.DECISIONS_STORED, keys.AUDIT]
        names += [keys.escalation(sub_id), keys.ESCALATIONS_OPEN, keys.WEBHOOKS_DUE, keys.tenant_escalations(tenant, "open")]
        escalated = decision.action is Action.escalate
        priority = (decision.priority or Priority.normal).value if escalated else ""
        categories = json.dumps(sorted({r.category for r in decision.reasons}))
        due = WebhookDue(submission_id=sub_id, attempt=1).model_dump_json() if webhook else ""
        args: list[str | int] = [decision.model_dump_json(), _now(), decision.action.value, sub_id, priority]
        args += [decision.post_id or "", categories, self.record_ttl_s, due, tenant, decision.rulebook.name]
        return self._complete(keys=names, args=args, client=client)

    def requeue(self, sub_id: str, max_attempts: int, reason: str) -> int:
        """Next attempt number; 0 when attempts are used up (now failed); -1 when already finished."""
        names = [keys.submission(sub_id), keys.LEASES, keys.PENDING, keys.AUDIT]
        return int(self._call(self._requeue, keys=names, args=[sub_id, max_attempts, reason, _now()]))

    def fail(self, sub_id: str, reason: str) -> None:
        pipe = self.redis.pipeline()
        self._fail_on(pipe, sub_id, reason)
        self._call(pipe.execute)

    @staticmethod
    def _fail_on(pipe: redis.client.Pipeline, sub_id: str, reason: str) -> None:
        pipe.hset(keys.submission(sub_id), mapping={"status": "failed", "error": reason, "updated_at": _now()})
        pipe.zrem(keys.LEASES, sub_id)
        pipe.zrem(keys.PENDING, sub_id)
        pipe.xadd(keys.AUDIT, {"event": "failed", "id": sub_id}, maxlen=_AUDIT_MAX, approximate=True)

    def expired_leases(self, now: float, limit: int = 500) -> list[str]:
        return [m.decode() for m in self._call(self.redis.zrangebyscore, keys.LEASES, "-inf", now, start=0, num=limit)]

    def stale_pending(self, older_than: float, limit: int = 500) -> list[str]:
        return [m.decode() for m in self._call(self.redis.zrangebyscore, keys.PENDING, "-inf", older_than, start=0, num=limit)]

    def touch_pending(self, sub_id: str) -> None:
        self._call(self.redis.zadd, keys.PENDING, {sub_id: time.time()}, xx=True)

    def decisions_stored(self) -> int:
        return int(self._call(self.redis.get, keys.DECISIONS_STORED) or 0)

    def release_lease(self, sub_id: str) -> None:
        """A stopping worker hands its job back: the lease runs out now, so the next reaper tick re-queues it."""
        self.release_leases([sub_id])

    def release_leases(self, sub_ids: Sequence[str]) -> None:
        """``release_lease`` for every post of a batch job still running."""
        if sub_ids:
            self._call(self.redis.zadd, keys.LEASES, dict.fromkeys(sub_ids, 0), xx=True)

    def take_reaper_turn(self, hold_ms: int) -> bool:
        """A short lock, so one reaper among all workers acts per tick."""
        return bool(self._call(self.redis.set, keys.REAPER_LOCK, "1", nx=True, px=hold_ms))

    # --- text on disk ---------------------------------------------------------------------------
    def take_aof_rewrite_turn(self, interval_s: int) -> bool:
        """True for the one process (of all workers) whose turn it is to have the AOF rewritten this interval."""
        return bool(self._call(self.redis.set, keys.AOF_REWRITE_TURN, "1", nx=True, ex=interval_s))

    def rewrite_aof(self) -> bool:
        """Ask Redis to rewrite its append-only file (BGREWRITEAOF): the new file holds only live keys, so the text of
        expired submissions leaves the disk. False when Redis refused (AOF off, command renamed by a managed service)."""
        try:
            self._call(self.redis.bgrewriteaof)
        except redis.ResponseError as exc:
            return "already in progress" in str(exc)
        return True

    # --- the rulebook version every process follows ------------------------------------------
    def publish_rulebook_version(self, version: str) -> None:
        self._call(self.redis.set, keys.RULEBOOK_VERSION, version)

    def published_rulebook_version(self) -> str | None:
        raw = self._call(self.redis.get, keys.RULEBOOK_VERSION)
        return raw.decode() if raw else None

    # --- webhooks ------------------------------------------------------------------------------
    def schedule_webhook(self, due_item: WebhookDue, due: float) -> None:
        self._call(self.redis.zadd, keys.WEBHOOKS_DUE, {due_item.model_dump_json(): due})

    def pop_due_webhooks(self, now: float, limit: int = 200) -> list[WebhookDue]:
        members = self._call(self._pop_due, keys=[keys.WEBHOOKS_DUE], args=[f"{now:.6f}", limit])
        return [_due(m.decode()) for m in members]

    def webhook_result(self, sub_id: str, status: WebhookStatus, attempts: int) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(keys.submission(sub_id), mapping={"webhook_status": status.value, "webhook_attempts": attempts})
        pipe.xadd(keys.AUDIT, {"event": f"webhook_{status.value}", "id": sub_id}, maxlen=_AUDIT_MAX, approximate=True)
        self._call(pipe.execute)

    # --- escalations ---------------------------------------------------------------------------
    def escalate(
        self, decision_id: str, decision: Decision, post_id: str | None = None, context: str = "", tenant: str = DEFAULT_TENANT
    ) -> None:
        """Put an escalated decision on its tenant's human queue with priority, categories and the decision (never text).

        The decision holds offsets, scores and rule messages but no post text, so it may outlive the text.
        """
        categories = sorted({r.category for r in decision.reasons})
        priority = (decision.priority or Priority.normal).value
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.hset(
            keys.escalation(decision_id),
            mapping={
                "priority": priority,
                "post_id": post_id or "",
                "categories": json.dumps(categories),
                "created_at": now,
                "status": "open",
                "context": context,
                "tenant": tenant,
                "community": decision.rulebook.name,
                "decision": decision.model_dump_json(),
            },
        )
        pipe.expire(keys.escalation(decision_id), self.record_ttl_s)
        pipe.zadd(keys.ESCALATIONS_OPEN, {decision_id: now}, nx=True)
        pipe.zadd(keys.tenant_escalations(tenant, "open"), {decision_id: now}, nx=True)
        pipe.xadd(keys.AUDIT, {"event": "escalated", "id": decision_id, "priority": priority}, maxlen=_AUDIT_MAX, approximate=True)
        self._call(pipe.execute)

    def open_escalations(self, limit: int = 100, scope: Scope | None = None) -> list[Escalation]:
        """Oldest first: every tenant's (``scope`` None: the metrics scrape), else the scope's only."""
        if scope is None:
            ids = [m.decode() for m in self._call(self.redis.zrange, keys.ESCALATIONS_OPEN, 0, limit - 1)]
            return self._escalations(ids)
        return self._scoped(keys.tenant_escalations(scope.tenant, "open"), scope, limit, newest_first=False)

    def acked_escalations(self, limit: int = 100, scope: Scope | None = None) -> list[Escalation]:
        """Handled escalations of the scope, most recently acknowledged first (kept as long as their records)."""
        scope = scope or Scope()
        name = keys.tenant_escalations(scope.tenant, "acked")
        self._call(self.redis.zremrangebyscore, name, "-inf", time.time() - self.record_ttl_s)
        return self._scoped(name, scope, limit, newest_first=True)

    def _scoped(self, name: str, scope: Scope, limit: int, newest_first: bool) -> list[Escalation]:
        """A tenant's set, read whole when the scope names communities (then filtered), else up to ``limit``."""
        end = -1 if scope.communities else limit - 1
        read = self.redis.zrevrange if newest_first else self.redis.zrange
        ids = [m.decode() for m in self._call(read, name, 0, end)]
        rows = [e for e in self._escalations(ids) if scope.allows(e.tenant, e.community)]
        return rows[:limit]

    def escalation_decisions(self, ids: list[str]) -> dict[str, Decision]:
        """The stored decisions of escalations (no text in them), for the console's queue."""
        pipe = self.redis.pipeline(transaction=False)
        for decision_id in ids:
            pipe.hget(keys.escalation(decision_id), "decision")
        raws = self._call(pipe.execute) if ids else []
        return {i: _decision(raw) for i, raw in zip(ids, raws, strict=True) if raw}

    def decisions_for_feedback(self, ids: list[str]) -> dict[str, Decision]:
        """The decisions verdicts were given on: kept with the escalation, else with the submission."""
        found = self.escalation_decisions(ids)
        rest = [i for i in ids if i not in found]
        pipe = self.redis.pipeline(transaction=False)
        for decision_id in rest:
            pipe.hget(keys.submission(decision_id), "decision")
        raws = self._call(pipe.execute) if rest else []
        found.update({i: QueuedDecision.model_validate_json(raw) for i, raw in zip(rest, raws, strict=True) if raw})
        return found

    def owner(self, decision_id: str) -> tuple[str, str | None] | None:
        """(tenant, community) of a decision (an escalation, a submission or a sync decision); None when there is none."""
        for name in (keys.escalation(decision_id), keys.submission(decision_id), keys.decision(decision_id)):
            tenant, community, status = self._call(self.redis.hmget, name, ["tenant", "community", "status"])
            if status is not None:
                return (tenant or DEFAULT_TENANT.encode()).decode(), community.decode() if community else None
        return None

    def escalations(self, ids: list[str]) -> list[Escalation]:
        """Escalations by id (missing ones left out), in the order given."""
        return self._escalations(ids)

    def _escalations(self, ids: list[str]) -> list[Escalation]:
        pipe = self.redis.pipeline(transaction=False)  # one round trip, however many are open
        for decision_id in ids:
            pipe.hgetall(keys.escalation(decision_id))
        rows = self._call(pipe.execute) if ids else []
        now = time.time()
        out = []
        for decision_id, raw in zip(ids, rows, strict=True):
            if not raw:
                continue
            row = {k.decode(): v.decode() for k, v in raw.items()}
            created = float(row["created_at"])
            out.append(
                Escalation(
                    id=decision_id,
                    priority=Priority(row["priority"]),
                    post_id=row["post_id"] or None,
                    categories=_categories(row["categories"]),
                    context=row.get("context") or None,
                    created_at=created,
                    age_seconds=round(now - created, 1),
                    status="acked" if row.get("status") == "acked" else "open",
                    acked_at=float(row["acked_at"]) if "acked_at" in row else None,
                    acked_by=row.get("acked_by"),
                    tenant=row.get("tenant") or DEFAULT_TENANT,
                    community=row.get("community") or None,
                )
            )
        return out

    def ack_escalation(self, decision_id: str, key_id: str, scope: Scope | None = None) -> bool:
        """False when there is no open escalation with that id in ``scope`` (another tenant's looks the same)."""
        scope = scope or Scope()
        owner = self.owner(decision_id)
        if owner is None or not scope.allows(*owner):
            return False
        removed = self._call(self.redis.zrem, keys.tenant_escalations(scope.tenant, "open"), decision_id)
        if removed:
            pipe = self.redis.pipeline()
            now = time.time()
            pipe.zrem(keys.ESCALATIONS_OPEN, decision_id)
            pipe.hset(keys.escalation(decision_id), mapping={"status": "acked", "acked_at": now, "acked_by": key_id})
            pipe.zadd(keys.ESCALATIONS_ACKED, {decision_id: now})
            pipe.zadd(keys.tenant_escalations(scope.tenant, "acked"), {decision_id: now})
            event = {"event": "escalation_acked", "id": decision_id, "key_id": key_id}
            pipe.xadd(keys.AUDIT, event, maxlen=_AUDIT_MAX, approximate=True)  # type: ignore[arg-type]
            self._call(pipe.execute)
        return bool(removed)

    # --- feedback ------------------------------------------------------------------------------
    def add_feedback(self, decision_id: str, feedback: FeedbackIn, key_id: str, tenant: str = DEFAULT_TENANT) -> None:
        record = FeedbackRecord(**feedback.model_dump(), decision_id=decision_id, key_id=key_id, created_at=time.time(), tenant=tenant)
        pipe = self.redis.pipeline()
        pipe.rpush(keys.feedback(decision_id), record.model_dump_json())
        pipe.zadd(keys.FEEDBACK_INDEX, {decision_id: record.created_at})
        pipe.zadd(keys.tenant_feedback(tenant), {decision_id: record.created_at})
        event = {"event": "feedback", "id": decision_id, "outcome": feedback.outcome.value}
        pipe.xadd(keys.AUDIT, event, maxlen=_AUDIT_MAX, approximate=True)  # type: ignore[arg-type]
        self._call(pipe.execute)

    def iter_feedback(self, tenant: str | None = None) -> Iterator[FeedbackRecord]:
        """Every verdict, or one tenant's."""
        index = keys.FEEDBACK_INDEX if tenant is None else keys.tenant_feedback(tenant)
        for member in self._call(self.redis.zrange, index, 0, -1):
            for raw in self._call(self.redis.lrange, keys.feedback(member.decode()), 0, -1):
                yield FeedbackRecord.model_validate_json(raw)

    def record_decision(self, decision_id: str, decision: Decision, post_id: str | None = None, tenant: str = DEFAULT_TENANT) -> None:
        """Keep a sync decision's outline (action, categories, rulebook, owner; never text) for feedback on it."""
        pipe = self.redis.pipeline()
        pipe.hset(
            keys.decision(decision_id),
            mapping={
                "action": decision.action.value,
                "status": "decided",
                "tenant": tenant,
                "community": decision.rulebook.name,
                "post_id": post_id or "",
                "categories": json.dumps(sorted({r.category for r in decision.reasons})),
                "rulebook": decision.rulebook.model_dump_json(),
                "created_at": time.time(),
            },
        )
        pipe.expire(keys.decision(decision_id), self.record_ttl_s)
        self._call(pipe.execute)

    def kept_texts(self, scope: Scope, limit: int = 5000) -> list[tuple[str, SubmissionIn]]:
        """Submissions in ``scope`` whose text has not expired yet (a rule replay's corpus), oldest first."""
        prefix = keys.text("")
        names = self._call(lambda: list(self.redis.scan_iter(match=keys.text("*"), count=1000)))
        ids = [name.decode()[len(prefix) :] for name in names]
        pipe = self.redis.pipeline(transaction=False)
        for sub_id in ids:
            pipe.hmget(keys.submission(sub_id), ["tenant", "community", "created_at"])
        owners = self._call(pipe.execute) if ids else []
        mine = []
        for sub_id, (tenant, community, created) in zip(ids, owners, strict=True):
            if created is not None and scope.allows(
                (tenant or DEFAULT_TENANT.encode()).decode(), community.decode() if community else None
            ):
                mine.append((float(created), sub_id))
        mine.sort()
        out = []
        for _, sub_id in mine[:limit]:
            body = self.body(sub_id)
            if body is not None:
                out.append((sub_id, body))
        return out

    # --- API keys --------------------------------------------------------------------------------
    def revoke_key(self, key_id: str, moment: float) -> None:
        """Publish a revocation every process reads within seconds (kept until the key line is removed)."""
        self._call(self.redis.hset, keys.KEYS_REVOKED, key_id, f"{moment:.0f}")

    def revoked_keys(self) -> frozenset[str]:
        return frozenset(k.decode() for k in self._call(self.redis.hkeys, keys.KEYS_REVOKED))

    def audit_events(self, count: int = 1000) -> list[dict[str, str]]:
        entries = self._call(self.redis.xrevrange, keys.AUDIT, count=count)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]

    # --- what the metrics scrape reads ---------------------------------------------------------
    def queue_stats(self, queue_names: list[str]) -> QueueStats:
        depth = {name: int(self._call(self.redis.llen, keys.rq_queue(name))) for name in queue_names}
        first = self._call(self.redis.zrange, keys.PENDING, 0, 0, withscores=True)
        oldest = time.time() - float(first[0][1]) if first else 0.0
        return QueueStats(depth=depth, oldest_pending_age_s=oldest, open_escalations=self.open_escalations(limit=10_000))
