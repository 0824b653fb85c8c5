"""Validating detectors for personal data: a match must parse, not merely look right.

Phone numbers go through ``phonenumbers`` (valid numbers for the post's region, so a dosage or
a date is not a phone number) and NHS numbers through their modulus-11 check digit. Freephone,
shared-cost and non-geographic organisation numbers (UK 0800, 0808, 03xx, 0845) belong to helplines
and charities, not to a person, so they are not personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import phonenumbers
import re2
from stdnum.gb import nhs

from moderation_service.core.rulebook.schema import Detector

__all__ = ["find", "re2_options"]

Span = tuple[int, int]
_ORGANISATION_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.SHARED_COST, phonenumbers.PhoneNumberType.UAN}
)


def re2_options() -> re2.Options:
    """RE2 options used everywhere: no stderr noise for patterns we report ourselves."""
    options = re2.Options()
    options.log_errors = False
    return options


@cache
def _patterns() -> dict[Detector, re2._Regexp]:
    source = {
        Detector.email: r"(?i)\b[a-z0-9._%+\-]{1,64}@[a-z0-9.\-]{1,253}\.[a-z]{2,24}\b",
        Detector.uk_postcode: r"(?i)\b(?:[a-z]{1,2}[0-9][a-z0-9]?)\s?[0-9][abd-hjlnp-uw-z]{2}\b",
        Detector.nhs_number: r"\b[0-9]{3}[ \-]?[0-9]{3}[ \-]?[0-9]{4}\b",
        Detector.url: r"(?i)\b(?:https?://|www\.)[^\s<>\"]+",
    }
    return {kind: re2.compile(pattern, options=re2_options()) for kind, pattern in source.items()}


def _phone_numbers(text: str, region: str, allowed: frozenset[str]) -> list[Span]:
    spans = []
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID, max_tries=200):
        national = str(match.number.national_number)
        if national in allowed or phonenumbers.number_type(match.number) in _ORGANISATION_TYPES:
            continue  # a helpline shared to help someone is not personal information
        spans.append((match.start, match.end))
    return spans


def find(kind: Detector, text: str, region: str, allowed_numbers: Iterable[str] = ()) -> list[Span]:
    """Spans of ``text`` (original offsets) where ``kind`` of personal data appears."""
    if kind is Detector.phone_number:
        return _phone_numbers(text, region, frozenset(allowed_numbers))
    spans = [(m.start(), m.end()) for m in _patterns()[kind].finditer(text)]
    if kind is Detector.nhs_number:
        spans = [(s, e) for s, e in spans if nhs.is_valid(text[s:e].replace(" ", "").replace("-", ""))]
    return spans
