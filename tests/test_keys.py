from __future__ import annotations

import pytest

from moderation_service.errors import AuthError, ConfigError, ForbiddenError
from moderation_service.keys import KeyStore, generate_key


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
