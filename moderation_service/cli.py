"""The one command-line entry point: ``moderation-service serve | rules | classify | keys | ...``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from moderation_service.bootstrap import load_settings
from moderation_service.cli_checks import CliError
from moderation_service.config import Settings
from moderation_service.errors import ConfigError, ModerationError, RulebookError, StoreUnavailable
from moderation_service.keys import DEFAULT_TENANT, SCOPES, KeyStore, format_time, generate_key, parse_time, revoke_line

__all__ = ["app", "main"]

# No locals in tracebacks: they could hold post text.
app = typer.Typer(
    help="Content moderation and wellbeing safety for peer-support communities.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
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
    import signal

    from moderation_service.metrics import prepare_multiprocess_dir

    settings = _dev_key_if_none(load_settings(), host, port, workers)
    prepare_multiprocess_dir()
    # uvicorn stops gracefully, then raises the signal again: this handler turns that into exit code 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    _serve_api(settings, host, port, workers)


def _serve_api(settings: Settings, host: str, port: int, workers: int) -> None:
    """One process gets the app object built from ``settings``; several need uvicorn's import-string factory.

    uvloop and httptools (pinned dependencies) parse and schedule a request for a fraction of the CPU of
    asyncio's own loop and h11."""
    import uvicorn

    if workers == 1:
        from moderation_service.api.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, loop="uvloop", http="httptools")
    else:
        app = "moderation_service.api.app:app_from_env"
        uvicorn.run(app, factory=True, host=host, port=port, workers=workers, loop="uvloop", http="httptools")


def _dev_key_if_none(settings: Settings, host: str, port: int, workers: int = 1) -> Settings:
    if settings.api.api_keys or settings.api.api_keys_file is not None:
        return settings
    token, key = generate_key(list(SCOPES))
    if workers > 1:
        # Separate uvicorn worker processes read their settings themselves: the one case the key goes by environment.
        os.environ["MODERATION_API_KEYS"] = key.line()
    err.print(f"[bold]No API keys configured; development key for this run (all scopes):[/bold]\n  {token}")
    err.print(
        f"  try: curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
        f'-d \'{{"text": "hello"}}\' http://{host}:{port}/v1/moderate'
    )
    return settings.model_copy(update={"api": settings.api.model_copy(update={"api_keys": key.line()})})


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="exit when the queue is empty")] = False,
    redis_url: Annotated[str | None, typer.Option(help="Redis to work for (default: MODERATION_REDIS_URL)")] = None,
) -> None:
    """Run a queue worker: loads rulebooks and models once, then runs jobs (needs MODERATION_REDIS_URL)."""
    from moderation_service.workers.worker import run_worker

    settings = load_settings()
    if redis_url:
        settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": redis_url})})
    run_worker(settings, burst=burst)
    _exit_now()


