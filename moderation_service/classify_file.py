"""Batch moderation of a JSON-lines file: same Decision as the API, in input order, through the service layer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

from pydantic import ConfigDict, ValidationError
from rich.console import Console
from rich.progress import Progress

from moderation_service.bootstrap import build_services
from moderation_service.config import Settings
from moderation_service.errors import InputError, ModerationError
from moderation_service.service import PostIn, Services
from moderation_service.service.moderate import judge

__all__ = ["classify_lines"]


class _Line(PostIn):
    """A line is a ``PostIn`` with an id; other keys are ignored (files come from many exports)."""

    model_config = ConfigDict(extra="ignore")

    id: str | int


def _services(settings: Settings, rulebook: str | None) -> tuple[Services, str | None]:
    """The parts, and the community name to use for every line (None: each line's own)."""
    if rulebook and Path(rulebook).is_file():
        from moderation_service.bootstrap import build_pipeline

        pipeline = build_pipeline(settings, rule_file=Path(rulebook))
        return build_services(settings, pipeline=pipeline), pipeline.rulebooks.default
    services = build_services(settings)
    if rulebook:
        services.pipeline.rulebooks.get(rulebook)  # an unknown name fails now, not on line 1
    return services, rulebook


def classify_lines(settings: Settings, input: Path, output: Path | None, rulebook: str | None, batch_size: int, err: Console) -> int:
    """Write one decision per valid line; return how many lines were malformed."""
    services, community = _services(settings, rulebook)
    lines = input.read_text(encoding="utf-8", errors="replace").splitlines()
    sink: IO[str] = output.open("w", encoding="utf-8") if output else sys.stdout
    bad = 0
    pending: list[_Line] = []

    def flush() -> None:
        for item, decision in zip(pending, judge(services, pending), strict=True):
            sink.write(json.dumps({"id": item.id, **decision.model_dump(mode="json")}, ensure_ascii=False) + "\n")
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
                    if community:
                        item = item.model_copy(update={"community": community})
                    services.pipeline.check(item.to_post())
                    services.pipeline.rulebooks.get(item.community)
                except (ValidationError, InputError) as exc:
                    bad += 1
                    reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                    err.print(f"{input}:{number}: skipped: {reason}", markup=False, highlight=False)
                    continue
                except ModerationError as exc:  # e.g. a line naming an unknown community
                    bad += 1
                    err.print(f"{input}:{number}: skipped: {exc}", markup=False, highlight=False)
                    continue
                pending.append(item)
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
