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
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from moderation_service.core.author import AuthorFacts
from moderation_service.core.classifiers.base import Classifier
from moderation_service.core.crisis import (
    LEVEL_HEADS,
    RISK_PREFIX,
    CrisisDetector,
    CrisisFinding,
    Dimension,
    RiskAssessment,
    RiskSignal,
    assess,
)
from moderation_service.core.decision import DISTRESS_ORDER, Decision, DistressLevel
from moderation_service.core.normalise import normalise
from moderation_service.core.options import PipelineOptions
from moderation_service.core.policy import PolicyInput, decide
from moderation_service.core.rulebook.registry import RulebookSet
from moderation_service.core.signposting import SignpostDirectory, country_of
from moderation_service.errors import InputError, TextTooLongError

__all__ = ["ModelVersion", "Pipeline", "Post", "is_blank"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Post:
    text: str
    title: str | None = None
    community: str | None = None
    locale: str | None = None
    author: AuthorFacts = field(default_factory=AuthorFacts)


class ModelVersion(BaseModel):
    """A loaded model's name and version, kept apart (shown joined as ``name@version`` only on the wire)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def is_blank(text: str | None) -> bool:
    """The one test for "no text": every entry point refuses such a post the same way."""
    return not text or not text.strip()


def _classifier_text(post: Post) -> str:
    return f"{post.title}\n{post.text}" if post.title else post.text


def _languages(classifier: Classifier) -> tuple[str, ...]:
    """Languages a classifier was trained for (English unless it says otherwise)."""
    return tuple(getattr(classifier, "languages", ("en",)))


class Pipeline:
    """Already-built parts in, decisions out; what to count or store is the service layer's business."""

    def __init__(
        self,
        rulebooks: RulebookSet,
        directory: SignpostDirectory,
        classifiers: Sequence[Classifier] = (),
        *,
        crisis: CrisisDetector | None = None,
        options: PipelineOptions | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.rulebooks = rulebooks
        self.directory = directory
        self.classifiers = tuple(classifiers)
        self.crisis = crisis
        self.options = options or PipelineOptions()
        self._model_languages = frozenset(lang for c in self.classifiers for lang in _languages(c))
        # Model calls run on threads so one hung call cannot make later posts time out behind it. The
        # composition root passes the process's pool; a pipeline built alone (tests, tools) makes a small one.
        self._executor = executor or (ThreadPoolExecutor(max_workers=4 * len(self.classifiers)) if self.classifiers else None)

    @property
    def max_text_chars(self) -> int:
        return self.options.max_text_chars

    @property
    def model_versions(self) -> tuple[ModelVersion, ...]:
        return tuple(ModelVersion(name=c.name, version=c.version) for c in self.classifiers)

    def check(self, post: Post) -> None:
        """Refuse input the pipeline cannot judge, before any work is done."""
        if is_blank(post.text):
            raise InputError("text is empty")
        length = len(post.text) + len(post.title or "")
        if length > self.max_text_chars:
            raise TextTooLongError(length, self.max_text_chars)

    def with_rulebooks(self, rulebooks: RulebookSet) -> Pipeline:
        """The same models, grammars, options and thread pool over other rulebooks (a draft being tried or replayed)."""
        return Pipeline(rulebooks, self.directory, self.classifiers, crisis=self.crisis, options=self.options, executor=self._executor)

    def moderate(self, post: Post) -> Decision:
        return self.moderate_batch([post])[0]

    def budget_s(self, text: str) -> float | None:
        """The time one post's model calls may take: a base plus a share per thousand characters."""
        if self.options.classifier_timeout_s is None:
            return None
        return self.options.classifier_timeout_s + self.options.classifier_timeout_per_kchar_s * len(text) / 1000

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
            region = country_of(post.locale or self.options.default_locale) or country_of(self.options.default_locale) or ""
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
                    locale=post.locale or self.options.default_locale,
                    fallback_action=self.options.fallback_action,
                    models=tuple(str(m) for m in self.model_versions),
                    risk=risk,
                    language=finding.language.language if finding else None,
                    language_supported=supported[i],
                ),
                self.directory,
            )
            timings[i]["policy"] = (time.perf_counter() - t0) * 1000
            timings[i]["total"] = sum(timings[i].values())
            decision = decision.model_copy(update={"timings_ms": {k: round(v, 3) for k, v in timings[i].items()}})
            decisions.append(decision)
        log.debug("batch moderated", extra={"posts": len(posts), "ms": round((time.perf_counter() - started) * 1000, 3)})
        return decisions

    def _supported(self, finding: CrisisFinding | None) -> bool:
        """Whether the classifiers know the post's language (unknown languages are scored as usual)."""
        language = finding.language.language if finding else None
        return language is None or not self.classifiers or language in self._model_languages

    def _risk(self, finding: CrisisFinding | None, scores: dict[str, float]) -> RiskAssessment:
        """Grammar and model-head signals combined (docs/crisis-risk.md).

        A head counts on its own at its operating point (dev precision >= its target), and beside a
        grammar signal at its lower supporting point; the level heads raise the level the same way.
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
        # Corroboration must come from the text itself: the heads read one pooled vector, so one head
        # agreeing with another is the same reading twice ("Bye for now, speak soon" read as a farewell by
        # the preparation head and the imminent head together was escalated as an emergency).
        corroborated = any(s.source == "grammar" for s in signals)
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
                    assert self._executor is not None  # there is one whenever there are classifiers
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
        """Stop the model threads (the pipeline owns the pool it was given)."""
        if self._executor is not None:
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
