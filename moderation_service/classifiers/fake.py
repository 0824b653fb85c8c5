"""A fake classifier shipped as real code, so API, worker and policy tests need no weights.

``FakeClassifier(fn)`` scores with any function. ``scripted_fake`` (registry name ``fake``) reads
instructions embedded in the text, e.g. ``[fake toxicity=0.93]``, ``[fake fail]`` or
``[fake sleep=3]``, which lets HTTP tests drive model scores, failures and time-outs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from moderation_service.errors import ClassifierError

if TYPE_CHECKING:
    from moderation_service.config import Settings

__all__ = ["FAKE_LABELS", "FakeClassifier", "scripted_fake"]

FAKE_LABELS = ("toxicity", "identity_attack", "threat", "distress", "suicide_risk")
_INSTRUCTION = re.compile(r"\[fake ([^\]]{1,200})\]")


class FakeClassifier:
    def __init__(
        self,
        fn: Callable[[str], dict[str, float]],
        labels: tuple[str, ...] = FAKE_LABELS,
        name: str = "fake",
        version: str = "0",
    ) -> None:
        self._fn = fn
        self.labels = labels
        self.name = name
        self.version = version

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return [self._fn(text) for text in texts]


def _scripted(text: str) -> dict[str, float]:
    scores = dict.fromkeys(FAKE_LABELS, 0.0)
    for match in _INSTRUCTION.finditer(text):
        for word in match.group(1).split():
            key, _, value = word.partition("=")
            if key == "fail":
                raise ClassifierError("scripted failure")
            if key == "sleep":
                time.sleep(float(value))
            elif key in scores:
                scores[key] = float(value)
    return scores


def scripted_fake(settings: Settings) -> FakeClassifier:
    """Registry factory for ``MODERATION_CLASSIFIERS=fake``."""
    return FakeClassifier(_scripted)
