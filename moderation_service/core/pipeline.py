"""The classification core: normalise -> rulebook -> crisis grammar -> classifiers -> policy. No HTTP, no Redis.

The API's sync path and the queue workers call the same ``Pipeline``, so a post gets the same
decision whichever way it arrives. A classifier that fails or overruns its time budget never
reaches the caller as an exception: the decision degrades to the configured safe action.

Time budgets are per post and grow with its length, so one long post cannot make its neighbours
time out; a call past its deadline is told to stop (classifiers that accept a deadline check it
between windows), so it cannot starve the calls behind it. ``classifier_timeout_s=None`` (the CLI's
``classify`` and ``eval``) waits as long as a model needs. Model calls go through one ``RunQueue``
per process and run strictly in arrival order.

``moderate_in_time`` answers by a deadline (Coral's phase timeout, ``X-Moderation-Deadline-Ms``): a
post whose model cannot finish in time is answered from the rules and crisis grammars, marked
``partial``, and the complete decision follows when the model finishes. That model run goes to the
run queue's background lane, which only spare runner time serves; when the runners have none to
give (overload), the run is shed and the answer must be safe without it: a partial "allow" that the
rules or grammars had anything to say about (a reason, any distress level) is held instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

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
from moderation_service.core.decision import DISTRESS_ORDER, Action, Decision, DistressLevel
from moderation_service.core.model_runs import RunQueue, ShedError, runners_for, units
from moderation_service.core.normalise import normalise
from moderation_service.core.options import PipelineOptions
from moderation_service.core.policy import PolicyInput, decide
from moderation_service.core.rulebook.loader import Rulebook
from moderation_service.core.rulebook.matcher import RuleHit
from moderation_service.core.rulebook.registry import RulebookSet
from moderation_service.core.signposting import SignpostDirectory, country_of
from moderation_service.errors import InputError, TextTooLongError

__all__ = [
    "PARTIAL_EXPECTED_LATE",
    "PARTIAL_NOT_FINISHED",
    "PARTIAL_OVERLOADED",
    "PARTIAL_SHED",
    "Answer",
    "ModelVersion",
    "Pipeline",
    "Post",
    "is_blank",
    "safe_without_model",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Post:
    text: str
    title: str | None = None
    community: str | None = None
    locale: str | None = None
    author: AuthorFacts = field(default_factory=AuthorFacts)


PARTIAL_EXPECTED_LATE = "the model could not finish inside the deadline (queue wait plus expected run time)"
PARTIAL_NOT_FINISHED = "the model did not finish inside the deadline"
PARTIAL_OVERLOADED = "the model queue is full"
PARTIAL_SHED = "the model could not finish inside the deadline and its runners have no spare time to finish it later"

_Call = tuple[Classifier, "Future[list[dict[str, float]]]", float | None]
_BACKGROUND_WITHOUT_BUDGET_S = 2.0  # how long a background run may wait when the pipeline sets no model budget


@dataclass(frozen=True)
class Answer:
    """A decision made in time; ``full`` (partial decisions only) completes with the decision the model finished."""

    decision: Decision
    full: Future[Decision] | None = None  # fails with ShedError when the background run was shed unstarted
    shed: bool = False  # the model run was shed before answering (the answer is safe without it)


@dataclass
class _Prepared:
    """One post after the fast stages, waiting for its models."""

    post: Post
    book: Rulebook
    hits: list[RuleHit]
    finding: CrisisFinding | None
    supported: bool
    text: str | None  # what the models read; None when they do not know the post's language
    timings: dict[str, float]
    submitted: float = 0.0


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
        runs: RunQueue | None = None,
    ) -> None:
        self.rulebooks = rulebooks
        self.directory = directory
        self.classifiers = tuple(classifiers)
        self.crisis = crisis
        self.options = options or PipelineOptions()
        self._model_languages = frozenset(lang for c in self.classifiers for lang in _languages(c))
        # The composition root passes the process's run queue; a pipeline built alone (tests, tools) makes its own.
        self.runs = runs or RunQueue(runners_for(os.cpu_count() or 1), self.options.model_queue_limit)

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
        return Pipeline(rulebooks, self.directory, self.classifiers, crisis=self.crisis, options=self.options, runs=self.runs)

    def moderate(self, post: Post) -> Decision:
        return self.moderate_batch([post])[0]

    def budget_s(self, text: str) -> float | None:
        """The time one post's model calls may take: a base plus a share per thousand characters."""
        if self.options.classifier_timeout_s is None:
            return None
        return self.options.classifier_timeout_s + self.options.classifier_timeout_per_kchar_s * len(text) / 1000

    def overloaded(self) -> bool:
        """Whether the model backlog is at its limit (the API sheds requests without a deadline: 503)."""
        return bool(self.classifiers) and self.runs.overloaded()

    def moderate_batch(self, posts: Sequence[Post]) -> list[Decision]:
        """Decisions in input order, each waiting for its models up to its own budget."""
        prepared = self._prepare(posts)
        calls = [self._submit(prep) for prep in prepared]
        try:
            return [self._decide(prep, _done(self._collect(row, prep, None))) for prep, row in zip(prepared, calls, strict=True)]
        finally:
            _cancel(calls)  # anything still waiting for a model runner is no longer wanted

    async def moderate_batch_async(self, posts: Sequence[Post]) -> list[Decision]:
        """``moderate_batch`` for an event loop: the loop awaits the runners' futures, no thread waits for them."""
        prepared = self._prepare(posts)
        calls = [self._submit(prep) for prep in prepared]
        try:
            await _settle(calls, None)
            return [self._decide(prep, _done(self._collect(row, prep, None))) for prep, row in zip(prepared, calls, strict=True)]
        finally:
            _cancel(calls)

    async def moderate_in_time_async(self, posts: Sequence[Post], answer_by: float) -> list[Answer]:
        """``moderate_in_time`` for an event loop: the loop awaits the runners' futures until ``answer_by``."""
        plans = self._plan(posts, answer_by)
        await _settle([row for _, partial, row in plans if partial is None], answer_by)
        return self._answer(plans, answer_by)

    def moderate_in_time(self, posts: Sequence[Post], answer_by: float) -> list[Answer]:
        """Answers by ``answer_by`` (``time.monotonic()``): a post whose model cannot finish in time gets its
        rules-and-crisis-grammar decision, marked partial, and ``Answer.full`` completes when the model does.

        Whether the model can make it is known before waiting (queue wait + expected run time, from the
        moving estimate); a post that looked in time but is not done by ``answer_by`` is answered partial too.
        """
        return self._answer(self._plan(posts, answer_by), answer_by)

    def _plan(self, posts: Sequence[Post], answer_by: float) -> list[tuple[_Prepared, str | None, list[_Call]]]:
        """The fast stages, then each post's model calls: queued to answer with when they can finish by ``answer_by``,
        else to the background lane when spare runner time can finish them, else none (shed)."""
        plans: list[tuple[_Prepared, str | None, list[_Call]]] = []
        for prep in self._prepare(posts):
            if prep.text is None or not self.classifiers:
                plans.append((prep, None, []))
                continue
            overloaded = self.runs.overloaded()
            if not overloaded and time.monotonic() + self.runs.expected_s(prep.text) <= answer_by:
                plans.append((prep, None, self._submit(prep)))
                continue
            # Useful only if it can still run to the end inside the post's model budget.
            budget = self.budget_s(prep.text) or _BACKGROUND_WITHOUT_BUDGET_S
            start_by = time.monotonic() + max(0.0, budget - units(prep.text) * (self.runs.unit_s or 0.0))
            if self.runs.admit_background(units(prep.text) * len(self.classifiers), start_by):
                plans.append((prep, PARTIAL_EXPECTED_LATE, self._submit(prep, start_by)))
            else:  # no run: the backlog is bounded, and background runs take only spare runner time
                plans.append((prep, PARTIAL_OVERLOADED if overloaded else PARTIAL_SHED, []))
        return plans

    def _answer(self, plans: list[tuple[_Prepared, str | None, list[_Call]]], answer_by: float) -> list[Answer]:
        answers = []
        for prep, partial, row in plans:
            scored = self._collect(row, prep, answer_by) if partial is None else None
            if scored is not None:
                answers.append(Answer(self._decide(prep, scored)))
            elif partial is not None and not row:  # the model will never see this post
                answers.append(Answer(safe_without_model(self._decide(prep, ({}, []), partial=partial)), shed=True))
            else:
                reason = partial or PARTIAL_NOT_FINISHED
                answers.append(Answer(self._decide(prep, ({}, []), partial=reason), self._finish_later(prep, row)))
        return answers

    def _prepare(self, posts: Sequence[Post]) -> list[_Prepared]:
        """Check every post, then the fast stages: normalise, rules, crisis grammar, language."""
        for post in posts:
            self.check(post)
        prepared = []
        for post in posts:
            book = self.rulebooks.get(post.community)
            t0 = time.perf_counter()
            fields = {"body": normalise(post.text), **({"title": normalise(post.title)} if post.title else {})}
            t1 = time.perf_counter()
            region = country_of(post.locale or self.options.default_locale) or country_of(self.options.default_locale) or ""
            hits = book.matcher.match(fields, post.author, region)
            t2 = time.perf_counter()
            finding = self.crisis.detect(fields, post.locale) if self.crisis else None
            timings = {"normalise": (t1 - t0) * 1000, "rules": (t2 - t1) * 1000, "crisis": (time.perf_counter() - t2) * 1000}
            supported = self._supported(finding)
            text = _classifier_text(post) if supported else None
            prepared.append(_Prepared(post, book, hits, finding, supported, text, timings))
        return prepared

    def _decide(self, prep: _Prepared, scored: tuple[dict[str, float], list[str]], partial: str | None = None) -> Decision:
        t0 = time.perf_counter()
        scores, failed = scored
        finding = prep.finding
        decision = decide(
            PolicyInput(
                rulebook=prep.book,
                hits=prep.hits,
                scores=scores,
                degraded=failed,
                locale=prep.post.locale or self.options.default_locale,
                fallback_action=self.options.fallback_action,
                models=() if partial else tuple(str(m) for m in self.model_versions),
                risk=self._risk(finding, scores),
                language=finding.language.language if finding else None,
                language_supported=prep.supported,
            ),
            self.directory,
        )
        timings = dict(prep.timings)
        timings["policy"] = (time.perf_counter() - t0) * 1000
        timings["total"] = sum(timings.values())
        update: dict[str, object] = {"timings_ms": {k: round(v, 3) for k, v in timings.items()}}
        if partial:
            update.update(partial=True, partial_reason=partial)
        return decision.model_copy(update=update)

    def _finish_later(self, prep: _Prepared, row: list[_Call]) -> Future[Decision]:
        """The complete decision once every model call of the post has ended (scored, failed or timed out)."""
        full: Future[Decision] = Future()
        remaining = [len(row)]
        lock = threading.Lock()

        def one_done(_: Future[Any]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            shed = next((f.exception() for _, f, _ in row if not f.cancelled() and isinstance(f.exception(), ShedError)), None)
            if shed is not None:  # never run: not a model failure (which would read as a degraded decision)
                full.set_exception(shed)
                return
            try:
                full.set_result(self._decide(prep, _done(self._collect(row, prep, None))))
            except Exception as exc:  # never lost silently: the caller sees the exception
                full.set_exception(exc)

        for _, future, _ in row:
            future.add_done_callback(one_done)
        return full

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

    def _submit(self, prep: _Prepared, start_by: float | None = None) -> list[_Call]:
        """Queue the post's model calls (none for a language the models do not know), each with its deadline;
        ``start_by``: in the background lane, shed unless a runner takes them by then."""
        if prep.text is None or not self.classifiers:
            return []
        budget = self.budget_s(prep.text)
        deadline = None if budget is None else time.monotonic() + budget
        work = units(prep.text)
        prep.submitted = time.perf_counter()
        return [
            (c, self.runs.submit(work, functools.partial(_predict_one, c, prep.text, deadline), start_by=start_by), deadline)
            for c in self.classifiers
        ]

    def _collect(self, row: list[_Call], prep: _Prepared, wait_until: float | None) -> tuple[dict[str, float], list[str]] | None:
        """Merged scores (max over classifiers) and the names of classifiers that failed or ran out of time.

        With ``wait_until``: None if a call is still running then (and not yet past its own deadline).
        """
        merged: dict[str, float] = {}
        failed: list[str] = []
        for classifier, future, deadline in row:
            limits = [t for t in (deadline, wait_until) if t is not None]
            try:
                result = future.result(timeout=max(0.0, min(limits) - time.monotonic()) if limits else None)
                # The wait as the post saw it (queueing and thread hand-over included), so the stages add up to the wall time.
                prep.timings[f"model:{classifier.name}"] = (time.perf_counter() - prep.submitted) * 1000
                _check_scores(result, 1)
            except FutureTimeout:
                if wait_until is not None and (deadline is None or wait_until < deadline):
                    return None  # the caller answers without it; the call goes on
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
        return merged, failed

    def close(self) -> None:
        """Stop the model runners: calls still waiting are cancelled, running ones finish (the pipeline owns its queue)."""
        self.runs.close()


def safe_without_model(decision: Decision) -> Decision:
    """A partial decision the model will never check: "allow" only when the rules and grammars saw nothing at all.

    Anything they noticed (a rule's reason, a crisis signal of any level) might be what the model would
    have raised, so a person decides: held, not published.
    """
    if decision.action is not Action.allow or not (decision.reasons or decision.distress_level is not DistressLevel.none):
        return decision
    return decision.model_copy(update={"action": Action.hold, "publish": False})


def _done(scored: tuple[dict[str, float], list[str]] | None) -> tuple[dict[str, float], list[str]]:
    """Without ``wait_until`` a collection always ends (each call has a deadline or runs to the end)."""
    assert scored is not None
    return scored


async def _settle(calls: list[list[_Call]], until: float | None) -> None:
    """Wait, without blocking the loop, until every call has ended, ``until`` passes, or (with no ``until``) the
    last call deadline passes; ``_collect`` then reads the results without waiting."""
    pending = [future for row in calls for _, future, _ in row if not future.done()]
    if not pending:
        return
    deadlines = [deadline for row in calls for _, _, deadline in row]
    limit = until
    if None not in deadlines:
        last = max(d for d in deadlines if d is not None)
        limit = last if limit is None else min(limit, last)
    # wrap_future: the runner completes the concurrent future, which wakes this loop via call_soon_threadsafe.
    timeout = None if limit is None else max(0.0, limit - time.monotonic())
    await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=timeout)


def _cancel(calls: list[list[_Call]]) -> None:
    for row in calls:
        for _, future, _ in row:
            future.cancel()


def _predict_one(classifier: Classifier, text: str, deadline: float | None) -> list[dict[str, float]]:
    """One post through one classifier; a classifier that accepts a deadline stops once it passes."""
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError("deadline passed before the model started")
    if getattr(classifier, "accepts_deadline", False):
        return classifier.predict([text], deadline=deadline)  # type: ignore[call-arg]
    return classifier.predict([text])


def _check_scores(result: object, expected: int) -> None:
    if not isinstance(result, list) or len(result) != expected:
        raise ValueError("classifier returned the wrong number of score sets")
    for scores in result:
        if not isinstance(scores, dict) or not all(0.0 <= float(v) <= 1.0 for v in scores.values()):
            raise ValueError("classifier returned a score outside [0, 1]")
