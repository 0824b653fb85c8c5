"""The newcomer's path through the command line (issue 16): each mistake is one clear line and exit 2.

The CLI runs as the installed console script in a real process, as a user would type it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from moderation_service.core.rulebook import load_rulebook
from moderation_service.dev_stack import development_key
from moderation_service.errors import RulebookError
from moderation_service.keys import KeyStore
from tests.queue_support import free_port

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "moderation-service")


def cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    merged = {k: v for k, v in os.environ.items() if not k.startswith("MODERATION_")} | (env or {})
    return subprocess.run([CLI, *args], cwd=cwd, env=merged, capture_output=True, text=True, timeout=timeout)


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit 2 and said why in exactly one line, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- 1. where the CLI lives, and the prerequisites --------------------------------------------------


def test_readme_says_where_the_cli_lives_and_lists_prometheus() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") : readme.index("## What it does")]
    assert ".venv/bin/moderation-service" in quick_start and ". .venv/bin/activate" in quick_start
    assert "`prometheus`" in quick_start and "`redis-server`" in quick_start
    assert "VENV ?= .venv" in (ROOT / "Makefile").read_text()  # make installs into .venv ...
    assert (Path(sys.prefix) / "bin" / "moderation-service").is_file()  # ... and the console script lands in its bin/
    help_text = cli("--help")
    assert help_text.returncode == 0 and "rules" in help_text.stdout


# --- 2. make run takes a port and refuses a busy one before starting anything ----------------------


def test_make_run_passes_the_port() -> None:
    dry = subprocess.run(["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "moderation-service run --port 8123" in dry.stdout


def test_run_refuses_a_busy_port_before_starting_redis_or_a_worker(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        redis_port = free_port()
        result = cli("run", "--port", str(busy), "--redis-port", str(redis_port), "--data-dir", str(tmp_path / "data"), timeout=60)
    line = one_clear_line(result)
    assert f"port {busy}" in line and f"PORT={busy + 1}" in line
    assert not (tmp_path / "data").exists()  # neither Redis nor a key was made
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", redis_port)) != 0  # no Redis left listening


@pytest.mark.slow
def test_first_start_builds_the_onnx_file_once_and_quietly(tmp_path: Path) -> None:
    """Two processes starting together (API and worker, say) build the file once; neither prints ONNX noise."""
    script = (
        "from moderation_service.bootstrap import load_settings\n"
        "from moderation_service.dev_stack import build_models_quietly\n"
        "build_models_quietly(load_settings().models, print)\n"
    )
    env = {**os.environ, "MODERATION_CACHE_DIR": str(tmp_path / "cache"), "MODERATION_CLASSIFIERS": "embedded"}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = [out.splitlines() + err.splitlines() for out, err in outputs]
    built = [lines for lines in said if any(line.startswith("built ") for line in lines)]
    assert len(built) == 1, said  # one build; the other process waited for it
    for lines in said:
        assert all(line.startswith(("first start: building", "built ", "found ")) for line in lines), lines
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1


# --- 3. the development key persists; keys create works alone -------------------------------------


def test_development_key_is_kept_across_runs_and_remade_when_stale(tmp_path: Path) -> None:
    first = development_key(tmp_path)
    again = development_key(tmp_path)
    assert not first.reused and again.reused and again.token == first.token
    store = KeyStore.from_lines(first.keys_file.read_text())
    assert store.authenticate(first.token, "admin").scopes == {"moderate", "submit", "moderator", "admin"}
    assert oct(first.token_file.stat().st_mode & 0o777) == "0o600" and oct(first.keys_file.stat().st_mode & 0o777) == "0o600"
    first.keys_file.write_text("")  # someone emptied the keys file: the kept token no longer works
    fresh = development_key(tmp_path)
    assert not fresh.reused and fresh.token != first.token


def test_keys_create_without_scope_makes_a_moderate_key_and_can_add_it_to_a_keys_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "api-keys"
    result = cli("keys", "create", "--keys-file", str(keys_file))
    assert result.returncode == 0, result.stderr
    token = next(word for word in result.stdout.split() if word.startswith("msk_"))
    assert "scopes moderate" in result.stdout and "pick it up within seconds" in result.stderr
    assert KeyStore.from_lines(keys_file.read_text()).authenticate(token, "moderate").scopes == {"moderate"}
    assert result.stdout.strip().splitlines()[-1] == keys_file.read_text().strip()


# --- 5. eval: every mistake is one line, exit 2 ------------------------------------------------------


def test_eval_suite_without_the_shared_datasets(tmp_path: Path) -> None:
    line = one_clear_line(cli("eval", "--suite", cwd=tmp_path))  # ../shared/datasets does not exist from here
    assert "../shared/datasets" in line and "--datasets" in line


def test_eval_unknown_column_names_the_file_and_the_column(tmp_path: Path) -> None:
    data = tmp_path / "my.csv"
    data.write_text("id,text,label\n1,hello,0\n")
    line = one_clear_line(cli("eval", str(data), "--text-col", "body"))
    assert str(data) in line and "'body'" in line and "id, text, label" in line and "--text-col" in line


@pytest.mark.model
def test_eval_unknown_task_lists_the_valid_ones(tmp_path: Path) -> None:
    data = tmp_path / "my.csv"
    data.write_text("id,text,label\n1,hello,0\n2,you idiot,1\n")
    line = one_clear_line(cli("eval", str(data), "--task", "spam"))
    assert "--task 'spam'" in line and "toxicity" in line and "identity_attack" in line


def test_a_missing_input_file_is_one_line(tmp_path: Path) -> None:
    line = one_clear_line(cli("classify", str(tmp_path / "nope.jsonl"), "--rulebook", "peer-support", env={"MODERATION_CLASSIFIERS": ""}))
    assert "nope.jsonl" in line


# --- 6. classify: progress, summary, and skipped lines that name the field -------------------------


def test_classify_reports_progress_a_summary_and_names_the_missing_field(tmp_path: Path) -> None:
    source = tmp_path / "posts.jsonl"
    lines = [json.dumps({"id": i, "text": "has anyone tried hydrotherapy?"}) for i in range(38)]
    lines[5] = json.dumps({"id": 5, "body": "wrong field name"})
    lines[9] = "not json"
    lines[20] = json.dumps({"id": 20, "text": "you idiot"})
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "decisions.jsonl"
    result = cli("classify", str(source), "-o", str(target), "--batch-size", "4", env={"MODERATION_CLASSIFIERS": ""})
    assert result.returncode == 1, result.stderr
    err = result.stderr.splitlines()
    assert f"{source}:6: skipped: field 'text': Field required" in err
    assert f"{source}:10: skipped: not valid JSON" in err
    progress = [line for line in err if line.strip().endswith("%)")]
    assert len(progress) >= 5 and progress[0].strip().startswith(("4/38", "8/38")), err
    assert err[-1] == err[-1].strip() and err[-1].startswith("done: 36 decision(s) in ")
    assert "35 allow, 1 hold; 2 line(s) skipped; written to " + str(target) in err[-1]
    assert len(target.read_text().splitlines()) == 36


# --- 7. rules test / render / check --------------------------------------------------------------

RULE_FILE = """\
name: tiny
title: T
community: C
categories:
  harassment: {title: Be kind, text: "x"}
