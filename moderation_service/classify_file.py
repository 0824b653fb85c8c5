"""Batch moderation of a JSON-lines file: same Decision as the API, in input order."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console
from rich.progress import Progress

from moderation_service.api.app import build_pipeline
from moderation_service.config import Settings
from moderation_service.errors import InputError, ModerationError
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
        name = load_rulebook(path, numbers).name
        books = RulebookSet(path.parent, default=name, helpline_numbers=numbers, files=[path])
        books.reload()
        pipeline.rulebooks = books
        return pipeline, name
    if rulebook:
        pipeline.rulebooks.get(rulebook)  # an unknown name fails now, not on line 1
    return pipeline, rulebook


def classify_lines(settings: Settings, input: Path, output: Path | None, rulebook: str | None, batch_size: int, err: Console) -> int:
    """Write one decision per valid line; return how many lines were malformed."""
    pipeline, community = _pipeline(settings, rulebook)
    lines = input.read_text(encoding="utf-8", errors="replace").splitlines()
    sink: IO[str] = output.open("w", encoding="utf-8") if output else sys.stdout
    bad = 0
    pending: list[tuple[str | int, Post]] = []

    def flush() -> None:
        decisions = pipeline.moderate_batch([post for _, post in pending])
        for (line_id, _), decision in zip(pending, decisions, strict=True):
            sink.write(json.dumps({"id": line_id, **decision.model_dump(mode="json")}, ensure_ascii=False) + "\n")
        pending.clear()

    try:
        with Progress(console=err, transient=True, disable=len(lines) < 200) as progress:
            task = progress.add_task("classifying", total=len(lines))
            for number, raw in enumerate(lines, start=1):
                progress.advance(task)
                if not raw.strip():
                    continue
                try:
                    item = _Line.model_validate_json(raw)
                    post = Post(text=item.text, title=item.title, locale=item.locale, community=community or item.community)
                    pipeline.check(post)
                    pipeline.rulebooks.get(post.community)
                except (ValidationError, InputError) as exc:
                    bad += 1
                    reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                    err.print(f"{input}:{number}: skipped: {reason}", markup=False, highlight=False)
                    continue
                except ModerationError as exc:  # e.g. a line naming an unknown community
                    bad += 1
                    err.print(f"{input}:{number}: skipped: {exc}", markup=False, highlight=False)
                    continue
                pending.append((item.id, post))
                if len(pending) >= batch_size:
                    flush()
            if pending:
                flush()
    finally:
        if output:
            sink.close()
    if bad:
        err.print(f"{bad} line(s) skipped")
    return bad
