"""A fake classifier for tests, typed like a real one, so API, worker and policy tests need no weights.

It is not in the production registry: tests register it (``register_fake``), and test servers name it
by its dotted path. ``FakeClassifier(fn)`` scores with any function. ``scripted_fake`` reads
instructions embedded in the text, e.g. ``[fake toxicity=0.93]``, ``[fake level.imminent=0.9]``, ``[fake insult=0.9]``,
``[fake fail]`` or ``[fake sleep=3]``, which lets HTTP tests drive model scores, risk heads (each at an
operating point of 0.5), failures and time-outs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from moderation_service.core.classifiers.abuse_heads import ABUSE_LABELS
from moderation_service.core.classifiers.base import REGISTRY
from moderation_service.core.crisis.dimensions import HEAD_LABELS
from moderation_service.errors import ClassifierError

if TYPE_CHECKING:
    from moderation_service.core.options import ClassifierOptions

__all__ = ["FAKE", "FAKE_HEADS", "FAKE_LABELS", "FakeClassifier", "register_fake", "scripted_fake"]

FAKE = "tests.fake_classifier:scripted_fake"  # what MODERATION_CLASSIFIERS names in test servers

FAKE_LABELS = ("toxicity", "identity_attack", "threat", "distress", "suicide_risk")
FAKE_HEADS = HEAD_LABELS
_INSTRUCTION = re.compile(r"\[fake ([^\]]{1,200})\]")


class FakeClassifier:
    def __init__(
        self,
        fn: Callable[[str], dict[str, float]],
        labels: tuple[str, ...] = FAKE_LABELS,
        name: str = "fake",
        version: str = "0",
        operating_points: dict[str, float] | None = None,
    ) -> None:
        self._fn = fn
        self.labels = labels
        self.name = name
        self.version = version
        self.operating_points = operating_points or {}

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return [self._fn(text) for text in texts]


def _scripted(text: str) -> dict[str, float]:
    scores = dict.fromkeys(FAKE_LABELS, 0.0)
    heads: dict[str, float] = {}
    for match in _INSTRUCTION.finditer(text):
        for word in match.group(1).split():
            key, _, value = word.partition("=")
            if key == "fail":
                raise ClassifierError("scripted failure")
            if key == "sleep":
                time.sleep(float(value))
            elif key in scores:
                scores[key] = float(value)
            elif key in FAKE_HEADS or key in ABUSE_LABELS:  # heads score only when scripted, as when none are trained
                heads[key] = float(value)
    return {**scores, **heads}


def scripted_fake(options: ClassifierOptions) -> FakeClassifier:
    """Classifier factory (``MODERATION_CLASSIFIERS=tests.fake_classifier:scripted_fake``, or ``fake`` once registered)."""
    return FakeClassifier(_scripted, FAKE_LABELS + FAKE_HEADS + ABUSE_LABELS, operating_points=dict.fromkeys(FAKE_HEADS, 0.5))


def register_fake() -> None:
    """Let in-process tests say ``classifiers=["fake"]``."""
    REGISTRY["fake"] = FAKE
