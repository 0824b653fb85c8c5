"""Every Prometheus metric of the service, created by one function from a registry.

Labels are routes, stages, actions, categories, rule ids, outcomes and versions: never post text,
author ids or post ids. In production set ``PROMETHEUS_MULTIPROC_DIR`` (wiped at start by
``serve``/``run``): every uvicorn and RQ worker process writes its own file and ``/metrics``
aggregates them; version "info" metrics are gauges (Info is not supported in multiprocess mode).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from moderation_service.core.decision import Decision

if TYPE_CHECKING:
    from moderation_service.core.model_runs import RunQueue
    from moderation_service.core.pipeline import ModelVersion
    from moderation_service.store import Store

__all__ = [
    "Metrics",
    "ModelRunCollector",
    "QueueCollector",
    "create_metrics",
    "prepare_multiprocess_dir",
    "scrape_registry",
    "use_multiprocess_dir",
]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    request_latency: Histogram
    stage_latency: Histogram
    decisions: Counter
    decision_categories: Counter
    rule_hits: Counter
    degraded: Counter
    jobs: Counter
    webhooks: Counter
    escalations_unrecorded: Counter
    versions: Gauge
    partial: Counter
    late_escalations: Counter
    shed: Counter

    def observe_decision(self, decision: Decision) -> None:
        """Count a decision and time its stages: called by the service layer once per post judged."""
        self.decisions.labels(action=decision.action.value).inc()
        for category in {r.category for r in decision.reasons}:
            self.decision_categories.labels(category=category, action=decision.action.value).inc()
        for reason in decision.reasons:
            if reason.source == "rule":
                self.rule_hits.labels(rule_id=reason.id).inc()
        if decision.degraded:
            self.degraded.inc()
        if decision.partial:
            self.partial.inc()
        for stage, ms in decision.timings_ms.items():
            if stage != "total":
                self.stage_latency.labels(stage=stage).observe(ms / 1000)

    def set_versions(self, rulebooks: Iterable[tuple[str, str]], models: Iterable[ModelVersion]) -> None:
        for name, version in rulebooks:
            self.versions.labels(kind="rulebook", name=name, version=version).set(1)
        for model in models:
            self.versions.labels(kind="model", name=model.name, version=model.version).set(1)


def create_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        requests=Counter("moderation_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=registry),
        request_latency=Histogram(
            "moderation_http_request_duration_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=registry
        ),
        stage_latency=Histogram(
            "moderation_pipeline_stage_duration_seconds", "Pipeline stage latency", ["stage"], buckets=LATENCY_BUCKETS, registry=registry
        ),
        decisions=Counter("moderation_decisions_total", "Decisions by action", ["action"], registry=registry),
        decision_categories=Counter(
            "moderation_decision_categories_total", "Decisions by category with a reason", ["category", "action"], registry=registry
        ),
        rule_hits=Counter("moderation_rule_hits_total", "Rule hits by rule id", ["rule_id"], registry=registry),
        degraded=Counter("moderation_degraded_decisions_total", "Decisions made without a classifier", registry=registry),
        jobs=Counter("moderation_jobs_total", "Queue jobs by event", ["event"], registry=registry),
        webhooks=Counter("moderation_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"], registry=registry),
        escalations_unrecorded=Counter(
            "moderation_escalations_unrecorded_total",
            "Escalations answered to the caller but not put on the human queue",
            ["reason"],
            registry=registry,
        ),
        versions=Gauge(
            "moderation_version_info",
            "Loaded rulebook and model versions (1 = loaded)",
            ["kind", "name", "version"],
            registry=registry,
            multiprocess_mode="liveall",
        ),  # fmt: skip
        partial=Counter("moderation_partial_decisions_total", "Answers given inside a deadline without the model", registry=registry),
        late_escalations=Counter(
            "moderation_late_escalations_total", "Partial answers whose model decision, finished later, was more severe", registry=registry
        ),
        shed=Counter("moderation_shed_requests_total", "Sync requests shed with 503: model queue full", registry=registry),
    )


class QueueCollector(Collector):
    """Queue depth, oldest job age and the human queue, read from Redis at scrape time."""

    def __init__(self, store: Store, queue_names: list[str]) -> None:
        self.store = store
        self.queue_names = queue_names

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("moderation_queue_depth", "Jobs waiting in the queue", labels=["queue"])
        oldest = GaugeMetricFamily("moderation_queue_oldest_age_seconds", "Age of the oldest unfinished submission")
        open_count = GaugeMetricFamily("moderation_escalations_open", "Escalations waiting for a person", labels=["priority"])
        open_age = GaugeMetricFamily(
            "moderation_escalation_oldest_open_age_seconds", "Age of the oldest open escalation (0 when none)", labels=["priority"]
        )
        up = GaugeMetricFamily("moderation_store_up", "Whether Redis answered this scrape")
        try:
            stats = self.store.queue_stats(self.queue_names)
            for name, count in stats.depth.items():
                depth.add_metric([name], float(count))
            oldest.add_metric([], stats.oldest_pending_age_s)
            counts = {"urgent": 0, "normal": 0}
            ages = {"urgent": 0.0, "normal": 0.0}
            for item in stats.open_escalations:  # oldest first
                priority = item.priority.value
                counts[priority] = counts.get(priority, 0) + 1
                ages[priority] = max(ages.get(priority, 0.0), item.age_seconds)
            for priority, count in counts.items():
                open_count.add_metric([priority], float(count))
                open_age.add_metric([priority], ages[priority])
            up.add_metric([], 1.0)
        except Exception:  # a scrape must never fail because Redis is down
            up.add_metric([], 0.0)
            yield up
            return
        yield from (depth, oldest, open_count, open_age, up)


class ModelRunCollector(Collector):
    """The model run queue's backlog, runs and runner CPU time, read at scrape time (nothing on the request path)."""

    def __init__(self, runs: RunQueue) -> None:
        self.runs = runs

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "moderation_model_backlog_units", "Model work queued or running (1,000-character units)", self.runs.backlog_units
        )
        yield CounterMetricFamily("moderation_model_runs", "Model calls run by this process's runners", self.runs.runs)
        yield CounterMetricFamily(
            "moderation_model_run_cpu_seconds", "CPU time the model runners spent inside model calls", self.runs.cpu_s
        )
        yield GaugeMetricFamily(
            "moderation_model_background_units", "Background model work (finishes of partial answers) waiting", self.runs.background_units
        )
        shed = CounterMetricFamily(
            "moderation_background_runs_shed",
            "Background model runs of partial answers shed for want of spare runner time (at_answer: before answering; "
            "after_answer: not started in time)",
            labels=["when"],
        )
        for when, count in self.runs.shed.items():
            shed.add_metric([when], count)
        yield shed


def use_multiprocess_dir(folder: Path) -> None:
    """Multiprocess mode from now on, for this process and the children it starts (``run``).

    prometheus_client chooses how to store values when it is first imported, which in ``run`` is before
    the folder is known: it chooses again here, or the API's own series would never reach the folder.
    """
    from prometheus_client import values

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    prepare_multiprocess_dir()
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def prepare_multiprocess_dir() -> None:
    """Wipe stale per-process files from an earlier run (the client's documented requirement)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def scrape_registry(process_registry: CollectorRegistry, extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """What ``/metrics`` exposes (built once per process): every process's files in multiprocess
    mode, else this process's registry; plus collectors that read live state (Redis)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = process_registry
    for collector in extra:
        registry.register(collector)
    return registry
