"""Table-driven checks of the shipped code of conduct, on top of the file's own ``tests:``."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation_service.core.author import AuthorFacts
from moderation_service.core.crisis import CrisisDetector, assess
from moderation_service.core.decision import Action
from moderation_service.core.normalise import normalise
from moderation_service.core.policy import PolicyInput, decide
from moderation_service.core.rulebook import load_rulebook
from moderation_service.core.rulebook.loader import Rulebook
from moderation_service.core.rulebook.testing import run_rule_tests
from moderation_service.core.signposting import SignpostDirectory, load_directory
from tests.grammars import shipped_grammars

RULES = Path(__file__).resolve().parent.parent / "rules"


@pytest.fixture(scope="module")
def directory() -> SignpostDirectory:
    return load_directory(RULES / "signposting")


@pytest.fixture(scope="module")
def book(directory: SignpostDirectory) -> Rulebook:
    return load_rulebook(RULES / "peer-support.yaml", directory.helpline_numbers())


def fired(book: Rulebook, text: str, **author: int) -> list[str]:
    return [hit.rule.id for hit in book.matcher.match({"body": normalise(text)}, AuthorFacts(**author), "GB")]


def test_the_shipped_file_has_at_least_60_tests_and_they_pass(book: Rulebook, directory: SignpostDirectory) -> None:
    total, failures = run_rule_tests(book, directory, "en-GB", CrisisDetector(shipped_grammars()))
    assert total >= 60
    assert failures == []


EVERYDAY_HEALTH_TALK = [
    "this pain is killing me",
    "my painkillers",
    "I could murder a cup of tea",
    "the chemo is wiping me out",
    "My blood sugar is all over the place and it's doing my head in",
    "Stabbing pains in my hands again, anyone else?",
    "I'm terrified of the biopsy results",
    "Dialysis three times a week is exhausting",
    "I stopped taking my tablets after talking to my GP",
]


@pytest.mark.parametrize("text", EVERYDAY_HEALTH_TALK)
def test_everyday_health_talk_passes(book: Rulebook, text: str) -> None:
    assert fired(book, text) == []


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("you're an idiot", "harassment.insult"),
        ("YOU   IDIOT", "harassment.insult"),
        ("y o u idiot", "harassment.insult"),  # letter-spaced words are joined in the folded view
        ("you i.d.i.o.t", "harassment.insult"),
        ("you m0r0n", "harassment.insult"),
        ("stop whining, man up", "harassment.faking"),
        ("R3TARD", "hate.slur"),
        ("I'm gonna stab you", "threats.violence"),
        ("i'll break your legs", "threats.violence"),
        ("what's the painless way to die", "self_harm.methods"),
        ("k y s", "self_harm.encouragement"),  # letter-spaced words are joined
        ("just kys", "self_harm.encouragement"),
        ("dm me to buy", "commercial.selling"),
        ("drink bleach, it cures everything", "health_advice.miracle_cure"),
        ("you don't need insulin", "health_advice.stop_medication"),
    ],
)
def test_rule_table(book: Rulebook, text: str, rule_id: str | None) -> None:
    hits = fired(book, text)
    if rule_id is None:
        assert hits == []
    else:
        assert rule_id in hits


def test_spans_point_into_the_original_text(book: Rulebook) -> None:
    text = "Honestly, Y0U 1D10T, read the thread"
    hit = book.matcher.match({"body": normalise(text)}, AuthorFacts(), "GB")[0]
    assert text[hit.start : hit.end] == "Y0U 1D10T"


def test_helpline_numbers_are_not_personal_data(book: Rulebook) -> None:
    assert fired(book, "Samaritans are on 116 123, or Lifeline on 13 11 14") == []
    assert "privacy.contact_details" in fired(book, "text me on 07911 123456")


def test_organisation_numbers_are_not_personal_data(book: Rulebook) -> None:
    assert fired(book, "Versus Arthritis helpline 0800 5200 520, Diabetes UK 0345 123 2399") == []


def test_abuse_spans_point_at_what_the_author_wrote(book: Rulebook) -> None:
    text = "Morning all. Steve, you're a total f.r.a.u.d"
    hit = book.matcher.match({"body": normalise(text)}, AuthorFacts(), "GB")[0]
    assert hit.rule.id == "harassment.insult"
    assert text[hit.start : hit.end] == "you're a total f.r.a.u.d"


def test_new_accounts_sharing_trusted_sites_are_not_held(book: Rulebook) -> None:
    assert fired(book, "See https://www.nhs.uk/conditions/lupus/", account_age_days=1) == []
    assert "commercial.links_new_accounts" in fired(book, "See https://lupus-cure.example/", account_age_days=1)


def test_author_condition_needs_known_facts(book: Rulebook) -> None:
    text = "see www.example.com"
    assert "commercial.links_new_accounts" in fired(book, text, account_age_days=1)
    assert "commercial.links_new_accounts" not in fired(book, text, account_age_days=30)
    assert "commercial.links_new_accounts" not in fired(book, text)


def test_distress_signposts_and_never_just_holds(book: Rulebook, directory: SignpostDirectory) -> None:
    crisis = CrisisDetector(shipped_grammars())
    decisions = {}
    for text in ("I want to die", "I feel so alone and hopeless", "I'm going to kill myself tonight"):
        hits = book.matcher.match({"body": normalise(text)}, AuthorFacts(), "GB")
        risk = assess(crisis.detect({"body": text}, "en-GB").signals)
        decisions[text] = decision = decide(PolicyInput(book, hits, {}, (), "en-GB", Action.hold, risk=risk), directory)
        assert decision.signposting is not None and decision.signposting.resources
        assert decision.action is not Action.hold
    imminent = decisions["I'm going to kill myself tonight"]
    assert imminent.action is Action.escalate and imminent.priority == "urgent" and imminent.publish is False
    assert imminent.signposting is not None and imminent.signposting.resources[0].id == "emergency-gb"


def test_ten_thousand_phrase_rules_compile_and_only_the_right_one_fires(tmp_path: Path) -> None:
    """10,000 phrase rules compile and match correctly (speed itself is in benchmarks/)."""
    rules = "\n".join(
        f"  - {{id: r{i}, category: c, description: d, action: hold, match: {{any: {{phrases: ['word{i} here']}}}}}}" for i in range(10_000)
    )
    path = tmp_path / "big.yaml"
    path.write_text(f"name: big\ntitle: t\ncommunity: c\ncategories:\n  c: {{title: t, text: t}}\nrules:\n{rules}\n")
    book = load_rulebook(path)
    hits = book.matcher.match({"body": normalise("so word9876 here it is")}, AuthorFacts(), "GB")
    assert [h.rule.id for h in hits] == ["r9876"]
