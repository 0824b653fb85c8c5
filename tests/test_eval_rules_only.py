"""``eval --functional --rules-only``: a suite through the rulebook and crisis grammars alone, as a moderator checks a rules change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

CASES = {
    "functionality": "tiny_imminent",
    "description": "grammar-level wording only",
    "group": "risk",
    "cases": [
        {"id": "tiny-1", "text": "I'm going to kill myself tonight", "expect": "imminent"},
        {"id": "tiny-2", "text": "Had a lovely walk with the dog", "expect": "none"},
    ],
}


def test_rules_only_runs_a_suite_without_the_model(tmp_path: Path) -> None:
    suites = tmp_path / "suites" / "tiny"
    suites.mkdir(parents=True)
    (suites / "tiny_imminent.yaml").write_text(yaml.safe_dump(CASES), encoding="utf-8")
    env_models = tmp_path / "no-models"  # an empty models folder: loading the model here would fail
    env_models.mkdir()
    out = tmp_path / "out"
    cli = Path(sys.executable).with_name("moderation-service")
    args = [str(cli), "eval", "--functional", "tiny", "--suites-dir", str(tmp_path / "suites"), "--rules-only", "--out", str(out)]
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "MODERATION_MODELS_DIR": str(env_models)}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "functional-tiny.json").read_text(encoding="utf-8"))
    assert report["functionalities"]["tiny_imminent"]["correct"] == 2
