"""Console tools for rule changes: the playground (try posts on a live or draft rulebook, run the draft's
tests), replay of a draft over stored posts, publish, and calibration from moderators' feedback.

Posts typed here are judged but never stored or counted in the metrics, and travel only in POST
bodies. Publishing needs a key with the ``admin`` scope, as the reload route does.
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from moderation_service.console.pages import guard, page
from moderation_service.console.session import Access, Moderator
from moderation_service.errors import ModerationError, RulebookError
from moderation_service.service import PostIn, Services
from moderation_service.service.calibration import calibrate, write_feedback_csv
from moderation_service.service.drafts import (
    Draft,
    RuleTest,
    TestFailure,
    draft_from_text,
    judge_draft,
    publish_draft,
    rulebook_source,
    test_draft,
)
from moderation_service.service.feedback import feedback_records
from moderation_service.service.moderate import judge
from moderation_service.service.replay import replay, stored_posts
from moderation_service.service.review import pieces
from moderation_service.service.rulebooks import rulebooks

__all__ = ["add_tools"]

DRAFT = "__draft__"
MAX_POSTS = 50


def _posts(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()][:MAX_POSTS]


def _svg_points(curve: list[tuple[float, float]]) -> str:
    return " ".join(f"{40 + r * 300:.1f},{320 - p * 300:.1f}" for r, p in curve)


def add_tools(router: APIRouter, access: Access) -> None:
    def live_names(request: Request) -> list[str]:
        return [b.name for b in rulebooks(access.services_of(request))[1]]

    @router.get("/playground")
    def playground_form(request: Request) -> Response:
        moderator = guard(access, request)
        if not isinstance(moderator, Moderator):
            return moderator
        services = access.services_of(request)
        draft = rulebook_source(services, None)
        return page(
            request, "playground.html", moderator, names=live_names(request), chosen=DRAFT, draft=draft, posts="", title="Rule playground"
        )

    def draft_tests(services: Services, draft: str) -> tuple[Draft, list[tuple[int, RuleTest, TestFailure | None]]]:
        """The draft and its tests, failures first."""
        built = draft_from_text(services, draft)
        _, failures = test_draft(built)
        failed = {f.index: f for f in failures}
        rows = [(i, t, failed.get(i)) for i, t in enumerate(built.book.tests)]
        return built, sorted(rows, key=lambda row: (row[2] is None, row[0]))

    @router.post("/playground/tests")
    def playground_tests(request: Request, csrf: Annotated[str, Form()] = "", draft: Annotated[str, Form()] = "") -> Response:
        """The draft's tests as an HTML fragment, for the page's script to swap in as the draft is edited."""
        moderator = guard(access, request, csrf, post=True)
        if not isinstance(moderator, Moderator):
            return Response(status_code=403)
        try:
            _, tests = draft_tests(access.services_of(request), draft)
        except RulebookError as exc:
            return page(request, "_draft_tests.html", moderator, tests=None, problems=[str(p) for p in exc.problems])
        return page(request, "_draft_tests.html", moderator, tests=tests, problems=[])

    @router.post("/playground")
    def playground(
        request: Request,
        csrf: Annotated[str, Form()] = "",
        posts: Annotated[str, Form()] = "",
        rulebook: Annotated[str, Form()] = DRAFT,
        draft: Annotated[str, Form()] = "",
    ) -> Response:
        moderator = guard(access, request, csrf, post=True)
        if not isinstance(moderator, Moderator):
            return moderator
        services = access.services_of(request)
        texts, problems, tests, results = _posts(posts), [], None, []
        try:
            items = [PostIn(text=t, community=None if rulebook == DRAFT else rulebook) for t in texts]
            if rulebook == DRAFT:
                built, tests = draft_tests(services, draft)
                decisions = judge_draft(built, items) if items else []
            else:
                decisions = judge(services, items, count=False) if items else []
            for text, decision in zip(texts, decisions, strict=True):
                spans = [(r.span.start, r.span.end, r.category) for r in decision.reasons if r.span and r.span.field.value == "body"]
                results.append((decision, pieces(text, spans)))
        except RulebookError as exc:
            problems = [str(p) for p in exc.problems]
        except (ModerationError, ValueError) as exc:
            problems = [str(exc).splitlines()[0]]
        return page(
            request,
            "playground.html",
            moderator,
            names=live_names(request),
            chosen=rulebook,
            draft=draft,
            posts=posts,
            problems=problems,
            tests=tests,
            results=results,
            title="Rule playground",
        )

    @router.get("/replay")
    def replay_form(request: Request, published: str | None = None) -> Response:
        moderator = guard(access, request)
        if not isinstance(moderator, Moderator):
            return moderator
        draft = rulebook_source(access.services_of(request), None)
        return page(request, "replay.html", moderator, draft=draft, published=published, title="Replay a rule change")

    @router.post("/replay")
    def replay_run(request: Request, csrf: Annotated[str, Form()] = "", draft: Annotated[str, Form()] = "") -> Response:
        moderator = guard(access, request, csrf, post=True)
        if not isinstance(moderator, Moderator):
            return moderator
        services = access.services_of(request)
        try:
            built = draft_from_text(services, draft)
        except RulebookError as exc:
            return page(
                request, "replay.html", moderator, 422, draft=draft, problems=[str(p) for p in exc.problems], title="Replay a rule change"
            )
        report = replay(services, built, stored_posts(services, moderator.scope))
        return page(request, "replay.html", moderator, draft=draft, report=report, title="Replay a rule change")

    @router.post("/replay/publish")
    def publish(request: Request, csrf: Annotated[str, Form()] = "", draft: Annotated[str, Form()] = "") -> Response:
        moderator = guard(access, request, csrf, post=True)
        if not isinstance(moderator, Moderator):
            return moderator
        if "admin" not in moderator.key.scopes:
            return page(
                request, "refused.html", moderator, 403, message="Publishing needs a key with the admin scope.", title="Not allowed"
            )
        services = access.services_of(request)
        try:
            built = draft_from_text(services, draft)
            versions = publish_draft(services, built)
        except RulebookError as exc:
            return page(
                request, "replay.html", moderator, 422, draft=draft, problems=[str(p) for p in exc.problems], title="Replay a rule change"
            )
        name = built.book.name
        return RedirectResponse(f"/console/replay?published={name}%20{versions.get(name, '')}", status_code=303)

    @router.get("/calibration")
    def calibration(request: Request, precision: float = 0.9) -> Response:
        moderator = guard(access, request)
        if not isinstance(moderator, Moderator):
            return moderator
        target = min(max(precision, 0.5), 0.99)
        rows = calibrate(access.services_of(request), moderator.scope, target)
        curves = {row.label: _svg_points(row.curve) for row in rows}
        return page(request, "calibration.html", moderator, rows=rows, curves=curves, target=target, title="Calibration")

    @router.get("/calibration/feedback.csv")
    def feedback_csv(request: Request) -> Response:
        moderator = guard(access, request)
        if not isinstance(moderator, Moderator):
            return moderator
        sink = io.StringIO()
        write_feedback_csv(feedback_records(access.services_of(request), moderator.scope.tenant), sink)
        headers = {"Content-Disposition": 'attachment; filename="feedback.csv"', "Cache-Control": "no-store"}
        return Response(sink.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
