"""A rulebook not yet live: loaded from a file or from text pasted in the console, tried on posts, tested, published.

A draft is checked exactly as a live rulebook is (same loader, same helpline numbers, ``extends`` from
the live rules folder) and judged by the live models and grammars through ``Pipeline.with_rulebooks``,
so what a moderator sees for a draft is what the service would do once it is published.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from moderation_service.core.decision import Decision
from moderation_service.core.pipeline import Pipeline
from moderation_service.core.post import PostIn
from moderation_service.core.rulebook import Rulebook, RulebookSet, load_rulebook
from moderation_service.core.rulebook.schema import RuleTest
from moderation_service.core.rulebook.testing import TestFailure, run_rule_tests
from moderation_service.errors import Problem, RulebookError, UnknownRulebookError
from moderation_service.service.parts import Services
from moderation_service.service.rulebooks import reload_rulebooks

__all__ = [
    "Draft",
    "RuleTest",
    "TestFailure",
    "draft_from_file",
    "draft_from_text",
    "judge_draft",
    "publish_draft",
    "rulebook_source",
    "test_draft",
]

DRAFT_NAME = "draft.yaml"
MAX_DRAFT_BYTES = 512 * 1024


@dataclass(frozen=True)
class Draft:
    book: Rulebook
    text: str
    pipeline: Pipeline


def draft_from_file(services: Services, path: Path, text: str | None = None) -> Draft:
    """The rule file at ``path`` as a draft; RulebookError naming file and line when it is invalid."""
    live = services.pipeline
    numbers = live.directory.helpline_numbers()
    name = load_rulebook(path, numbers, live.rulebooks.rules_dir).name
    books = RulebookSet(path.parent, default=name, helpline_numbers=numbers, files=[path], rules_dir=live.rulebooks.rules_dir)
    books.reload()
    return Draft(books.get(None), text if text is not None else path.read_text(encoding="utf-8"), live.with_rulebooks(books))


def draft_from_text(services: Services, text: str, name: str = DRAFT_NAME) -> Draft:
    """Pasted YAML (or a draft file's text) as a draft; problems name ``name`` and the line, never a temporary path.

    The text is checked from a hidden file in the live rules folder (not ``*.yaml``, so no reload
    ever sees it), so ``lexicons/...`` and ``extends`` resolve as they will once it is published.
    """
    if len(text.encode()) > MAX_DRAFT_BYTES:
        raise RulebookError([Problem(name, None, None, f"a draft may be at most {MAX_DRAFT_BYTES // 1024} KiB")])
    folder = services.pipeline.rulebooks.rules_dir
    fd, temp = tempfile.mkstemp(prefix=".draft-", suffix=".yaml.draft", dir=folder)
    path = Path(temp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return draft_from_file(services, path, text)
    except RulebookError as exc:
        raise RulebookError([_renamed(p, (str(path.resolve()), str(path)), name) for p in exc.problems]) from None
    finally:
        path.unlink(missing_ok=True)


def _renamed(problem: Problem, temps: tuple[str, ...], name: str) -> Problem:
    file, message = problem.file, problem.message
    for temp in temps:
        file, message = file.replace(temp, name), message.replace(temp, name)
    return Problem(file, problem.line, problem.rule_id, message)


def judge_draft(draft: Draft, posts: Sequence[PostIn]) -> list[Decision]:
    """Decisions under the draft for each post (its community ignored); not counted in the metrics."""
    return draft.pipeline.moderate_batch([post.model_copy(update={"community": None}).to_post() for post in posts])


def test_draft(draft: Draft) -> tuple[int, list[TestFailure]]:
    """The draft's own ``tests:`` through its rules and the live crisis grammars: (run, failures)."""
    pipeline = draft.pipeline
    return run_rule_tests(draft.book, pipeline.directory, pipeline.options.default_locale, pipeline.crisis)


def rulebook_source(services: Services, name: str | None) -> str:
    """The YAML of a live rulebook, to start a draft from."""
    return services.pipeline.rulebooks.get(name).path.read_text(encoding="utf-8")


def publish_draft(services: Services, draft: Draft) -> dict[str, str]:
    """Write the draft over its live rulebook's file (or a new file in the rules folder) and reload.

    An invalid result is refused by the reload and the previous file is put back, so the last good
    rulebooks stay live. Other processes pick the change up through the rulebook reload.
    """
    books = services.pipeline.rulebooks
    try:
        target = books.get(draft.book.name).path
    except UnknownRulebookError:
        target = books.folder / f"{draft.book.name}.yaml"
    previous = target.read_text(encoding="utf-8") if target.exists() else None
    _write(target, draft.text)
    try:
        return reload_rulebooks(services).reloaded
    except RulebookError:
        if previous is None:
            target.unlink()
        else:
            _write(target, previous)
        raise


def _write(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