def _exit_now() -> None:
    """Exit 0 once everything is written (logs flushed; Redis and the metrics files need nothing more).

    Tearing down the interpreter frees the loaded grammars and models one object at a time: seconds
    that write nothing but would eat into an orchestrator's grace period, so the process skips them.
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@app.command()
def run(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port (make run PORT=...)")] = 8000,
    redis_port: Annotated[int, typer.Option(help="port of the embedded Redis")] = 6390,
    data_dir: Annotated[Path, typer.Option(help="where Redis keeps its append-only file, and the development key")] = Path(".data"),
    workers: Annotated[int, typer.Option(help="queue workers to start")] = 1,
) -> None:
    """Everything on one machine, no configuration: Redis (child process, AOF), worker(s) and the API.

    Redis and the workers are supervised (started again if they die); Ctrl-C or SIGTERM stops all, exit 0.
    """
    import logging
    import signal

    from moderation_service.dev_stack import StartupWatch, build_models_quietly, development_key, port_problem
    from moderation_service.embedded_run import Supervisor
    from moderation_service.metrics import use_multiprocess_dir

    for problem in (
        port_problem(host, port, f"choose another: make run PORT={port + 1} (or --port {port + 1})"),
        port_problem("127.0.0.1", redis_port, f"is another `make run` still up? (or --redis-port {redis_port + 1})"),
    ):
        if problem:
            err.print(problem, markup=False, highlight=False)
            raise typer.Exit(2)
    settings = load_settings()
    build_models_quietly(settings.models, _say)
    if not settings.redis.url and not settings.redis.sentinels:
        settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": f"redis://127.0.0.1:{redis_port}/0"})})
    dev_key = None
    if not (settings.api.api_keys or settings.api.api_keys_file is not None):
        dev_key = development_key(data_dir)
        settings = settings.model_copy(update={"api": settings.api.model_copy(update={"api_keys_file": dev_key.keys_file.resolve()})})
    watch = StartupWatch(expected=1 + workers)  # the API once its grammars are compiled; each worker once it is ready
    lines = [
        f"ready: API on http://{host}:{port}, {workers} worker(s), Redis port {redis_port} (data in {data_dir}); Ctrl-C stops all; "
        f"moderator console: http://{host}:{port}/console"
    ]
    if dev_key is not None:
        kept = "the same key as last time" if dev_key.reused else "new"
        lines += [
            f"development API key (all scopes; {kept}, kept in {dev_key.token_file} until you delete it):",
            f"  {dev_key.token}",
            f"  try: curl -s -H 'Authorization: Bearer {dev_key.token}' -H 'Content-Type: application/json' "
            f'-d \'{{"text": "hello"}}\' http://{host}:{port}/v1/moderate',
        ]
    # SIGTERM stops like Ctrl-C: uvicorn re-raises the signal after its own shutdown, and the default
    # action would end this process before the workers and Redis below are stopped.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)  # Ctrl-C before or after uvicorn runs: the same clean stop, exit 0
    # prometheus_client reads this variable itself, in this process (the API) and in the workers it starts.
    use_multiprocess_dir(Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or (data_dir / "metrics").resolve()))
    logging.getLogger("moderation_service").addHandler(watch.log_handler())

    def forward(process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        watch.forward(process.stderr, sys.stderr.buffer)

    supervisor = Supervisor(data_dir, redis_port, settings.redis.url, workers, on_worker_start=forward)
    try:
        supervisor.start()
        watch.announce(f"http://{host}:{port}/readyz", lines, _say)
        _serve_api(settings, host, port, 1)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM may not cut the stop short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        supervisor.stop()
        watch.drain()
        err.print("stopped API, worker(s) and Redis")


def _say(line: str) -> None:
    err.print(line, markup=False, highlight=False)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _print_problems(exc: RulebookError) -> None:
    for problem in exc.problems:
        err.print(str(problem), markup=False, highlight=False)


@rules_app.command("check")
def rules_check(files: Annotated[list[Path], typer.Argument(help="rule files to validate")]) -> None:
    """Validate rule files: exit 0 when all are valid, else one line per problem and exit 2."""
    from moderation_service.service.rule_files import band_estimates, check_rule_file

    failed = False
    settings = load_settings()
    for path in files:
        try:
            book = check_rule_file(path, settings.rules.rules_dir)
        except RulebookError as exc:
            failed = True
            _print_problems(exc)
            continue
        out.print(f"ok {path}: rulebook {book.name} version {book.version}, {len(book.rules)} rules, {len(book.tests)} tests")
        for estimate in band_estimates(book, settings.models.models_dir / "embedded"):
            out.print(_estimate_line(estimate), highlight=False)
    raise typer.Exit(2 if failed else 0)


def _estimate_line(estimate: Any) -> str:
    """One band's expected effect: on the model's dev split, and at the prevalence assumed for a live forum."""
    p = estimate.point

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    action = "allow: reported, not held; if held" if estimate.action == "allow" else estimate.action
    return (
        f"  {estimate.label} >= {estimate.band_min:.2f} ({action}): dev split: precision {share(p.precision)}, "
        f"recall {share(p.recall)}, holds {share(p.dev_hold_rate)} of dev posts; at an assumed {p.prevalence:.1%} prevalence: "
        f"precision {share(p.deployed_precision)}, holds {share(p.deployed_hold_rate)} of posts; "
        f"holds {share(p.health_hold_rate)} of dev health questions"
    )


@rules_app.command("test")
def rules_test(file: Annotated[Path, typer.Argument(help="rule file whose tests to run")]) -> None:
    """Run the file's own tests (rules and crisis grammars); print failures in a table and exit 1 if any."""
    from moderation_service.service.rule_files import run_file_tests

    try:
        settings = load_settings()
        total, failures = run_file_tests(file, settings.rules.rules_dir, settings.pipeline.default_locale)
    except RulebookError as exc:
        _print_problems(exc)
        raise typer.Exit(2) from exc
    failing_tests = len({f.index for f in failures})
    if failures:
        # Counted in tests, as in the summary line; a test can fail on several expectations (one row each).
        table = Table(title=f"{failing_tests} failing test(s) in {file}")
        for column in ("test #", "text", "expected", "got"):
            table.add_column(column, overflow="fold")
        for f in failures:
            table.add_row(str(f.index), f.text, f.expected, f.got)
        out.print(table)
    out.print(f"{total} test(s): {total - failing_tests} passed, {failing_tests} failed", highlight=False)
    raise typer.Exit(1 if failures else 0)


