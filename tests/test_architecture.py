"""The layout's arrows are enforced: the import-linter contracts in pyproject.toml must all be kept."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    """core imports nothing outside core (errors aside); api, workers and the CLI reach it only via service and bootstrap."""
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0
