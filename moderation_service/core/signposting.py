"""Crisis and support resources by country, read from data files with a source for each entry.

Every lookup returns something: an unknown or missing country falls back to the international
directory, because a person in distress must never be met with an empty list.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moderation_service.core.decision import Contact, ContactKind, Resource, Signposting
from moderation_service.errors import ConfigError

__all__ = ["DEFAULT_MESSAGE", "SignpostDirectory", "country_of", "load_directory"]

INTERNATIONAL = "*"
DEFAULT_MESSAGE = (
    "Thank you for sharing how you're feeling. It sounds really hard right now, and you don't have "
    "to go through it alone. If you'd like to talk to someone, these services are free and "
    "confidential. If you are in danger right now, please call your local emergency number."
)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_\-]+$")
    name: str
    description: str
    contacts: list[Contact] = Field(min_length=1)
    hours: str
    countries: list[str] = Field(min_length=1)
    source_url: str = Field(pattern=r"^https://")
    last_checked: dt.date


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resources: list[_Entry]


@dataclass(frozen=True)
class SignpostDirectory:
    by_country: dict[str, tuple[Resource, ...]]

    @property
    def countries(self) -> list[str]:
        return sorted(c for c in self.by_country if c != INTERNATIONAL)

    def lookup(self, locale: str | None, message: str | None = None, *, urgent: bool = False) -> Signposting:
        """Resources for the locale's country, else the international fallback, never nothing.

        ``urgent`` (imminent risk) puts the emergency number first: it is the one to call now.
        """
        country = country_of(locale)
        resources = self.by_country.get(country or "", ()) or self.by_country[INTERNATIONAL]
        if urgent:
            resources = tuple(sorted(resources, key=lambda r: not r.id.startswith("emergency")))
        known = country if country in self.by_country else None
        return Signposting(locale=locale or "", country=known, message=message or DEFAULT_MESSAGE, resources=resources)

    def helpline_numbers(self) -> frozenset[str]:
        """Digits of every listed phone number, so sharing a helpline is never flagged as personal data."""
        return frozenset(
            re.sub(r"\D", "", contact.value).lstrip("0")
            for resources in self.by_country.values()
            for resource in resources
            for contact in resource.contacts
            if contact.kind in (ContactKind.phone, ContactKind.sms)
        )


def country_of(locale: str | None) -> str | None:
    """'en-GB', 'en_gb' or 'GB' -> 'GB'; a language alone ('en') names no country."""
    if not locale:
        return None
    parts = re.split(r"[-_]", locale.strip())
    candidates = [p for p in parts[1:] if len(p) == 2 and p.isalpha()]
    if not candidates and len(parts) == 1 and len(parts[0]) == 2 and parts[0].isupper():
        candidates = [parts[0]]
    return candidates[0].upper() if candidates else None


def load_directory(folder: Path) -> SignpostDirectory:
    """Read every ``*.yaml`` in ``folder``; refuse a directory without an international fallback."""
    by_country: dict[str, list[Resource]] = {}
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"no signposting files in {folder}")
    for path in files:
        try:
            parsed = _File.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError, OSError) as exc:
            raise ConfigError(f"{path}: invalid signposting file: {exc}") from exc
        for entry in parsed.resources:
            resource = Resource(
                id=entry.id,
                name=entry.name,
                description=entry.description,
                contacts=tuple(entry.contacts),
                hours=entry.hours,
                countries=tuple(entry.countries),
                source_url=entry.source_url,
                last_checked=entry.last_checked.isoformat(),
            )
            for country in entry.countries:
                by_country.setdefault(country.upper(), []).append(resource)
    if INTERNATIONAL not in by_country:
        raise ConfigError(f"{folder}: no international fallback (an entry with countries: ['*'])")
    return SignpostDirectory({k: tuple(v) for k, v in by_country.items()})
