"""Rule files before they go live: validate, run their own tests, render the code of conduct (the ``rules`` commands)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from moderation_service.core.classifiers.abuse_heads import CurvePoint, dev_curves, point_at
from moderation_service.core.crisis import CrisisDetector, load_grammars
from moderation_service.core.rulebook import Rulebook, load_rulebook
from moderation_service.core.rulebook.render import render_html, render_markdown
from moderation_service.core.rulebook.testing import TestFailure, run_rule_tests
from moderation_service.core.signposting import SignpostDirectory, load_directory

__all__ = ["BandEstimate", "Rulebook", "TestFailure", "band_estimates", "check_rule_file", "render_rule_file", "run_file_tests"]


def _directory(rules_dir: Path, rule_file: Path) -> SignpostDirectory:
    """The signposting directory beside the rule file, else the configured one (helplines are never flagged)."""
    beside = rule_file.resolve().parent / "signposting"
    return load_directory(beside if beside.is_dir() else rules_dir / "signposting")


def check_rule_file(path: Path, rules_dir: Path | None = None) -> Rulebook:
    """The loaded rulebook; RulebookError naming file, line and rule id for each problem.

    ``rules_dir``: where ``extends`` finds rulebooks that are not beside the file.
    """
    return load_rulebook(path, rules_dir=rules_dir)


@dataclass(frozen=True)
class BandEstimate:
    """What one acting threshold band would do, read off the model's dev curve for its label."""

    label: str
    band_min: float
    action: str
    point: CurvePoint


def band_estimates(book: Rulebook, model_dir: Path) -> list[BandEstimate]:
    """Expected precision and hold rate, on dev and at the assumed deployment prevalence, of each band the curves cover
    (an ``allow`` band reports the head's reason without holding: the figures are what holding there would do).

    The curves ship with the model heads that carry them (``abuse_heads.json``), so a community moving a
    threshold sees what it would hold before the rulebook goes live.
    """
    curves = dev_curves(model_dir)
    out = []
    for label, threshold in sorted(book.thresholds.items()):
        for band in threshold.bands:
            point = point_at(curves.get(label, []), band.min)
            if point is not None:
                out.append(BandEstimate(label, band.min, band.action.value, point))
    return out


def run_file_tests(path: Path, rules_dir: Path, default_locale: str) -> tuple[int, list[TestFailure]]:
    """(tests run, failures) of the file's own ``tests:``, through its rules and the crisis grammars.

    ``default_locale`` is the pipeline's (settings), so a test without ``locale:`` runs as a post would.
    """
    directory = _directory(rules_dir, path)
    book = load_rulebook(path, directory.helpline_numbers(), rules_dir)
    crisis = CrisisDetector(load_grammars(rules_dir / "crisis"))
    return run_rule_tests(book, directory, default_locale, crisis)


def render_rule_file(path: Path, format: Literal["md", "html"], rules_dir: Path | None = None) -> str:
    book = load_rulebook(path, rules_dir=rules_dir)
    return render_markdown(book) if format == "md" else render_html(book)
