"""The composition root: the one place that reads ``Settings`` and builds the parts from it.

API, workers, CLI, ``classify`` and the benchmarks all call these functions, so the core stays a set
of plain objects that take already-built parts, and no module below wires itself from settings.
Slow work is explicit here (building the ONNX file, loading models), never hidden in a constructor.
"""

from __future__ import annotations

from pathlib import Path

import redis
from prometheus_client import CollectorRegistry
from redis.sentinel import Sentinel

from moderation_service.config import ModelSettings, Settings
from moderation_service.core.classifiers.base import Classifier, create_classifier
from moderation_service.core.crisis import CrisisDetector, LanguageDetector, load_grammars
from moderation_service.core.model_runs import RunQueue, runners_for
from moderation_service.core.pipeline import Pipeline
from moderation_service.core.rulebook.loader import load_rulebook
from moderation_service.core.rulebook.registry import RulebookSet
from moderation_service.core.signposting import SignpostDirectory, load_directory
from moderation_service.errors import ConfigError
from moderation_service.keys import KeyStore, LiveKeys
from moderation_service.metrics import Metrics, create_metrics
from moderation_service.service.parts import Services
from moderation_service.service.rulebooks import publish_versions
from moderation_service.store import JobQueue, Store, connect
from moderation_service.store.console import ConsoleSessions

__all__ = [
    "build_classifiers",
    "build_crisis",
    "build_metrics",
    "build_pipeline",
    "build_services",
    "build_store",
    "ensure_models",
    "load_keys",
    "load_settings",
    "models_to_build",
    "redis_client",
]


def load_settings() -> Settings:
    """Settings from the environment, validated (a bad value stops the process here, with its name)."""
    return Settings()


def _read_keys(settings: Settings) -> KeyStore:
    text = settings.api.api_keys
    keys_file = settings.api.api_keys_file
    if keys_file is not None:
        try:
            text += "\n" + keys_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read API keys file {keys_file}: {exc.strerror}") from exc
    return KeyStore.from_lines(text, source=str(keys_file or "MODERATION_API_KEYS"))


def _file_fingerprint(path: Path | None) -> object:
    """What changes when the keys file is edited (rewritten, appended, replaced)."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def load_keys(settings: Settings) -> LiveKeys:
    """Keys from the keys file and/or the env var, re-read when the file changes; refuse to run with none."""
    keys = LiveKeys(lambda: _read_keys(settings), lambda: _file_fingerprint(settings.api.api_keys_file))
    if not len(keys):
        raise ConfigError("no API keys configured: set MODERATION_API_KEYS_FILE (see `moderation-service keys create`)")
    return keys


def build_metrics(registry: CollectorRegistry | None = None) -> tuple[CollectorRegistry, Metrics]:
    registry = registry or CollectorRegistry()
    return registry, create_metrics(registry)


def models_to_build(models: ModelSettings) -> list[Path]:
    """Derived model files that are missing, so a caller can say so before ``ensure_models`` takes its time."""
    if "embedded" not in models.classifiers:
        return []
    from moderation_service.core.classifiers.embedded import onnx_path

    target = onnx_path(models.models_dir / "embedded", models.cache_dir)
    return [] if target.exists() else [target]


def ensure_models(models: ModelSettings) -> list[Path]:
    """Build derived model files that are missing (the embedded model's int8 ONNX file); the paths built."""
    built = []
    if "embedded" in models.classifiers:
        from moderation_service.core.classifiers.embedded import ensure_onnx

        # Under a lock: an API and a worker starting together build the file once.
        target, was_built = ensure_onnx(models.models_dir / "embedded", models.cache_dir)
        if was_built:
            built.append(target)
    return built


def build_classifiers(models: ModelSettings) -> list[Classifier]:
    """Each named classifier, from only the model settings (never the whole Settings)."""
    ensure_models(models)
    options = models.options()
    return [create_classifier(name, options) for name in models.classifiers]


def _rulebooks(settings: Settings, directory: SignpostDirectory, rule_file: Path | None) -> RulebookSet:
    numbers = directory.helpline_numbers()
    if rule_file is not None:
        # ``extends`` in a file outside the rules folder (rules/examples/...) finds rulebooks in the rules folder.
        name = load_rulebook(rule_file, numbers, settings.rules.rules_dir).name
        books = RulebookSet(rule_file.parent, default=name, helpline_numbers=numbers, files=[rule_file], rules_dir=settings.rules.rules_dir)
    else:
        books = RulebookSet(settings.rules.rules_dir, settings.rules.default_rulebook, numbers)
    books.reload()
    return books


def build_crisis(rules_dir: Path, warm_in_background: bool = True) -> CrisisDetector:
    """English compiles now; the other grammars compile on a background thread (or now, for tools and tests)."""
    crisis = CrisisDetector(load_grammars(rules_dir / "crisis", compile_now=("en",)), LanguageDetector())
    crisis.warm(background=warm_in_background)
    return crisis


def build_pipeline(settings: Settings, *, rule_file: Path | None = None, crisis: CrisisDetector | None = None) -> Pipeline:
    """Everything the core needs, loaded once per process (API or worker); ``rule_file``: that one rulebook only."""
    rules_dir = settings.rules.rules_dir
    directory = load_directory(rules_dir / "signposting")
    books = _rulebooks(settings, directory, rule_file)
    classifiers = build_classifiers(settings.models)
    crisis = crisis or build_crisis(rules_dir)
    # One run queue per process, shared by every model call: one runner per core (a model run is CPU bound).
    runners = runners_for(settings.models.classifier_threads, settings.models.model_threads)
    runs = RunQueue(runners, settings.pipeline.model_queue_limit, nice=settings.models.runner_nice)
    return Pipeline(books, directory, classifiers, crisis=crisis, options=settings.pipeline, runs=runs)


def redis_client(settings: Settings) -> redis.Redis | None:
    """None when no Redis is configured (the sync API still works)."""
    if settings.redis.sentinels:
        nodes = []
        for entry in settings.redis.sentinels:
            host, _, port = entry.rpartition(":")
            nodes.append((host, int(port)))
        sentinel = Sentinel(nodes, socket_timeout=2, socket_connect_timeout=2)  # type: ignore[no-untyped-call]
        client: redis.Redis = sentinel.master_for(settings.redis.sentinel_service, socket_timeout=3)  # type: ignore[no-untyped-call]
        return client
    if settings.redis.url:
        return connect(settings.redis.url)
    return None


def build_store(settings: Settings, client: redis.Redis | None = None) -> Store | None:
    """The decision store, or None when no Redis is configured."""
    client = client or redis_client(settings)
    return Store(client, settings.queue.text_ttl_s, settings.queue.record_ttl_s) if client is not None else None


def build_services(settings: Settings, metrics: Metrics | None = None, pipeline: Pipeline | None = None) -> Services:
    """The service layer's parts: pipeline, and the store and queues when Redis is configured."""
    pipeline = pipeline or build_pipeline(settings)
    client = redis_client(settings)
    store = build_store(settings, client)
    queue = JobQueue(client, settings.queue.queue_name, settings.queue.job_lease_s) if client is not None else None
    services = Services(
        pipeline=pipeline,
        api=settings.api,
        queue_settings=settings.queue,
        webhooks=settings.webhooks,
        coral=settings.coral,
        metrics=metrics,
        store=store,
        queue=queue,
        console=None if client is None else ConsoleSessions(client, settings.api.console_idle_timeout_s, settings.api.console_max_age_s),
    )
    publish_versions(services)
    return services
