"""Run a rulebook's own ``tests:`` (rules and crisis grammars, no models), so a change is checked before it goes live."""

from __future__ import annotations

from dataclasses import dataclass

from moderation_service.core.author import AuthorFacts
from moderation_service.core.crisis import CrisisDetector, assess
from moderation_service.core.decision import Action
from moderation_service.core.normalise import normalise
from moderation_service.core.policy import PolicyInput, decide
from moderation_service.core.rulebook.loader import Rulebook
from moderation_service.core.signposting import SignpostDirectory, country_of

__all__ = ["TestFailure", "run_rule_tests"]


@dataclass(frozen=True)
class TestFailure:
    index: int
    text: str
    expected: str
    got: str


def run_rule_tests(
    book: Rulebook, directory: SignpostDirectory, default_locale: str, crisis: CrisisDetector | None = None
) -> tuple[int, list[TestFailure]]:
    """(number of tests run, failures); a test without ``locale:`` runs as ``default_locale``, as a post would."""
    failures = []
    for index, test in enumerate(book.tests):
        locale = test.locale or default_locale
        region = country_of(locale) or country_of(default_locale) or ""
        author = test.author or AuthorFacts()
        fields = {"body": normalise(test.text), **({"title": normalise(test.title)} if test.title else {})}
        hits = book.matcher.match(fields, author, region)
        fired = [hit.rule.id for hit in hits]
        missing = [r for r in test.triggers if r not in fired]
        unwanted = [r for r in test.not_triggers if r in fired]
        if missing:
            failures.append(TestFailure(index, test.text, f"triggers {', '.join(missing)}", f"fired: {', '.join(fired) or 'nothing'}"))
        if unwanted:
            failures.append(TestFailure(index, test.text, f"does not trigger {', '.join(unwanted)}", f"fired: {', '.join(fired)}"))
        if test.action is not None or test.distress_level is not None:
            finding = crisis.detect(fields, test.locale) if crisis else None
            risk = assess(finding.signals if finding else ())
            decision = decide(PolicyInput(book, hits, {}, (), locale, Action.hold, risk=risk), directory)
            if test.distress_level is not None and decision.distress_level is not test.distress_level:
                failures.append(
                    TestFailure(
                        index, test.text, f"distress_level {test.distress_level.value}", f"distress_level {decision.distress_level.value}"
                    )
                )
            if test.action is not None and decision.action is not test.action:
                failures.append(
                    TestFailure(
                        index,
                        test.text,
                        f"action {test.action.value}",
                        f"action {decision.action.value} ({', '.join(fired) or 'no rules'})",
                    )
                )
    return len(book.tests), failures