@rules_app.command("render")
def rules_render(
    file: Annotated[Path, typer.Argument(help="rule file to publish")],
    format: Annotated[str, typer.Option("--format", help="md or html")] = "md",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write here instead of stdout")] = None,
) -> None:
    """Print the code of conduct members read, generated from the enforced rulebook."""
    from moderation_service.service.rule_files import render_rule_file

    if format not in ("md", "html"):
        err.print("--format must be md or html")
        raise typer.Exit(2)
    try:
        text = render_rule_file(file, "md" if format == "md" else "html", load_settings().rules.rules_dir)
    except RulebookError as exc:
        _print_problems(exc)
        raise typer.Exit(2) from exc
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output} ({format}, {len(text.encode())} bytes)", markup=False, highlight=False)


@rules_app.command("replay")
def rules_replay(
    draft: Annotated[Path, typer.Argument(help="the draft rule file")],
    corpus: Annotated[Path, typer.Option(help="JSON lines: {id, text, title?, locale?}, e.g. an export of real posts")],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """What the draft would change over real posts before it goes live: decisions changed, from -> to per category."""
    from moderation_service.classify_file import replay_file

    settings = _no_time_limit(load_settings())
    try:
        report, bad = replay_file(settings, draft, corpus, err)
    except RulebookError as exc:
        _print_problems(exc)
        raise typer.Exit(2) from exc
    except (ModerationError, OSError) as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from exc
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        raise typer.Exit(1 if bad else 0)
    live = f"live {report.live_version}" if report.live_version else "new rulebook (compared with the default)"
    out.print(f"{report.rulebook}: draft {report.draft_version} vs {live}", highlight=False)
    out.print(f"{report.changed} of {report.posts} decisions change ({bad} line(s) skipped)", highlight=False)
    if report.transitions:
        table = Table("category", "from", "to", "posts")
        for t in report.transitions:
            table.add_row(t.category, t.before.value, t.after.value, str(t.posts))
        out.print(table)
        examples = Table("example id", "from", "to", "categories")
        for e in report.examples:
            examples.add_row(e.id, e.before.value, e.after.value, ", ".join(e.categories))
        out.print(examples)
    raise typer.Exit(1 if bad else 0)


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str] | None, typer.Option("--scope", help=f"one of {', '.join(SCOPES)}; repeatable (default: moderate)")] = None,
    keys_file: Annotated[
        Path | None, typer.Option(help="also append the line to this keys file (running servers pick it up within seconds)")
    ] = None,
    tenant: Annotated[str, typer.Option(help="whose data the key reaches (submissions, escalations, feedback)")] = DEFAULT_TENANT,
    community: Annotated[list[str] | None, typer.Option("--community", help="limit the key to this community; repeatable")] = None,
    expires: Annotated[str | None, typer.Option(help="expiry, ISO 8601 UTC (2027-01-31 or 2027-01-31T12:00:00Z)")] = None,
) -> None:
    """Print a new API key once, and the hashed line to add to the keys file."""
    from moderation_service.dev_stack import append_key_line

    scopes = scope or ["moderate"]
    try:
        expires_at = parse_time(expires) if expires else None
        token, key = generate_key(scopes, tenant=tenant, communities=community or [], expires_at=expires_at)
    except ConfigError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from exc
    out.print(f"API key with scopes {', '.join(sorted(key.scopes))} (shown once, give it to the client): {token}", highlight=False)
    if keys_file is not None:
        append_key_line(keys_file, key)
        err.print(f"added to {keys_file}; running servers reading it pick it up within seconds", highlight=False)
    out.print("Line for MODERATION_API_KEYS_FILE:", highlight=False)
    sys.stdout.write(key.line() + "\n")


