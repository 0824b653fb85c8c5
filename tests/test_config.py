"""Settings: flat ``MODERATION_*`` variables into groups, lists from comma-separated values, unsafe values refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from moderation_service.config import Settings


def test_groups_read_the_documented_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATION_CLASSIFIERS", "embedded, my.module:factory")
    monkeypatch.setenv("MODERATION_CALLBACK_ALLOWED_HOSTS", "Forum.Example.org, *.example.net")
    monkeypatch.setenv("MODERATION_WEBHOOK_SECRET", "a-long-enough-webhook-secret-of-32-bytes")
    monkeypatch.setenv("MODERATION_REDIS_SENTINELS", "10.0.0.1:26379,10.0.0.2:26379")
    monkeypatch.setenv("MODERATION_CLASSIFIER_TIMEOUT_S", "0.5")
    monkeypatch.setenv("MODERATION_JOB_LEASE_S", "30")
    settings = Settings()
    assert settings.models.classifiers == ["embedded", "my.module:factory"]
    assert settings.webhooks.callback_allowed_hosts == ["https://forum.example.org:443", "https://*.example.net:443"]
    assert settings.redis.sentinels == ["10.0.0.1:26379", "10.0.0.2:26379"]
    assert settings.pipeline.classifier_timeout_s == 0.5 and settings.queue.job_lease_s == 30
    assert set(settings.models.options().model_dump()) == {
        "models_dir",
        "cache_dir",
        "model_threads",
        "detoxify_checkpoint",
        "detoxify_config_dir",
    }


def test_an_empty_classifier_list_means_rules_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATION_CLASSIFIERS", "")
    assert Settings().models.classifiers == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODERATION_FALLBACK_ACTION": "allow"}, "fallback_action"),
        ({"MODERATION_WEBHOOK_SECRET": "changeme"}, "placeholder"),
        ({"MODERATION_CALLBACK_ALLOWED_HOSTS": "forum.example.org"}, "unsigned"),
        ({"MODERATION_TEXT_TTL_S": "9000", "MODERATION_RECORD_TTL_S": "3600"}, "record_ttl_s"),
        ({"MODERATION_REDIS_SENTINELS": "no-port-here"}, "host:port"),
        ({"MODERATION_REQUEUE_STALE_AFTER_S": "0.5", "MODERATION_REAPER_INTERVAL_S": "2"}, "requeue_stale_after_s"),
    ],
)
def test_unsafe_values_and_combinations_are_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
