"""Node clients against a real server: ``googleapis-common`` (what the ``googleapis`` package builds Perspective's
client from) generates its methods from our discovery document and slices spans with JavaScript string indices.

The Node packages are pinned in ``tests/node/package-lock.json``; the fixture installs them with ``npm ci``
when ``tests/node/node_modules`` is missing (``scripts/system-deps --test`` installs node and npm).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Keys, Server

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="session")
def node_clients() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed (scripts/system-deps --test installs them)"
    if not (NODE_DIR / "node_modules" / "googleapis-common").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600, capture_output=True)
    return NODE_DIR


def test_googleapis_common_client(server: Server, keys: Keys, node_clients: Path) -> None:
    text = "😀😀 Lovely day. [fake toxicity=0.95] You are vile."
    run = subprocess.run(
        ["node", "perspective_client.js", server.url, keys.moderate, text], cwd=node_clients, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["spans"] == ["😀😀 Lovely day.", "[fake toxicity=0.95] You are vile."], "UTF-16 offsets slice right in JavaScript"
    assert result["values"] == [0.0, 0.95] and result["summary"] == 0.95
    assert result["detectedLanguages"] == ["en"] and result["clientToken"] == "node-1"
