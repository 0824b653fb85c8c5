"""What a worker process loads once — the service parts (pipeline, store, queues) and its metrics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from moderation_service import bootstrap
from moderation_service.config import Settings
from moderation_service.errors import ConfigError
from moderation_service.service import Services

__all__ = ["WorkerContext", "build", "current", "install"]


@dataclass
class WorkerContext:
    settings: Settings
    services: Services
    registry: CollectorRegistry
    running: list[str] = field(default_factory=list)  # the running job's claimed, unfinished posts (a stopping worker releases them)


_lock = threading.Lock()
_context: WorkerContext | None = None


def build(settings: Settings) -> WorkerContext:
    """Every grammar compiles before the first job: compiling beside a running job would hold the GIL
    long enough to starve its lease heartbeat (an API, by contrast, starts answering in English first)."""
    registry, metrics = bootstrap.build_metrics()
    crisis = bootstrap.build_crisis(settings.rules.rules_dir, warm_in_background=False)
    services = bootstrap.build_services(settings, metrics, pipeline=bootstrap.build_pipeline(settings, crisis=crisis))
    if services.store is None:
        raise ConfigError("workers need MODERATION_REDIS_URL or MODERATION_REDIS_SENTINELS")
    return WorkerContext(settings, services, registry)


def install(context: WorkerContext) -> None:
    global _context
    _context = context


def current() -> WorkerContext:
    """The process's context; built from the environment on first use if the worker did not preload."""
    global _context
    with _lock:
        if _context is None:
            _context = build(bootstrap.load_settings())
        return _context