rules:
  - {id: harassment.insult, category: harassment, description: d, action: hold, match: {any: {phrases: [you idiot]}}}
tests:
  - {text: "you idiot", triggers: [harassment.insult], action: hold}
  - {text: "hello there", triggers: [harassment.insult], action: hold}
  - {text: "lovely day", action: escalate}
"""


def test_rules_test_counts_tests_the_same_way_in_the_table_and_the_summary(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(RULE_FILE)
    result = cli("rules", "test", str(tmp_path / "tiny.yaml"))
    assert result.returncode == 1
    assert "2 failing test(s)" in result.stdout and "3 test(s): 1 passed, 2 failed" in result.stdout
    assert "expectation" not in result.stdout  # test #2 fails two expectations: still one failing test


def test_rules_render_to_a_file_says_what_it_wrote(tmp_path: Path) -> None:
    target = tmp_path / "code-of-conduct.html"
    result = cli("rules", "render", "rules/peer-support.yaml", "--format", "html", "-o", str(target))
    assert result.returncode == 0 and target.read_text().startswith("<")
    assert f"wrote {target} (html, {target.stat().st_size} bytes)" in result.stderr


def test_rules_check_reports_schema_re2_and_category_problems_in_one_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\ntitle: T\ncommunity: C\ncategories:\n  harassment: {title: Be kind, text: x}\nrules:\n"
        "  - {id: a, category: harasment, description: d, action: hold, match: {any: {regex: ['(unclosed']}}}\n"
        "  - {id: b, category: harassment, description: d, action: holdd, match: {any: {phrases: [x]}}}\n"
    )
    result = cli("rules", "check", str(bad))
    assert result.returncode == 2
    problems = result.stderr.strip().splitlines()
    assert any(":8: rule b: rules.1.action:" in p for p in problems)  # the schema
    assert any(":7: rule a: unknown category 'harasment'" in p for p in problems)  # the category
    assert any(":7: rule a: RE2 cannot compile '(unclosed'" in p for p in problems)  # RE2
    assert len(problems) == 3


# --- 8. extends by rulebook name, confined to the rules folder ----------------------------------------


def test_the_diabetes_example_works_where_it_is_and_copied_into_the_rules_folder(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("examples"))
    shutil.copy(ROOT / "rules" / "examples" / "diabetes-forum.yaml", rules)
    copied = load_rulebook(rules / "diabetes-forum.yaml")  # found beside it, by name
    shipped = load_rulebook(ROOT / "rules" / "examples" / "diabetes-forum.yaml", rules_dir=ROOT / "rules")
    assert copied.name == shipped.name == "diabetes-forum" and copied.version == shipped.version
    check = cli("rules", "check", "rules/diabetes-forum.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("extends", ["../outside.yaml", "../outside", "/etc/passwd", "sub/../../outside.yaml", "~/outside.yaml"])
def test_extends_cannot_leave_the_rules_folder(tmp_path: Path, extends: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (tmp_path / "outside.yaml").write_text(yaml.safe_dump({"name": "outside", "title": "T", "community": "C"}))
    (rules / "child.yaml").write_text(yaml.safe_dump({"name": "child", "title": "T", "community": "C", "extends": extends}))
    with pytest.raises(RulebookError) as caught:
        load_rulebook(rules / "child.yaml", rules_dir=rules)
    assert "extends must name a rulebook in the rules folder" in caught.value.problems[0].message


def test_extends_through_a_link_out_of_the_rules_folder_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (tmp_path / "outside.yaml").write_text(yaml.safe_dump({"name": "outside", "title": "T", "community": "C"}))
    (rules / "base.yaml").symlink_to(tmp_path / "outside.yaml")
    (rules / "child.yaml").write_text(yaml.safe_dump({"name": "child", "title": "T", "community": "C", "extends": "base"}))
    with pytest.raises(RulebookError) as caught:
        load_rulebook(rules / "child.yaml", rules_dir=rules)
    assert "not found" in caught.value.problems[0].message


# --- 9. train writes a new folder; feedback export names the make run Redis -------------------------


def test_train_defaults_to_a_new_folder_and_checks_its_datasets_first(tmp_path: Path) -> None:
    help_text = cli("train", "--help", env={"COLUMNS": "200"})
    assert "trained-embedded" in help_text.stdout and "[default: models/embedded]" not in help_text.stdout
    line = one_clear_line(cli("train", cwd=tmp_path))
    assert "../shared/datasets" in line and "--datasets" in line


def test_feedback_export_without_redis_names_the_make_run_url() -> None:
    line = one_clear_line(cli("feedback", "export"))
    assert "MODERATION_REDIS_URL=redis://127.0.0.1:6390/0" in line


def test_unusable_settings_are_one_line_naming_the_variable() -> None:
    line = one_clear_line(cli("rules", "check", "rules/peer-support.yaml", env={"MODERATION_CALLBACK_ALLOWED_HOSTS": "forum.example.org"}))
    assert line.startswith("error: invalid settings: ") and "MODERATION_WEBHOOK_SECRET" in line
