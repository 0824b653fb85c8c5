"""The classification core: normalise -> rulebook -> classifiers -> policy. No HTTP, no Redis.

The API's sync path and the queue workers call the same ``Pipeline``, so a post gets the same
decision whichever way it arrives. A classifier that fails or overruns its time budget never
reaches the caller as an exception: the decision degrades to the configured safe action.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from moderation_service.classifiers.base import Classifier
from moderation_service.decision import Action, Decision
from moderation_service.errors import InputError, TextTooLongError
from moderation_service.metrics import Metrics
from moderation_service.normalise import normalise
from moderation_service.policy import PolicyInput, decide
from moderation_service.rulebook.matcher import AuthorFacts
from moderation_service.rulebook.registry import RulebookSet
from moderation_service.signposting import SignpostDirectory, country_of

__all__ = ["Pipeline", "Post"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Post:
    text: str
    title: str | None = None
    community: str | None = None
    locale: str | None = None
    author: AuthorFacts = field(default_factory=AuthorFacts)


def _classifier_text(post: Post) -> str:
    return f"{post.title}\n{post.text}" if post.title else post.text


class Pipeline:
    def __init__(
        self,
        rulebooks: RulebookSet,
        directory: SignpostDirectory,
        classifiers: Sequence[Classifier] = (),
        *,
        fallback_action: Action = Action.hold,
        classifier_timeout_s: float = 2.0,
        max_text_chars: int = 20_000,
        default_locale: str = "en-GB",
        classifier_threads: int = 16,
        metrics: Metrics | None = None,
    ) -> None:
        self.rulebooks = rulebooks
        self.directory = directory
        self.classifiers = tuple(classifiers)
        self.fallback_action = fallback_action
        self.classifier_timeout_s = classifier_timeout_s
        self.max_text_chars = max_text_chars
        self.default_locale = default_locale
        self.metrics = metrics
        # Several threads, so one hung model call cannot make every later request time out behind it.
        self._executor = ThreadPoolExecutor(max_workers=classifier_threads, thread_name_prefix="classifier")

    @property
    def model_versions(self) -> tuple[str, ...]:
        return tuple(f"{c.name}@{c.version}" for c in self.classifiers)

    def check(self, post: Post) -> None:
        """Refuse input the pipeline cannot judge, before any work is done."""
        if not post.text or not post.text.strip():
            raise InputError("text is empty")
        length = len(post.text) + len(post.title or "")
        if length > self.max_text_chars:
            raise TextTooLongError(length, self.max_text_chars)

    def moderate(self, post: Post) -> Decision:
        return self.moderate_batch([post])[0]

    def moderate_batch(self, posts: Sequence[Post]) -> list[Decision]:
        """Decisions in input order; classifiers see the whole batch in one call each."""
        for post in posts:
            self.check(post)
        started = time.perf_counter()
        books = [self.rulebooks.get(post.community) for post in posts]
        normalise_ms, rules_ms, all_hits = [], [], []
        for post, book in zip(posts, books, strict=True):
            t0 = time.perf_counter()
            fields = {"body": normalise(post.text), **({"title": normalise(post.title)} if post.title else {})}
            t1 = time.perf_counter()
            region = country_of(post.locale or self.default_locale) or "GB"
            all_hits.append(book.matcher.match(fields, post.author, region))
            normalise_ms.append((t1 - t0) * 1000)
            rules_ms.append((time.perf_counter() - t1) * 1000)
        scores, failed, model_ms = self._classify([_classifier_text(p) for p in posts])
        decisions = []
        for i, (post, book) in enumerate(zip(posts, books, strict=True)):
            t0 = time.perf_counter()
            decision = decide(
                PolicyInput(
                    rulebook=book,
                    hits=all_hits[i],
                    scores=scores[i],
                    degraded=failed,
                    locale=post.locale or self.default_locale,
                    fallback_action=self.fallback_action,
                    models=self.model_versions,
                ),
                self.directory,
            )
            timings = {"normalise": normalise_ms[i], "rules": rules_ms[i], **{k: v / len(posts) for k, v in model_ms.items()}}
            timings["policy"] = (time.perf_counter() - t0) * 1000
            timings["total"] = (time.perf_counter() - started) * 1000 / len(posts)
            decision = decision.model_copy(update={"timings_ms": {k: round(v, 3) for k, v in timings.items()}})
            if self.metrics is not None:
                self.metrics.observe_decision(decision)
            decisions.append(decision)
        return decisions

    def _classify(self, texts: list[str]) -> tuple[list[dict[str, float]], list[str], dict[str, float]]:
        """Merged scores per text (max over classifiers), failed classifier names, ms per classifier."""
        merged: list[dict[str, float]] = [{} for _ in texts]
        failed: list[str] = []
        timings: dict[str, float] = {}
        futures = [(c, self._executor.submit(c.predict, texts)) for c in self.classifiers]
        deadline = time.monotonic() + self.classifier_timeout_s
        for classifier, future in futures:
            t0 = time.perf_counter()
            try:
                result = future.result(timeout=max(0.0, deadline - time.monotonic()))
                _check_scores(result, len(texts))
            except FutureTimeout:
                log.warning("classifier timed out", extra={"classifier": classifier.name})
                failed.append(classifier.name)
                continue
            except Exception as exc:  # any failure inside a model degrades; it never reaches the caller
                log.warning("classifier failed", extra={"classifier": classifier.name, "error": exc.__class__.__name__})
                failed.append(classifier.name)
                continue
            finally:
                timings[f"model:{classifier.name}"] = (time.perf_counter() - t0) * 1000
            for target, scores in zip(merged, result, strict=True):
                for label, value in scores.items():
                    target[label] = max(target.get(label, 0.0), float(value))
        return merged, failed, timings

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _check_scores(result: object, expected: int) -> None:
    if not isinstance(result, list) or len(result) != expected:
        raise ValueError("classifier returned the wrong number of score sets")
    for scores in result:
        if not isinstance(scores, dict) or not all(0.0 <= float(v) <= 1.0 for v in scores.values()):
            raise ValueError("classifier returned a score outside [0, 1]")
