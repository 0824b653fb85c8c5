"""Batch moderation of a JSON-lines file: same Decision as the API, in input order."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console

from moderation_service.api.app import build_pipeline
from moderation_service.config import Settings
from moderation_service.errors import ModerationError
from moderation_service.pipeline import Pipeline, Post
from moderation_service.rulebook.loader import load_rulebook
from moderation_service.rulebook.registry import RulebookSet

__all__ = ["classify_lines"]


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | int
    text: str
    title: str | None = None
    locale: str | None = None
    community: str | None = None


def _pipeline(settings: Settings, rulebook: str | None) -> tuple[Pipeline, str | None]:
    """The pipeline, and the community name to use for every line (None: each line's own)."""
    pipeline = build_pipeline(settings)
    if rulebook and Path(rulebook).is_file():
        path = Path(rulebook)
        numbers = pipeline.directory.helpline_numbers()
        name = load_rulebook(path, numbers, settings.rules_dir).name
        books = RulebookSet(path.parent, default=name, helpline_numbers=numbers, files=[path], rules_dir=settings.rules_dir)
        books.reload()
        pipeline.rulebooks = books
        return pipeline, name
    if rulebook:
        pipeline.rulebooks.get(rulebook)  # an unknown name fails now, not on line 1
    return pipeline, rulebook


def _why(exc: ValidationError) -> str:
    """The first problem of a line, naming the field: 'field 'text': Field required', or 'not valid JSON'."""
    first = exc.errors(include_input=False, include_url=False)[0]
    if first["type"] == "json_invalid":
        return "not valid JSON"
    field = ".".join(str(part) for part in first["loc"])
    return f"field {field!r}: {first['msg']}" if field else str(first["msg"])


class _Progress:
    """A plain line on stderr at each tenth of the input: readable in a terminal, a log file or CI alike."""

    def __init__(self, err: Console, total: int) -> None:
        self.err, self.total, self.started, self.next_step = err, total, time.monotonic(), 1

    def update(self, done: int) -> None:
        if self.total and done * 10 >= self.next_step * self.total and done < self.total:
            self.err.print(f"  {done}/{self.total} lines ({done * 100 // self.total}%)", highlight=False)
            self.next_step = done * 10 // self.total + 1


def classify_lines(settings: Settings, input: Path, output: Path | None, rulebook: str | None, batch_size: int, err: Console) -> int:
    """Write one decision per valid line; return how many lines were malformed."""
    pipeline, community = _pipeline(settings, rulebook)
    lines = input.read_text(encoding="utf-8", errors="replace").splitlines()
    sink: IO[str] = output.open("w", encoding="utf-8") if output else sys.stdout
    bad = 0
    pending: list[tuple[str | int, Post]] = []
    actions: Counter[str] = Counter()
    progress = _Progress(err, len(lines))
    err.print(f"classifying {len(lines)} line(s) from {input}", markup=False, highlight=False)

    def flush(done: int) -> None:
        decisions = pipeline.moderate_batch([post for _, post in pending])
        for (line_id, _), decision in zip(pending, decisions, strict=True):
            sink.write(json.dumps({"id": line_id, **decision.model_dump(mode="json")}, ensure_ascii=False) + "\n")
            actions[decision.action.value] += 1
        pending.clear()
        progress.update(done)

    try:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                item = _Line.model_validate_json(raw)
                post = Post(text=item.text, title=item.title, locale=item.locale, community=community or item.community)
                pipeline.check(post)
                pipeline.rulebooks.get(post.community)
            except ValidationError as exc:
                bad += 1
                err.print(f"{input}:{number}: skipped: {_why(exc)}", markup=False, highlight=False)
                continue
            except ModerationError as exc:  # refused by the pipeline, or a line naming an unknown community
                bad += 1
                err.print(f"{input}:{number}: skipped: {exc}", markup=False, highlight=False)
                continue
            pending.append((item.id, post))
            if len(pending) >= batch_size:
                flush(number)
        if pending:
            flush(len(lines))
    finally:
        if output:
            sink.close()
    seconds = time.monotonic() - progress.started
    done = sum(actions.values())
    tally = ", ".join(f"{actions[a]} {a}" for a in ("allow", "hold", "escalate") if actions[a]) or "nothing"
    where = f"written to {output}" if output else "written to stdout"
    err.print(
        f"done: {done} decision(s) in {seconds:.1f} s ({done / max(seconds, 1e-9):.0f}/s): {tally}; {bad} line(s) skipped; {where}",
        markup=False,
        highlight=False,
    )
    return bad
