"""The one command-line entry point: ``moderation-service serve | rules | classify | keys | ...``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from moderation_service.config import Settings
from moderation_service.errors import ConfigError, ModerationError, RulebookError
from moderation_service.keys import SCOPES, generate_key

__all__ = ["app", "main"]

app = typer.Typer(help="Content moderation and wellbeing safety for peer-support communities.", no_args_is_help=True)
rules_app = typer.Typer(help="Check, test and publish rule files.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(keys_app, name="keys")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP API. With no keys configured, a development key is created and printed once."""
    import uvicorn

    settings = Settings()
    if not settings.api_keys and settings.api_keys_file is None:
        token, key = generate_key(list(SCOPES))
        os.environ["MODERATION_API_KEYS"] = key.line()
        err.print(f"[bold]No API keys configured; development key for this run (all scopes):[/bold]\n  {token}")
        err.print(
            f"  try: curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
            f'-d \'{{"text": "hello"}}\' http://{host}:{port}/v1/moderate'
        )
    uvicorn.run("moderation_service.api.app:create_app", factory=True, host=host, port=port, workers=workers)


def _directory(settings: Settings, rule_file: Path) -> Any:
    from moderation_service.signposting import load_directory

    beside = rule_file.resolve().parent / "signposting"
    return load_directory(beside if beside.is_dir() else settings.rules_dir / "signposting")


@rules_app.command("check")
def rules_check(files: Annotated[list[Path], typer.Argument(help="rule files to validate")]) -> None:
    """Validate rule files: exit 0 when all are valid, else one line per problem and exit 2."""
    from moderation_service.rulebook import load_rulebook

    failed = False
    for path in files:
        try:
            book = load_rulebook(path)
        except RulebookError as exc:
            failed = True
            for problem in exc.problems:
                err.print(str(problem), markup=False, highlight=False)
            continue
        out.print(f"ok {path}: rulebook {book.name} version {book.version}, {len(book.rules)} rules, {len(book.tests)} tests")
    raise typer.Exit(2 if failed else 0)


@rules_app.command("test")
def rules_test(file: Annotated[Path, typer.Argument(help="rule file whose tests to run")]) -> None:
    """Run the file's own tests (rules only); print failures in a table and exit 1 if any."""
    from moderation_service.rulebook import load_rulebook
    from moderation_service.rulebook.testing import run_rule_tests

    settings = Settings()
    directory = _directory(settings, file)
    try:
        book = load_rulebook(file, directory.helpline_numbers())
    except RulebookError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        raise typer.Exit(2) from exc
    total, failures = run_rule_tests(book, directory)
    if failures:
        table = Table(title=f"{len(failures)} failing expectation(s) in {file}")
        for column in ("test #", "text", "expected", "got"):
            table.add_column(column, overflow="fold")
        for f in failures:
            table.add_row(str(f.index), f.text, f.expected, f.got)
        out.print(table)
    failing_tests = len({f.index for f in failures})
    out.print(f"{total - failing_tests} passed, {failing_tests} failed")
    raise typer.Exit(1 if failures else 0)


@rules_app.command("render")
def rules_render(
    file: Annotated[Path, typer.Argument(help="rule file to publish")],
    format: Annotated[str, typer.Option("--format", help="md or html")] = "md",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write here instead of stdout")] = None,
) -> None:
    """Print the code of conduct members read, generated from the enforced rulebook."""
    from moderation_service.rulebook import load_rulebook
    from moderation_service.rulebook.render import render_html, render_markdown

    if format not in ("md", "html"):
        err.print("--format must be md or html")
        raise typer.Exit(2)
    try:
        book = load_rulebook(file)
    except RulebookError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        raise typer.Exit(2) from exc
    text = render_markdown(book) if format == "md" else render_html(book)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@keys_app.command("create")
def keys_create(scope: Annotated[list[str], typer.Option("--scope", help=f"one of {', '.join(SCOPES)}; repeatable")]) -> None:
    """Print a new API key once, and the hashed line to add to the keys file."""
    try:
        token, key = generate_key(scope)
    except ConfigError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc
    out.print(f"API key (shown once, give it to the client): {token}", highlight=False)
    out.print("Line for MODERATION_API_KEYS_FILE:", highlight=False)
    sys.stdout.write(key.line() + "\n")


def _jsonl(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


@app.command()
def classify(
    input: Annotated[Path, typer.Argument(help="JSON lines: {id, text, title?, locale?, community?}")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="JSON lines out (default stdout)")] = None,
    rulebook: Annotated[str | None, typer.Option(help="rulebook name, or path to a rule file")] = None,
    batch_size: Annotated[int, typer.Option(help="posts per classifier call")] = 32,
) -> None:
    """Moderate a file of posts (backfills, evaluation); malformed lines are reported and skipped."""
    from moderation_service.classify_file import classify_lines

    settings = Settings()
    try:
        bad = classify_lines(settings, input, output, rulebook, batch_size, err)
    except ModerationError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from exc
    raise typer.Exit(1 if bad else 0)


def main() -> None:
    app()
