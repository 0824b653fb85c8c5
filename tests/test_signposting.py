from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from moderation_service.core.signposting import country_of, load_directory
from moderation_service.errors import ConfigError

RULES = Path(__file__).resolve().parent.parent / "rules"


@pytest.mark.parametrize(
    ("locale", "country"),
    [("en-GB", "GB"), ("en_gb", "GB"), ("GB", "GB"), ("en", None), ("", None), (None, None), ("es-419", None), ("zh-Hant-TW", "TW")],
)
def test_country_of(locale: str | None, country: str | None) -> None:
    assert country_of(locale) == country


@pytest.mark.parametrize(
    ("locale", "must_include"),
    [
        ("en-GB", {"samaritans-uk", "shout", "nhs-111-mental-health", "emergency-gb"}),
        ("en-IE", {"samaritans-ie", "text-50808"}),
        ("en-US", {"lifeline-988"}),
        ("fr-CA", {"crisis-988-ca"}),
        ("en-AU", {"lifeline-au"}),
        ("en-NZ", {"need-to-talk-1737"}),
        ("ja-JP", {"find-a-helpline"}),
        (None, {"find-a-helpline"}),
    ],
)
def test_lookup_never_returns_nothing(locale: str | None, must_include: set[str]) -> None:
    result = load_directory(RULES / "signposting").lookup(locale)
    assert must_include <= {r.id for r in result.resources}


def test_uk_numbers_are_right() -> None:
    uk = load_directory(RULES / "signposting").lookup("en-GB")
    contacts = {(r.id, c.value) for r in uk.resources for c in r.contacts}
    assert ("samaritans-uk", "116 123") in contacts and ("shout", "85258") in contacts and ("emergency-gb", "999") in contacts


def test_every_entry_has_a_source_and_a_check_date() -> None:
    directory = load_directory(RULES / "signposting")
    for resources in directory.by_country.values():
        for r in resources:
            assert r.source_url.startswith("https://")
            assert dt.date.fromisoformat(r.last_checked) <= dt.date.today()


def test_directory_without_fallback_is_refused(tmp_path: Path) -> None:
    (tmp_path / "gb.yaml").write_text((RULES / "signposting" / "gb.yaml").read_text())
    with pytest.raises(ConfigError, match="international fallback"):
        load_directory(tmp_path)


def test_messages_follow_safe_messaging() -> None:
    message = load_directory(RULES / "signposting").lookup("en-GB").message.lower()
    assert "not alone" in message or "don't have to" in message
    for word in ("method", "how to", "selfish", "attention"):
        assert word not in message
