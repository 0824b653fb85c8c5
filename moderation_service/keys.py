"""API keys: random tokens shown once, stored only as salted SHA-256 hashes with scopes and a tenant.

A key looks like ``msk_<id>_<secret>``. The id finds the stored line; the secret is checked with
``secrets.compare_digest``. Keys carry 256 bits of entropy, so a fast hash is the right choice
(a slow password hash would only add latency to every request).

A stored line is ``<id> <scopes> sha256$<salt>$<hash>`` followed by optional ``name=value`` fields:
``tenant=`` (whose data the key reaches; ``default`` when absent), ``communities=a,b`` (only these
communities of the tenant), ``expires=`` and ``revoked=`` (ISO 8601 UTC). ``LiveKeys`` re-reads the
keys file when it changes and asks a shared revocation list (Redis), at most once a second, so an
expiry or revocation takes effect on every process within seconds, without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from moderation_service.errors import AuthError, ConfigError, ForbiddenError, StoreUnavailable
from moderation_service.store.rows import DEFAULT_TENANT  # one default tenant for keys and stored rows

__all__ = ["DEFAULT_TENANT", "SCOPES", "ApiKey", "KeyStore", "LiveKeys", "format_time", "generate_key", "parse_time", "revoke_line"]

log = logging.getLogger(__name__)

SCOPES = ("moderate", "submit", "moderator", "admin")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_FIELDS = ("tenant", "communities", "expires", "revoked")


def parse_time(value: str) -> float:
    """ISO 8601 (a date, or a date and time; UTC unless it says otherwise) as a Unix time."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"not an ISO 8601 date or time: {value!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def format_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_name(kind: str, value: str) -> str:
    if not _NAME.match(value):
        raise ConfigError(f"{kind} must be lowercase letters, digits, '.', '_' or '-' (at most 64); got {value!r}")
    return value


@dataclass(frozen=True)
class ApiKey:
    id: str
    scopes: frozenset[str]
    salt: str
    digest: str
    tenant: str = DEFAULT_TENANT
    communities: frozenset[str] = field(default_factory=frozenset)  # empty: every community of the tenant
    expires_at: float | None = None
    revoked_at: float | None = None

    def line(self) -> str:
        parts = [self.id, ",".join(sorted(self.scopes)), f"sha256${self.salt}${self.digest}"]
        if self.tenant != DEFAULT_TENANT:
            parts.append(f"tenant={self.tenant}")
        if self.communities:
            parts.append(f"communities={','.join(sorted(self.communities))}")
        if self.expires_at is not None:
            parts.append(f"expires={format_time(self.expires_at)}")
        if self.revoked_at is not None:
            parts.append(f"revoked={format_time(self.revoked_at)}")
        return " ".join(parts)

    def allows(self, community: str | None) -> bool:
        """Whether this key reaches ``community`` (None: the default rulebook's posts, open to unrestricted keys only)."""
        return not self.communities or (community is not None and community in self.communities)

    def status(self, now: float | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and (now if now is not None else time.time()) >= self.expires_at:
            return "expired"
        return "active"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def generate_key(
    scopes: list[str],
    *,
    tenant: str = DEFAULT_TENANT,
    communities: Iterable[str] = (),
    expires_at: float | None = None,
) -> tuple[str, ApiKey]:
    """A new key: the token to hand out once, and the record to store."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ConfigError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    _check_name("tenant", tenant)
    for community in communities:
        _check_name("community", community)
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(8)
    key = ApiKey(key_id, frozenset(scopes), salt, _digest(salt, secret), tenant, frozenset(communities), expires_at)
    return f"msk_{key_id}_{secret}", key


def _parse_line(parts: list[str], where: str) -> ApiKey:
    if len(parts) < 3 or parts[2].count("$") != 2 or not parts[2].startswith("sha256$"):
        raise ConfigError(f"{where}: expected '<id> <scopes> sha256$<salt>$<hash> [tenant=..] [communities=..] [expires=..]'")
    scopes = frozenset(parts[1].split(","))
    if not scopes <= set(SCOPES):
        raise ConfigError(f"{where}: unknown scope in {parts[1]!r}")
    _, salt, digest = parts[2].split("$")
    values: dict[str, str] = {}
    for extra in parts[3:]:
        name, sep, value = extra.partition("=")
        if not sep or name not in _FIELDS or name in values or not value:
            raise ConfigError(f"{where}: expected one of {', '.join(f'{f}=...' for f in _FIELDS)}, got {extra!r}")
        values[name] = value
    try:
        tenant = _check_name("tenant", values.get("tenant", DEFAULT_TENANT))
        communities = frozenset(_check_name("community", c) for c in values.get("communities", "").split(",") if c)
        expires = parse_time(values["expires"]) if "expires" in values else None
        revoked = parse_time(values["revoked"]) if "revoked" in values else None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return ApiKey(parts[0], scopes, salt, digest, tenant, communities, expires, revoked)


class KeyStore:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._by_id = {key.id: key for key in keys}

    def __len__(self) -> int:
        return len(self._by_id)

    def all(self) -> list[ApiKey]:
        return list(self._by_id.values())

    def get(self, key_id: str) -> ApiKey | None:
        return self._by_id.get(key_id)

    @classmethod
    def from_lines(cls, text: str, source: str = "api keys") -> KeyStore:
        """Parse key lines (see the module docstring); '#' starts a comment."""
        keys = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if line:
                keys.append(_parse_line(line.split(), f"{source}:{number}"))
        return cls(keys)

    def authenticate(self, token: str | None, scope: str, revoked: frozenset[str] = frozenset()) -> ApiKey:
        """The key behind ``token`` if it is valid, current and holds ``scope``; else AuthError/ForbiddenError."""
        if not token or not token.startswith("msk_") or token.count("_") < 2:
            raise AuthError("missing or malformed API key")
        key_id, secret = token[4:].split("_", 1)
        key = self._by_id.get(key_id)
        # Compare against a dummy when the id is unknown so timing does not reveal valid ids.
        expected = key.digest if key else _digest("0", "0")
        actual = _digest(key.salt if key else "0", secret)
        if key is None or not secrets.compare_digest(expected, actual):
            raise AuthError("invalid API key")
        status = "revoked" if key.id in revoked else key.status()
        if status != "active":
            raise AuthError(f"this API key has been {status}" if status == "revoked" else "this API key has expired")
        if scope not in key.scopes:
            raise ForbiddenError(f"this key lacks the {scope!r} scope")
        return key


def revoke_line(text: str, key_id: str, moment: float) -> str:
    """``text`` (a keys file) with ``key_id``'s line marked ``revoked=``; ConfigError when no such key."""
    out, found = [], False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split()
        if line and line[0] == key_id:
            key = _parse_line(line, "keys file")
            raw = replace(key, revoked_at=key.revoked_at or moment).line()
            found = True
        out.append(raw)
    if not found:
        raise ConfigError(f"no key with id {key_id!r} in the keys file")
    return "\n".join(out) + "\n"


class LiveKeys:
    """The keys every request is checked against, kept current without a restart.

    ``load`` reads the keys (file and environment); ``fingerprint`` says cheaply whether the file
    changed (its mtime and size); ``revoked`` reads the shared revocation list. Each is consulted at
    most once per ``refresh_s``. A keys file that became invalid is refused (logged) and the last
    good keys stay, as with rulebooks; an unreachable revocation list keeps the last one read.
    """

    def __init__(
        self,
        load: Callable[[], KeyStore],
        fingerprint: Callable[[], object] = lambda: None,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._fingerprint, self._refresh_s, self._clock = load, fingerprint, refresh_s, clock
        self._seen = fingerprint()
        self._keys = load()
        self._revoked_source: Callable[[], frozenset[str]] | None = None
        self._revoked: frozenset[str] = frozenset()
        self._checked = clock()

    def __len__(self) -> int:
        return len(self._keys)

    def watch_revocations(self, source: Callable[[], frozenset[str]]) -> None:
        """Also refuse keys named in this shared list (Redis), so `keys revoke` reaches every machine."""
        self._revoked_source = source
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._checked < self._refresh_s:
            return
        self._checked = now
        seen = self._fingerprint()
        if seen != self._seen:
            try:
                self._keys = self._load()
                self._seen = seen
                log.info("API keys reloaded", extra={"keys": len(self._keys)})
            except ConfigError as exc:
                log.error("API keys file refused; the last good keys stay", extra={"problem": str(exc)})
        if self._revoked_source is not None:
            try:
                self._revoked = self._revoked_source()
            except StoreUnavailable:
                log.warning("revocation list unreachable; using the last one read")

    def current(self) -> KeyStore:
        self._refresh()
        return self._keys

    def authenticate(self, token: str | None, scope: str) -> ApiKey:
        self._refresh()
        return self._keys.authenticate(token, scope, self._revoked)

    def active(self, key_id: str) -> ApiKey | None:
        """The key as it stands now, if still present, unexpired and unrevoked (console sessions check every request)."""
        self._refresh()
        key = self._keys.get(key_id)
        return key if key is not None and key.id not in self._revoked and key.status() == "active" else None
