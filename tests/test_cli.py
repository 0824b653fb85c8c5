from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from moderation_service.cli import app
from moderation_service.keys import KeyStore

RULES = Path(__file__).resolve().parent.parent / "rules"


def test_classify_writes_one_line_per_valid_input_in_order(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": 1, "text": "you idiot"}),
        json.dumps({"id": "two", "text": "I want to die", "locale": "en-US"}),
        "this is not json",
        json.dumps({"id": 3}),
        json.dumps({"id": 4, "text": "has anyone tried hydrotherapy?", "title": "pool"}),
    ]
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["classify", str(source), "-o", str(target)])
    assert result.exit_code == 1
    assert f"{source}:3: skipped" in result.output and f"{source}:4: skipped" in result.output
    decisions = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(d["id"], d["action"]) for d in decisions] == [(1, "hold"), ("two", "escalate"), (4, "allow")]
    assert decisions[1]["signposting"]["country"] == "US"
    assert {"reasons", "scores", "content_warnings", "priority"} <= set(decisions[0])


def test_classify_with_a_rulebook_path(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": 1, "text": "This detox diet got me off insulin"}) + "\n")
    result = CliRunner().invoke(app, ["classify", str(source), "--rulebook", str(RULES / "examples" / "diabetes-forum.yaml")])
    assert result.exit_code == 0
    decision = json.loads(result.stdout.strip().splitlines()[-1])
    assert decision["action"] == "hold" and decision["rulebook"]["name"] == "diabetes-forum"


def test_classify_unknown_rulebook_fails_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": 1, "text": "hi"}) + "\n")
    result = CliRunner().invoke(app, ["classify", str(source), "--rulebook", "nope"])
    assert result.exit_code == 2 and "unknown community" in result.output


def test_keys_create_prints_a_working_key_and_line() -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--scope", "moderate", "--scope", "admin"])
    assert result.exit_code == 0
    token = next(word for word in result.output.split() if word.startswith("msk_"))
    line = result.output.strip().splitlines()[-1]
    store = KeyStore.from_lines(line)
    assert store.authenticate(token, "admin").scopes == {"moderate", "admin"}


def test_keys_create_refuses_unknown_scope() -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--scope", "root"])
    assert result.exit_code == 2 and "scopes must be" in result.output
