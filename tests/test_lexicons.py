"""Lexicons: maintained word lists that regex rules name as ``{{name}}``, refused clearly when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import re2

from moderation_service.core.author import AuthorFacts
from moderation_service.core.normalise import normalise
from moderation_service.core.rulebook import load_rulebook
from moderation_service.core.rulebook.lexicons import term_pattern
from moderation_service.errors import RulebookError

RULES = Path(__file__).resolve().parent.parent / "rules"
HEADER = "name: t\ntitle: T\ncommunity: C\ncategories:\n  c: {title: C, text: be nice}\n"
LEXICON = "description: d\nsource: s\nchecked: 2026-11-27\nterms: [co-codamol, pregabalin, idiot]\n"


def _load(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "t.yaml"
    path.write_text(HEADER + body)
    with pytest.raises(RulebookError) as caught:
        load_rulebook(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("term", "text", "found"),
    [
        ("co-codamol", "selling cocodamol", True),
        ("co-codamol", "selling co codamol", True),
        ("idiot", "you idiiiot", True),
        ("idiot", "idiotic", False),
        ("disabled people", "disab1ed people", True),  # leet 1 folds to i but often means l
        ("can't stand", "i cant stand", True),
        ("scrounger*", "scroungers", True),
    ],
)
def test_term_pattern_matches_the_folded_view(term: str, text: str, found: bool) -> None:
    pattern = re2.compile(term_pattern(term))
    assert (pattern.search(normalise(text).folded.text) is not None) is found


def test_term_without_letters_is_refused() -> None:
    with pytest.raises(ValueError, match="no letters"):
        term_pattern("--")


def test_rule_uses_a_lexicon_file(tmp_path: Path) -> None:
    (tmp_path / "meds.yaml").write_text(LEXICON)
    path = tmp_path / "t.yaml"
    path.write_text(
        HEADER
        + "lexicons: {meds: meds.yaml, trade: [selling, for sale]}\n"
        + "rules:\n  - {id: c.sell, category: c, description: d, action: hold, match: {any: {regex: ['{{trade}}\\s+{{meds}}']}}}\n"
    )
    book = load_rulebook(path)
    hits = book.matcher.match({"body": normalise("Selling co codamol, DM me")}, AuthorFacts(), "GB")
    assert [(h.rule.id, h.start, h.end) for h in hits] == [("c.sell", 0, 18)]


def test_unknown_lexicon_names_file_line_and_rule(tmp_path: Path) -> None:
    rule = "rules:\n  - id: c.x\n    category: c\n    description: d\n    action: hold\n    match: {any: {regex: ['{{nope}}']}}\n"
    found = _load(tmp_path, rule)
    assert len(found) == 1 and "t.yaml:11: rule c.x:" in found[0] and "unknown lexicon 'nope'" in found[0]


def test_missing_and_invalid_lexicon_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("description: d\nsource: s\nchecked: soon\nterms: [a]\n")
    found = _load(tmp_path, "lexicons: {gone: gone.yaml, bad: bad.yaml}\n")
    assert any("lexicon file not found in the rules folder: gone.yaml" in p for p in found)
    assert any("bad.yaml:3:" in p and "checked" in p for p in found)


def test_shipped_lexicons_name_their_source() -> None:
    for path in sorted((RULES / "lexicons").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert "\nsource:" in text and "\nchecked:" in text, path.name
    load_rulebook(RULES / "peer-support.yaml")  # every list is referenced and valid
