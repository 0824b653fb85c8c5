"""Signed webhooks: the signature format, its verification, and the callback allow-list.

``X-Moderation-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
Signing the timestamp with the body lets receivers refuse replays older than a few minutes.
Callback URLs must name a host on the operator's allow-list: by default nothing is allowed, so the
service can never be pointed at internal addresses (SSRF) by a client.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

from moderation_service.errors import InputError

__all__ = ["SIGNATURE_HEADER", "check_callback_url", "sign", "verify"]

SIGNATURE_HEADER = "X-Moderation-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _host_allowed(host: str, allowed: list[str]) -> bool:
    for pattern in allowed:
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and host != pattern[2:]:
            return True
        if host == pattern:
            return True
    return False


def check_callback_url(url: str, allowed: list[str]) -> str:
    """The URL if it may be called back; InputError (HTTP 422) naming why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("callback_url must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise InputError("callback_url may not carry credentials")
    if not allowed:
        raise InputError("callbacks are disabled: the operator has not allow-listed any host (MODERATION_CALLBACK_ALLOWED_HOSTS)")
    if not _host_allowed(parts.hostname.lower(), allowed):
        raise InputError(f"callback host {parts.hostname!r} is not on the operator's allow-list")
    return url
