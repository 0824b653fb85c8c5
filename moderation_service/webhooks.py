"""Signed webhooks: the signature format and what a receiver does to verify it.

``X-Moderation-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=<...>]``.
Signing the timestamp with the body lets receivers refuse replays older than a few minutes. During a
key rotation the header carries one ``v1`` per configured secret (current first, then the previous
one), so a receiver still holding the old secret and one already holding the new both accept it; a
receiver accepts the message when any ``v1`` matches a secret it holds.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

__all__ = ["SIGNATURE_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-Moderation-Signature"


def _digest(secret: str, body: bytes, t: int) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secrets: str | Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """The header value: one ``v1`` per secret, in the order given. An empty secret is refused, never used."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys or not all(keys):
        raise ValueError("a webhook must be signed with a non-empty secret")
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={_digest(key, body, t)}" for key in keys)])


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time with each ``v1``, refuse stale timestamps."""
    pairs = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for name, value in pairs if name.strip() == "t"]
    try:
        t = int(stamps[0])
    except (IndexError, ValueError):
        return False
    if not secret or abs(time.time() - t) > tolerance_s:
        return False
    expected = _digest(secret, body, t)
    return any(hmac.compare_digest(expected.encode(), value.strip().encode()) for name, value in pairs if name.strip() == "v1")
