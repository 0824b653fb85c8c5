"""API keys: random tokens shown once, stored only as salted SHA-256 hashes with scopes.

A key looks like ``msk_<id>_<secret>``. The id finds the stored line; the secret is checked with
``secrets.compare_digest``. Keys carry 256 bits of entropy, so a fast hash is the right choice
(a slow password hash would only add latency to every request).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from moderation_service.errors import AuthError, ConfigError, ForbiddenError

__all__ = ["SCOPES", "ApiKey", "KeyStore", "generate_key"]

SCOPES = ("moderate", "submit", "moderator", "admin")


@dataclass(frozen=True)
class ApiKey:
    id: str
    scopes: frozenset[str]
    salt: str
    digest: str

    def line(self) -> str:
        return f"{self.id} {','.join(sorted(self.scopes))} sha256${self.salt}${self.digest}"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def generate_key(scopes: list[str]) -> tuple[str, ApiKey]:
    """A new key: the token to hand out once, and the record to store."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ConfigError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(8)
    return f"msk_{key_id}_{secret}", ApiKey(key_id, frozenset(scopes), salt, _digest(salt, secret))


class KeyStore:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._by_id = {key.id: key for key in keys}

    def __len__(self) -> int:
        return len(self._by_id)

    @classmethod
    def from_lines(cls, text: str, source: str = "api keys") -> KeyStore:
        """Parse ``<id> <scope,scope> sha256$<salt>$<hex>`` lines; '#' starts a comment."""
        keys = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3 or parts[2].count("$") != 2 or not parts[2].startswith("sha256$"):
                raise ConfigError(f"{source}:{number}: expected '<id> <scopes> sha256$<salt>$<hash>'")
            scopes = frozenset(parts[1].split(","))
            if not scopes <= set(SCOPES):
                raise ConfigError(f"{source}:{number}: unknown scope in {parts[1]!r}")
            _, salt, digest = parts[2].split("$")
            keys.append(ApiKey(parts[0], scopes, salt, digest))
        return cls(keys)

    def authenticate(self, token: str | None, scope: str) -> ApiKey:
        """The key behind ``token`` if it is valid and holds ``scope``; else AuthError/ForbiddenError."""
        if not token or not token.startswith("msk_") or token.count("_") < 2:
            raise AuthError("missing or malformed API key")
        key_id, secret = token[4:].split("_", 1)
        key = self._by_id.get(key_id)
        # Compare against a dummy when the id is unknown so timing does not reveal valid ids.
        expected = key.digest if key else _digest("0", "0")
        actual = _digest(key.salt if key else "0", secret)
        if key is None or not secrets.compare_digest(expected, actual):
            raise AuthError("invalid API key")
        if scope not in key.scopes:
            raise ForbiddenError(f"this key lacks the {scope!r} scope")
        return key
