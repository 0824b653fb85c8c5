"""The author's facts are one model: the API, the matcher, rule-file tests and suite cases share its bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from moderation_service.core.author import AuthorFacts
from moderation_service.core.post import AuthorIn, PostIn
from moderation_service.core.rulebook import load_rulebook
from moderation_service.core.rulebook.schema import RuleTest
from moderation_service.errors import RulebookError
from moderation_service.training.functional import Case


def test_every_author_field_is_the_one_model() -> None:
    assert issubclass(AuthorIn, AuthorFacts)
    assert RuleTest.model_fields["author"].annotation == AuthorFacts | None
    assert Case.model_fields["author"].annotation == AuthorFacts | None


def test_the_wire_format_is_unchanged_and_the_id_never_reaches_the_core() -> None:
    post = PostIn.model_validate({"text": "hi", "author": {"id": "u1", "account_age_days": 3, "approved_posts": 0}})
    assert post.to_post().author == AuthorFacts(account_age_days=3, approved_posts=0)
    with pytest.raises(ValidationError):
        PostIn.model_validate({"text": "hi", "author": {"karma": 1}})
    with pytest.raises(ValidationError):
        AuthorIn(account_age_days=-1)


def test_a_rule_file_test_author_has_the_same_bounds(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\ntitle: T\ncommunity: C\ncategories:\n  c: {title: C, text: be nice}\n"
        "rules:\n  - {id: r, category: c, description: d, action: hold, match: {any: {phrases: [apple]}}}\n"
        "tests:\n  - {text: an apple, triggers: [r], author: {account_age_days: -1}}\n"
    )
    with pytest.raises(RulebookError, match="account_age_days"):
        load_rulebook(path)
