"""Batch moderation of a JSON-lines file: same Decision as the API, in input order, through the service layer;
and a draft rulebook replayed over such a file (``rules replay``)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

from pydantic import ConfigDict, ValidationError
from rich.console import Console

from moderation_service.bootstrap import build_crisis, build_pipeline, build_services
from moderation_service.config import Settings
from moderation_service.errors import ModerationError
from moderation_service.service import PostIn, Services
from moderation_service.service.drafts import draft_from_text
from moderation_service.service.moderate import judge
from moderation_service.service.replay import ReplayReport, replay

__all__ = ["classify_lines", "read_corpus", "replay_file"]


class _Line(PostIn):
    """A line is a ``PostIn`` with an id; other keys are ignored (files come from many exports)."""

    model_config = ConfigDict(extra="ignore")

    id: str | int


def _services(settings: Settings, rulebook: str | None) -> tuple[Services, str | None]:
    """The parts, and the community name to use for every line (None: each line's own)."""
    # Grammars compiled now: a background warm-up still running in native code when a short run exits aborts the process.
    crisis = build_crisis(settings.rules.rules_dir, warm_in_background=False)
    rule_file = Path(rulebook) if rulebook and Path(rulebook).is_file() else None
    pipeline = build_pipeline(settings, rule_file=rule_file, crisis=crisis)
    services = build_services(settings, pipeline=pipeline)
    if rule_file is not None:
        return services, pipeline.rulebooks.default
    if rulebook:
        services.pipeline.rulebooks.get(rulebook)  # an unknown name fails now, not on line 1
    return services, rulebook


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
    services, community = _services(settings, rulebook)
    lines = input.read_text(encoding="utf-8", errors="replace").splitlines()
    sink: IO[str] = output.open("w", encoding="utf-8") if output else sys.stdout
    bad = 0
    pending: list[_Line] = []
    actions: Counter[str] = Counter()
    progress = _Progress(err, len(lines))
    err.print(f"classifying {len(lines)} line(s) from {input}", markup=False, highlight=False)

    def flush(done: int) -> None:
        for item, decision in zip(pending, judge(services, pending), strict=True):
            sink.write(json.dumps({"id": item.id, **decision.model_dump(mode="json")}, ensure_ascii=False) + "\n")
            actions[decision.action.value] += 1
        pending.clear()
        progress.update(done)

    try:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                item = _Line.model_validate_json(raw)
                if community:
                    item = item.model_copy(update={"community": community})
                services.pipeline.check(item.to_post())
                services.pipeline.rulebooks.get(item.community)
            except ValidationError as exc:
                bad += 1
                err.print(f"{input}:{number}: skipped: {_why(exc)}", markup=False, highlight=False)
                continue
            except ModerationError as exc:  # refused by the pipeline, or a line naming an unknown community
                bad += 1
                err.print(f"{input}:{number}: skipped: {exc}", markup=False, highlight=False)
                continue
            pending.append(item)
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


def read_corpus(services: Services, input: Path, err: Console) -> tuple[list[tuple[str, PostIn]], int]:
    """Valid lines as (id, post) for a rule replay; malformed lines reported by file and line, and counted."""
    posts: list[tuple[str, PostIn]] = []
    bad = 0
    for number, raw in enumerate(input.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = _Line.model_validate_json(raw)
            services.pipeline.check(item.to_post())
        except ValidationError as exc:
            bad += 1
            err.print(f"{input}:{number}: skipped: {_why(exc)}", markup=False, highlight=False)
            continue
        except ModerationError as exc:
            bad += 1
            err.print(f"{input}:{number}: skipped: {exc}", markup=False, highlight=False)
            continue
        posts.append((str(item.id), PostIn(**item.model_dump(exclude={"id"}))))
    return posts, bad


def replay_file(settings: Settings, draft_path: Path, corpus: Path, err: Console) -> tuple[ReplayReport, int]:
    """The draft rule file replayed over a JSON-lines corpus against the live rulebooks; (report, lines skipped)."""
    crisis = build_crisis(settings.rules.rules_dir, warm_in_background=False)
    services = build_services(settings, pipeline=build_pipeline(settings, crisis=crisis))
    # Read as if it were in the live rules folder (as the console does), so lexicons and extends resolve the same.
    draft = draft_from_text(services, draft_path.read_text(encoding="utf-8"), str(draft_path))
    posts, bad = read_corpus(services, corpus, err)
    return replay(services, draft, posts), bad