def _keys_file(keys_file: Path | None) -> Path:
    path = keys_file or load_settings().api.api_keys_file
    if path is None:
        err.print("name the keys file: --keys-file PATH (or set MODERATION_API_KEYS_FILE)", highlight=False)
        raise typer.Exit(2)
    return path


def _read_key_store(path: Path) -> KeyStore:
    try:
        return KeyStore.from_lines(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        err.print(f"cannot read {path}: {exc.strerror}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    except ConfigError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from exc


def _shared_revocations() -> frozenset[str] | None:
    """Revocations published in Redis, when one is configured and reachable (None otherwise)."""
    from moderation_service.bootstrap import build_store

    try:
        store = build_store(load_settings())
        return store.revoked_keys() if store is not None else None
    except StoreUnavailable:
        return None


@keys_app.command("list")
def keys_list(keys_file: Annotated[Path | None, typer.Option(help="the keys file (default: MODERATION_API_KEYS_FILE)")] = None) -> None:
    """Every key in the keys file: id, scopes, tenant, communities, expiry and status (never a secret)."""
    path = _keys_file(keys_file)
    store = _read_key_store(path)
    revoked = _shared_revocations() or frozenset()
    table = Table("id", "scopes", "tenant", "communities", "expires", "status")
    for key in store.all():
        status = "revoked" if key.id in revoked else key.status()
        expiry = format_time(key.expires_at) if key.expires_at is not None else "never"
        table.add_row(key.id, ",".join(sorted(key.scopes)), key.tenant, ",".join(sorted(key.communities)) or "all", expiry, status)
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (the part after msk_, as `keys list` shows it)")],
    keys_file: Annotated[Path | None, typer.Option(help="the keys file (default: MODERATION_API_KEYS_FILE)")] = None,
) -> None:
    """Revoke a key: marked in the keys file and published in Redis; every process refuses it within seconds."""
    from moderation_service.bootstrap import build_store
    from moderation_service.dev_stack import rewrite_private

    path = _keys_file(keys_file)
    _read_key_store(path)  # a broken file is reported, not rewritten
    now = time.time()
    try:
        rewrite_private(path, revoke_line(path.read_text(encoding="utf-8"), key_id, now))
    except ConfigError as exc:
        err.print(f"{path}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    where = f"marked revoked in {path}"
    try:
        store = build_store(load_settings())
        if store is not None:
            store.revoke_key(key_id, now)
            where += " and published in Redis"
    except StoreUnavailable:
        where += "; Redis unreachable, so only processes reading this file see it"
    out.print(f"key {key_id} revoked: {where}", highlight=False)


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

    settings = _no_time_limit(load_settings())  # a backfill waits for every model run
    try:
        bad = classify_lines(settings, input, output, rulebook, batch_size, err)
    except ModerationError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from exc
    raise typer.Exit(1 if bad else 0)


models_app = typer.Typer(help="Build and inspect the embedded model.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("build")
def models_build() -> None:
    """Build the int8 ONNX file for the embedded model into the local cache (the service builds it at start-up too)."""
    from moderation_service.bootstrap import ensure_models

    models = load_settings().models
    built = ensure_models(models.model_copy(update={"classifiers": ["embedded"]}))
    out.print(f"built {built[0]}" if built else f"up to date in {models.cache_dir}", highlight=False)


@app.command()
def train(
    datasets: Annotated[Path, typer.Option(help="folder of the shared labelled datasets")] = Path("../shared/datasets"),
    output: Annotated[Path, typer.Option(help="where the artefact goes (a new folder; the shipped one is models/embedded)")] = Path(
        "trained-embedded"
    ),
    handwritten: Annotated[Path, typer.Option(help="project-written examples")] = Path("models/training_data/handwritten.yaml"),
    epochs: Annotated[float, typer.Option(help="passes over the training data")] = 2.0,
    threads: Annotated[int, typer.Option(help="torch threads")] = 2,
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
    init_from: Annotated[Path | None, typer.Option(help="continue from this artefact folder's weights")] = None,
    crisis_corpus: Annotated[Path | None, typer.Option(help="also learn the crisis risk dimensions from this corpus folder")] = None,
    max_per_source: Annotated[int, typer.Option(help="cap on examples per dataset")] = 15000,
    learning_rate: Annotated[float, typer.Option(help="encoder learning rate")] = 6e-5,
    social_oversample: Annotated[int, typer.Option(help="extra weight of the crisis corpus's short social posts (safe ones)")] = 1,
    grateful_negatives: Annotated[int, typer.Option(help="grateful everyday comments taught as no-risk to the crisis objective")] = 0,
    version: Annotated[str, typer.Option(help="version written into model.json")] = "1.1.0",
) -> None:
    """Fine-tune the embedded classifier (CPU, seeded) and write weights + model.json with data hashes."""
    from moderation_service.cli_checks import check_datasets
    from moderation_service.training.train import TrainConfig
    from moderation_service.training.train import train as run_training

    check_datasets(datasets)
    config = TrainConfig(
        datasets,
        output,
        handwritten,
        seed=seed,
        epochs=epochs,
        threads=threads,
        max_per_source=max_per_source,
        learning_rate=learning_rate,
        version=version,
        init_weights=None if init_from is None else init_from / "weights.safetensors",
        crisis_corpus=crisis_corpus,
        social_oversample=social_oversample,
        grateful_negatives=grateful_negatives,
    )
    meta = run_training(config)
    sys.stdout.write(json.dumps(meta["dev_metrics"], indent=1) + "\n")
    err.print(f"written {output}/; copy it over models/embedded to ship it", markup=False, highlight=False)


@app.command("train-risk-heads")
def train_risk_heads(
    corpus: Annotated[Path, typer.Option(help="folder of the project's crisis corpus (*.jsonl)")] = Path("models/training_data/crisis"),
    datasets: Annotated[Path, typer.Option(help="folder of the shared labelled datasets (health-question negatives)")] = Path(
        "../shared/datasets"
    ),
    output: Annotated[Path, typer.Option(help="where risk_heads.json goes (the shipped one is models/embedded)")] = Path(
        "trained-risk-heads"
    ),
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
) -> None:
    """Train the crisis risk-dimension and level heads on the embedded encoder (CPU, about two minutes)."""
    from moderation_service.bootstrap import ensure_models
    from moderation_service.training.risk_heads import HeadsConfig
    from moderation_service.training.risk_heads import train_risk_heads as run

    settings = load_settings()
    for folder, what in ((corpus, "crisis corpus"), (datasets, "shared datasets")):
        if not folder.is_dir():
            err.print(f"{what} not found at {folder}: pass --{'corpus' if what == 'crisis corpus' else 'datasets'} PATH", markup=False)
            raise typer.Exit(2)
    cfg = HeadsConfig(corpus, datasets, settings.models.models_dir / "embedded", output, settings.models.cache_dir, seed=seed)
    ensure_models(settings.models.model_copy(update={"classifiers": ["embedded"]}))  # the encoder the heads are trained on
    meta = run(cfg, lambda message: err.print(message, highlight=False))
    sys.stdout.write(json.dumps(meta["dev_metrics"], indent=1) + "\n")
    err.print(f"written {output / 'risk_heads.json'}; copy it into {settings.models.models_dir / 'embedded'} to ship it")


@app.command("train-abuse-heads")
def train_abuse_heads(
    corpus: Annotated[Path, typer.Option(help="folder of the project's abuse training corpus (*.jsonl)")] = Path(
        "models/training_data/abuse_train"
    ),
    datasets: Annotated[Path, typer.Option(help="folder of the shared labelled datasets (ETHOS, health-question negatives)")] = Path(
        "../shared/datasets"
    ),
    output: Annotated[Path, typer.Option(help="where abuse_heads.json goes (the shipped one is models/embedded)")] = Path(
        "trained-abuse-heads"
    ),
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
) -> None:
    """Train the commercial, insult and identity_hate heads on the embedded encoder (CPU, minutes); print dev metrics."""
    from moderation_service.bootstrap import ensure_models
    from moderation_service.training.abuse_heads import abuse_config
    from moderation_service.training.abuse_heads import train_abuse_heads as run

    settings = load_settings()
    for folder, option in ((corpus, "--corpus"), (datasets, "--datasets")):
        if not folder.is_dir():
            raise CliError(f"{folder}: no such folder: pass {option} PATH")
    cfg = abuse_config(corpus, datasets, settings.models.models_dir / "embedded", output, settings.models.cache_dir, seed=seed)
    ensure_models(settings.models.model_copy(update={"classifiers": ["embedded"]}))  # the encoder the heads are trained on
    try:
        meta = run(cfg, lambda message: err.print(message, highlight=False))
    except ValueError as exc:  # a bad corpus line: the message names file and line
        raise CliError(str(exc)) from exc
    sys.stdout.write(json.dumps(meta["dev_metrics"], indent=1) + "\n")
    err.print(f"written {output / 'abuse_heads.json'}; copy it into {settings.models.models_dir / 'embedded'} to ship it", highlight=False)


def _no_time_limit(settings: Settings) -> Settings:
    return settings.model_copy(update={"pipeline": settings.pipeline.model_copy(update={"classifier_timeout_s": None})})


def _offline_pipeline(settings: Settings, classifiers: list[str]) -> Any:
    """A pipeline for evaluation runs: no time limit, these classifiers (none: rulebook and grammars alone)."""
    from moderation_service.bootstrap import build_crisis, build_pipeline

    models = settings.models.model_copy(update={"classifiers": classifiers})
    # Grammars compiled now: a background warm-up still running in native code when a short run exits aborts the process.
    crisis = build_crisis(settings.rules.rules_dir, warm_in_background=False)
    return build_pipeline(_no_time_limit(settings).model_copy(update={"models": models}), crisis=crisis)


def _classifier_and_pipeline(settings: Settings) -> tuple[Any, Any]:
    pipeline = _offline_pipeline(settings, settings.models.classifiers or ["embedded"])
    return pipeline.classifiers[0], pipeline


@app.command("eval")
def evaluate(
    data: Annotated[Path | None, typer.Argument(help="labelled CSV (omit with --suite)")] = None,
    task: Annotated[str, typer.Option(help="category to score, e.g. toxicity")] = "toxicity",
    text_col: Annotated[str, typer.Option(help="text column")] = "text",
    label_col: Annotated[str, typer.Option(help="label column (0/1)")] = "label",
    suite: Annotated[bool, typer.Option(help="run every shared dev set and the policy checks")] = False,
    functional: Annotated[
        str | None, typer.Option(help="run a functional test suite from tests/suites/<name> (crisis or abuse); exit 1 if a CI gate fails")
    ] = None,
    suites_dir: Annotated[Path, typer.Option(help="folder of functional suites (for --functional)")] = Path("tests/suites"),
    rules_only: Annotated[
        bool,
        typer.Option(
            help="--functional with the rulebook and crisis grammars alone (no model): what the models add, or a rules change on its own"
        ),
    ] = False,
    crisis_dev: Annotated[bool, typer.Option(help="the crisis gates on the crisis corpus's dev split (grammars + heads)")] = False,
    abuse_dev: Annotated[
        bool, typer.Option(help="the abuse heads on their dev split (PR point of each rulebook threshold) and on the abuse dev corpus")
    ] = False,
    datasets: Annotated[Path, typer.Option(help="shared datasets folder (for --suite)")] = Path("../shared/datasets"),
    out_dir: Annotated[Path, typer.Option("--out", help="folder for JSON and PNG")] = Path("eval-results"),
) -> None:
    """ROC AUC, PR AUC, macro-F1 at 0.5 and at the shipped thresholds, calibration error, plots; or a functional suite."""
    from moderation_service.cli_checks import check_choice, check_csv_columns, check_datasets
    from moderation_service.training.evaluate import evaluate_csv, evaluate_suite

    if suite:
        check_datasets(datasets)
    elif data is not None:
        check_csv_columns(data, {"--text-col": text_col, "--label-col": label_col})
    elif functional is None and not crisis_dev and not abuse_dev:
        raise CliError("give a labelled CSV file, or --suite, --functional NAME, --crisis-dev or --abuse-dev")
    if functional is not None:
        _run_functional(functional, suites_dir, out_dir, rules_only)
        return
    if abuse_dev:
        _run_abuse_dev(datasets, out_dir)
        return
    if crisis_dev:
        from moderation_service.training.risk_heads import HeadsConfig, evaluate_levels

        settings = load_settings()
        corpus = Path("models/training_data/crisis")
        check_datasets(datasets)
        cfg = HeadsConfig(corpus, datasets, settings.models.models_dir / "embedded", out_dir, settings.models.cache_dir)
        _, pipeline = _classifier_and_pipeline(settings)
        sys.stdout.write(json.dumps(evaluate_levels(cfg, pipeline), indent=1) + "\n")
        return
    classifier, pipeline = _classifier_and_pipeline(load_settings())
    if suite:
        handwritten = Path("models/training_data/handwritten.yaml")
        report = evaluate_suite(datasets, handwritten, classifier, pipeline, out_dir, lambda name: err.print(f"evaluating {name}"))
    else:
        assert data is not None  # checked above
        check_choice("--task", task, classifier.labels)
        report = evaluate_csv(data, task, text_col, label_col, classifier, pipeline, out_dir)
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    err.print(f"written to {out_dir}/")


def _run_abuse_dev(datasets: Path, out_dir: Path) -> None:
    """The abuse heads' dev curves at the rulebook's thresholds, then what they add beside the rules, per kind."""
    from moderation_service.cli_checks import check_datasets
    from moderation_service.training.abuse_eval import evaluate_abuse
    from moderation_service.training.abuse_heads import abuse_config

    check_datasets(datasets)
    settings = load_settings()
    cfg = abuse_config(
        Path("models/training_data/abuse_train"), datasets, settings.models.models_dir / "embedded", out_dir, settings.models.cache_dir
    )
    classifier, pipeline = _classifier_and_pipeline(settings)
    try:
        report = evaluate_abuse(
            cfg, pipeline, classifier, Path("models/training_data/abuse"), out_dir, lambda m: err.print(m, highlight=False)
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    heads = Table(title="abuse heads on their dev split, at the rulebook's thresholds")
    for column in ("head", "threshold", "dev precision", "dev recall", "prevalence", "precision there", "holds there", "PR AUC"):
        heads.add_column(column)
    for label, row in report["heads"].items():
        p = row["point"]
        heads.add_row(
            label, f"{row['rulebook_threshold']:.2f}", _pct(p["precision"]), _pct(p["recall"]), _pct(p["prevalence"]),
            _pct(p["deployed_precision"]), _pct(p["deployed_hold_rate"]), "n/a" if row["pr_auc"] is None else f"{row['pr_auc']:.3f}",
        )  # fmt: skip
    out.print(heads)
    corpus = report["abuse_dev_corpus"]
    kinds = Table(title="abuse dev corpus (models/training_data/abuse): held before -> after, with the heads holding at those thresholds")
    for column in ("kind", "expect", "posts", "held before", "held after"):
        kinds.add_column(column)
    for kind, row in corpus["kinds"].items():
        kinds.add_row(kind, row["expect"], str(row["posts"]), str(row["held_before"]), str(row["held_after"]))
    out.print(kinds)
    for name in ("hold_recall", "false_holds"):
        row = corpus[name]
        out.print(f"{name}: {_pct(row['before']['share'])} -> {_pct(row['after']['share'])} of {row['posts']} posts", highlight=False)
    health, madlibs = report["dev_health_questions"], report["bias_madlibs_not_bad_held"]
    out.print(
        f"dev health questions held: {_pct(health['before']['share'])} -> {_pct(health['after']['share'])} of {health['posts']} posts",
        highlight=False,
    )
    out.print(f"bias_madlibs NOT_BAD sentences held by each head (n={madlibs['n']}): "
              + ", ".join(f"{label} {_pct(madlibs[label])}" for label in report["heads"]), highlight=False)  # fmt: skip
    err.print(f"written {out_dir / 'abuse-dev.json'} and one PNG per head", highlight=False)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _run_functional(name: str, suites_dir: Path, out_dir: Path, rules_only: bool = False) -> None:
    """Every case through the full pipeline (rules, crisis grammars, models unless ``rules_only``); a table per functionality."""
    from moderation_service.training.functional import run_suite, save_report

    folder = suites_dir / name
    if not folder.is_dir():
        known = sorted(p.name for p in suites_dir.iterdir() if p.is_dir()) if suites_dir.is_dir() else []
        err.print(f"no functional suite {name!r} in {suites_dir}/ (known: {', '.join(known) or 'none'})", markup=False)
        raise typer.Exit(2)
    settings = load_settings()
    pipeline = _offline_pipeline(settings, [] if rules_only else settings.models.classifiers or ["embedded"])
    try:
        report, _ = run_suite(name, folder, pipeline, lambda func: err.print(f"  {func}", highlight=False))
    except RulebookError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        raise typer.Exit(2) from exc
    table = Table(title=f"functional suite {name}")
    for column in ("functionality", "group", "cases", "correct", "escalated"):
        table.add_column(column)
    for func, row in report.functionalities.items():
        table.add_row(func, row["group"], str(row["cases"]), f"{row['correct']} ({row['accuracy']:.0%})", str(row["escalated"]))
    out.print(table)
    if report.targets:
        targets = Table(title="per target group")
        for column in ("target", "cases", "correct"):
            targets.add_column(column)
        for target, row in report.targets.items():
            targets.add_row(target, str(row["cases"]), f"{row['correct']} ({row['accuracy']:.0%})")
        out.print(targets)
    for gate_name, gate in report.gates.items():
        bar = f">= {gate['minimum']:.0%}" if gate["minimum"] is not None else f"<= {gate['maximum']:.0%}"
        ci = f">= {gate['ci_minimum']:.0%}" if gate["ci_minimum"] is not None else f"<= {gate['ci_maximum']:.0%}"
        out.print(
            f"{gate_name}: {gate['hits']}/{gate['total']} = {gate['share']:.1%}  target {bar} {'met' if gate['passed'] else 'NOT MET'};"
            f"  CI gate {ci} {'passed' if gate['ci_passed'] else 'FAILED'}",
            highlight=False,
        )
    for path in save_report(report, out_dir):
        err.print(f"written {path}", highlight=False)
    raise typer.Exit(0 if report.ci_passed else 1)


feedback_app = typer.Typer(help="Moderator feedback, for calibration.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file (default stdout)")] = None,
    format: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "jsonl",
) -> None:
    """Write every stored moderator feedback record (no post text is ever stored with it)."""
    from moderation_service.bootstrap import build_store
    from moderation_service.service.calibration import write_feedback_csv

    store = build_store(load_settings())
    if store is None:
        err.print(
            "no Redis configured: set MODERATION_REDIS_URL; for `make run` that is "
            "MODERATION_REDIS_URL=redis://127.0.0.1:6390/0 (its --redis-port)",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    if format not in ("csv", "jsonl"):
        err.print("--format must be csv or jsonl")
        raise typer.Exit(2)
    records = list(store.iter_feedback())
    sink = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if format == "jsonl":
            for record in records:
                sink.write(json.dumps(record.model_dump(mode="json")) + "\n")
        else:
            write_feedback_csv(records, sink)
    finally:
        if output:
            sink.close()
    err.print(f"{len(records)} feedback record(s)")


def main() -> None:
    """The console script: a deliberate error (ours, or a file that cannot be read) is one line and exit 2."""
    try:
        app()
    except ModerationError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except ValidationError as exc:  # settings from the environment that cannot be used
        problems = [
            ".".join(str(p) for p in e["loc"]) + ": " * bool(e["loc"]) + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors(include_input=False, include_url=False)
        ]
        err.print(f"error: invalid settings: {'; '.join(problems)}", markup=False, highlight=False)
        sys.exit(2)
    except OSError as exc:
        from moderation_service.cli_checks import describe_os_error

        err.print(f"error: {describe_os_error(exc)}", markup=False, highlight=False)
        sys.exit(2)
    except Exception as exc:
        # A server or worker that crashes says so in its JSON log (type and frames, never the message), not in a
        # Rich traceback that log collectors cannot parse and that may quote a post.
        from moderation_service.logs import json_logging_active

        if not json_logging_active():
            raise
        logging.getLogger("moderation_service").critical("process crashed", extra={"error": exc.__class__.__name__}, exc_info=exc)
        sys.exit(1)
