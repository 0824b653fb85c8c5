from __future__ import annotations

from pathlib import Path

import pytest

from moderation_service.errors import AuthError, ConfigError, ForbiddenError
from moderation_service.keys import DEFAULT_TENANT, KeyStore, LiveKeys, generate_key, parse_time, revoke_line


def test_round_trip_and_scopes() -> None:
    token, key = generate_key(["moderate"])
    store = KeyStore.from_lines(f"# comment\n{key.line()}\n")
    assert store.authenticate(token, "moderate").id == key.id
    with pytest.raises(ForbiddenError):
        store.authenticate(token, "admin")


@pytest.mark.parametrize("token", [None, "", "Bearer", "msk_", "msk_abc", "msk_unknown_secret"])
def test_bad_tokens(token: str | None) -> None:
    _, key = generate_key(["moderate"])
    with pytest.raises(AuthError):
        KeyStore.from_lines(key.line()).authenticate(token, "moderate")


def test_tampered_secret_fails() -> None:
    token, key = generate_key(["moderate"])
    with pytest.raises(AuthError):
        KeyStore.from_lines(key.line()).authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"), "moderate")


def test_stored_line_holds_no_secret() -> None:
    token, key = generate_key(["moderate"])
    assert token.split("_", 2)[2] not in key.line()


@pytest.mark.parametrize("line", ["id moderate plaintext", "id nope sha256$a$b", "too few"])
def test_bad_lines_name_the_line(line: str) -> None:
    with pytest.raises(ConfigError, match=":2:"):
        KeyStore.from_lines("\n" + line)


# --- tenants, expiry and revocation (issue 12, items 8 and 13) ------------------------------------


def test_tenant_communities_and_expiry_round_trip_through_the_line() -> None:
    token, key = generate_key(["moderator"], tenant="acme", communities=["diabetes", "ms"], expires_at=parse_time("2099-01-01"))
    assert "tenant=acme" in key.line() and "communities=diabetes,ms" in key.line() and "expires=2099-01-01T00:00:00Z" in key.line()
    back = KeyStore.from_lines(key.line()).authenticate(token, "moderator")
    assert (back.tenant, back.communities) == ("acme", frozenset({"diabetes", "ms"}))
    assert back.allows("ms") and not back.allows("other") and not back.allows(None)


def test_a_line_without_tenant_is_the_default_tenant_with_every_community() -> None:
    token, key = generate_key(["moderate"])
    back = KeyStore.from_lines(key.line()).authenticate(token, "moderate")
    assert back.tenant == DEFAULT_TENANT and back.allows(None) and back.allows("anything")


def test_expired_and_revoked_keys_are_refused() -> None:
    expired_token, expired = generate_key(["moderate"], expires_at=parse_time("2020-01-01T00:00:00Z"))
    token, key = generate_key(["moderate"])
    text = revoke_line(f"{expired.line()}\n{key.line()}  # the forum's key\n", key.id, parse_time("2026-11-27"))
    store = KeyStore.from_lines(text)
    with pytest.raises(AuthError, match="expired"):
        store.authenticate(expired_token, "moderate")
    with pytest.raises(AuthError, match="revoked"):
        store.authenticate(token, "moderate")
    with pytest.raises(ConfigError, match="no key"):
        revoke_line(text, "nope", 0)


@pytest.mark.parametrize("extra", ["tenant=", "tenant=Bad Name", "colour=red", "expires=soon", "tenant=a tenant=b"])
def test_bad_fields_name_the_line(extra: str) -> None:
    _, key = generate_key(["moderate"])
    with pytest.raises(ConfigError, match=":1:"):
        KeyStore.from_lines(f"{key.line()} {extra}")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_live_keys_follow_the_file_and_the_revocation_list(tmp_path: Path) -> None:
    """Unit test of the refresh logic; the same path runs through real server processes in test_tenancy."""
    path = tmp_path / "keys"
    token, key = generate_key(["moderate"])
    new_token, new_key = generate_key(["moderate"])
    path.write_text(key.line() + "\n")
    clock, revoked = _Clock(), {"ids": frozenset[str]()}
    live = LiveKeys(lambda: KeyStore.from_lines(path.read_text()), lambda: path.stat().st_size, refresh_s=1.0, clock=clock)
    live.watch_revocations(lambda: revoked["ids"])
    path.write_text(f"{key.line()}\n{new_key.line()}\n")
    with pytest.raises(AuthError):
        live.authenticate(new_token, "moderate")  # not re-read within refresh_s
    clock.now = 1.0
    assert live.authenticate(new_token, "moderate").id == new_key.id
    revoked["ids"] = frozenset({key.id})
    clock.now = 2.0
    with pytest.raises(AuthError, match="revoked"):
        live.authenticate(token, "moderate")
    assert live.active(key.id) is None and live.active(new_key.id) == new_key
    path.write_text("not a key line\n")
    clock.now = 3.0
    assert live.authenticate(new_token, "moderate").id == new_key.id  # a broken file is refused; the last good keys stay
