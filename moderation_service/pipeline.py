"""The classification core: normalise -> rulebook -> crisis grammar -> classifiers -> policy. No HTTP, no Redis.

The API's sync path and the queue workers call the same ``Pipeline``, so a post gets the same
decision whichever way it arrives. A classifier that fails or overruns its time budget never
reaches the caller as an exception: the decision degrades to the configured safe action.

Time budgets are per post and grow with its length, so one long post cannot make its neighbours
time out; a call past its deadline is told to stop (classifiers that accept a deadline check it
between windows), so it cannot starve the calls behind it. ``classifier_timeout_s=None`` (the CLI's
``classify`` and ``eval``) waits as long as a model needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from moderation_service.classifiers.base import Classifier
from moderation_service.crisis import (
    LEVEL_HEADS,
    RISK_PREFIX,
    CrisisDetector,
    CrisisFinding,
    Dimension,
    RiskAssessment,
    RiskSignal,
    assess,
)
from moderation_service.decision import DISTRESS_ORDER, Action, Decision, DistressLevel
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


def _languages(classifier: Classifier) -> tuple[str, ...]:
    """Languages a classifier was trained for (English unless it says otherwise)."""
    return tuple(getattr(classifier, "languages", ("en",)))


class Pipeline:
    def __init__(
        self,
        rulebooks: RulebookSet,
        directory: SignpostDirectory,
        classifiers: Sequence[Classifier] = (),
        *,
        crisis: CrisisDetector | None = None,
        fallback_action: Action = Action.hold,
        classifier_timeout_s: float | None = 2.0,
        timeout_per_kchar_s: float = 0.25,
        max_text_chars: int = 20_000,
        default_locale: str = "en-GB",
        classifier_threads: int = 16,
        metrics: Metrics | None = None,
    ) -> None:
        self.rulebooks = rulebooks
        self.directory = directory
        self.classifiers = tuple(classifiers)
        self.crisis = crisis
        self.fallback_action = fallback_action
        self.classifier_timeout_s = classifier_timeout_s
        self.timeout_per_kchar_s = timeout_per_kchar_s
        self.max_text_chars = max_text_chars
        self.default_locale = default_locale
        self.metrics = metrics
        self._model_languages = frozenset(lang for c in self.classifiers for lang in _languages(c))
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

    def budget_s(self, text: str) -> float | None:
        """The time one post's model calls may take: a base plus a share per thousand characters."""
        if self.classifier_timeout_s is None:
            return None
        return self.classifier_timeout_s + self.timeout_per_kchar_s * len(text) / 1000

    def moderate_batch(self, posts: Sequence[Post]) -> list[Decision]:
        """Decisions in input order."""
        for post in posts:
            self.check(post)
        started = time.perf_counter()
        books = [self.rulebooks.get(post.community) for post in posts]
        timings: list[dict[str, float]] = [{} for _ in posts]
        all_hits, findings = [], []
        for i, (post, book) in enumerate(zip(posts, books, strict=True)):
            t0 = time.perf_counter()
            fields = {"body": normalise(post.text), **({"title": normalise(post.title)} if post.title else {})}
            t1 = time.perf_counter()
            region = country_of(post.locale or self.default_locale) or "GB"
            all_hits.append(book.matcher.match(fields, post.author, region))
            t2 = time.perf_counter()
            findings.append(self.crisis.detect(fields, post.locale) if self.crisis else None)
            timings[i].update(normalise=(t1 - t0) * 1000, rules=(t2 - t1) * 1000, crisis=(time.perf_counter() - t2) * 1000)
        supported = [self._supported(finding) for finding in findings]
        texts = [_classifier_text(p) if ok else None for p, ok in zip(posts, supported, strict=True)]
        scored = self._classify(texts, timings)
        decisions = []
        for i, (post, book) in enumerate(zip(posts, books, strict=True)):
            t0 = time.perf_counter()
            scores, failed = scored[i]
            finding = findings[i]
            risk = self._risk(finding, scores)
            decision = decide(
                PolicyInput(
                    rulebook=book,
                    hits=all_hits[i],
                    scores=scores,
                    degraded=failed,
                    locale=post.locale or self.default_locale,
                    fallback_action=self.fallback_action,
                    models=self.model_versions,
                    risk=risk,
                    language=finding.language.language if finding else None,
                    language_supported=supported[i],
                ),
                self.directory,
            )
            timings[i]["policy"] = (time.perf_counter() - t0) * 1000
            timings[i]["total"] = sum(timings[i].values())
            decision = decision.model_copy(update={"timings_ms": {k: round(v, 3) for k, v in timings[i].items()}})
            if self.metrics is not None:
                self.metrics.observe_decision(decision)
            decisions.append(decision)
        log.debug("batch moderated", extra={"posts": len(posts), "ms": round((time.perf_counter() - started) * 1000, 3)})
        return decisions

    def _supported(self, finding: CrisisFinding | None) -> bool:
        """Whether the classifiers know the post's language (unknown languages are scored as usual)."""
        language = finding.language.language if finding else None
        return language is None or not self.classifiers or language in self._model_languages

    def _risk(self, finding: CrisisFinding | None, scores: dict[str, float]) -> RiskAssessment:
        """Grammar and model-head signals combined (docs/crisis-risk.md).

        A head counts on its own at its operating point (dev precision >= its target), and beside
        another signal at its lower supporting point; the level heads raise the level the same way.
        """
        signals = list(finding.signals if finding else ())
        supporting: list[RiskSignal] = []
        levels: list[tuple[DistressLevel, float, bool]] = []  # (level, score, counts on its own)
        for classifier in self.classifiers:
            points: dict[str, float] = getattr(classifier, "operating_points", {})
            lower: dict[str, float] = getattr(classifier, "supporting_points", points)
            for label, threshold in points.items():
                score = scores.get(label)
                if score is None or score < min(threshold, lower.get(label, threshold)):
                    continue
                if label.startswith(RISK_PREFIX):
                    alone = score >= threshold
                    dimension = Dimension(label.removeprefix(RISK_PREFIX))
                    signal = RiskSignal(dimension=dimension, source="model", score=score, supporting=not alone)
                    (signals if alone else supporting).append(signal)
                elif label in LEVEL_HEADS:
                    levels.append((LEVEL_HEADS[label], score, score >= threshold))
        corroborated = bool(signals)
        model_level, model_score = DistressLevel.none, None
        for level, score, alone in levels:
            if (alone or corroborated) and DISTRESS_ORDER[level] > DISTRESS_ORDER[model_level]:
                model_level, model_score = level, score
        risk = assess(signals, model_level, model_score)
        if supporting and (corroborated or model_level is not DistressLevel.none):
            # Weak signals are shown only when they raise the level, so the reasons stay the ones that matter.
            raised = assess([*signals, *supporting], model_level, model_score)
            if DISTRESS_ORDER[raised.level] > DISTRESS_ORDER[risk.level]:
                return raised
        return risk

    def _classify(self, texts: list[str | None], timings: list[dict[str, float]]) -> list[tuple[dict[str, float], list[str]]]:
        """Per post: merged scores (max over classifiers) and the names of classifiers that failed.

        Every post gets its own call and its own deadline; None texts (unsupported language) skip the models.
        """
        calls: list[list[tuple[Classifier, Future[tuple[list[dict[str, float]], float]], float | None]]] = []
        submitted: list[float] = []
        for text in texts:
            submitted.append(time.perf_counter())
            row = []
            if text is not None:
                budget = self.budget_s(text)
                deadline = None if budget is None else time.monotonic() + budget
                for classifier in self.classifiers:
                    row.append((classifier, self._executor.submit(_predict_one, classifier, text, deadline), deadline))
            calls.append(row)
        out: list[tuple[dict[str, float], list[str]]] = []
        for i, row in enumerate(calls):
            merged: dict[str, float] = {}
            failed: list[str] = []
            for classifier, future, deadline in row:
                try:
                    result, _ = future.result(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
                    # The wait as the post saw it (queueing and thread hand-over included), so the stages add up to the wall time.
                    timings[i][f"model:{classifier.name}"] = (time.perf_counter() - submitted[i]) * 1000
                    _check_scores(result, 1)
                except FutureTimeout:
                    future.cancel()
                    log.warning("classifier timed out", extra={"classifier": classifier.name})
                    failed.append(classifier.name)
                    continue
                except Exception as exc:  # any failure inside a model degrades; it never reaches the caller
                    log.warning("classifier failed", extra={"classifier": classifier.name, "error": exc.__class__.__name__})
                    failed.append(classifier.name)
                    continue
                for label, value in result[0].items():
                    merged[label] = max(merged.get(label, 0.0), float(value))
            out.append((merged, failed))
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _predict_one(classifier: Classifier, text: str, deadline: float | None) -> tuple[list[dict[str, float]], float]:
    """One post through one classifier, and its run time in ms; a classifier that accepts a deadline stops once it passes."""
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError("deadline passed before the model started")
    t0 = time.perf_counter()
    if getattr(classifier, "accepts_deadline", False):
        result = classifier.predict([text], deadline=deadline)  # type: ignore[call-arg]
    else:
        result = classifier.predict([text])
    return result, (time.perf_counter() - t0) * 1000


def _check_scores(result: object, expected: int) -> None:
    if not isinstance(result, list) or len(result) != expected:
        raise ValueError("classifier returned the wrong number of score sets")
    for scores in result:
        if not isinstance(scores, dict) or not all(0.0 <= float(v) <= 1.0 for v in scores.values()):
            raise ValueError("classifier returned a score outside [0, 1]")
