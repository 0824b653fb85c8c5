"""Checks the CLI makes before slow work, each failing with one line that names the file or option and the fix.

A newcomer's typo (a column name, a task, a missing folder) should cost one line of output, not a
traceback after a model has loaded.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from moderation_service.errors import ConfigError

__all__ = ["CliError", "check_choice", "check_csv_columns", "check_datasets", "describe_os_error"]


class CliError(ConfigError):
    """A command-line mistake: the message is the whole answer (printed as one line, exit 2)."""


def check_csv_columns(path: Path, columns: dict[str, str]) -> None:
    """``columns`` maps an option (``--text-col``) to the column it names; each must be in the CSV's header."""
    if not path.is_file():
        raise CliError(f"{path}: no such file: give the path of a labelled CSV")
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), [])
    for option, column in columns.items():
        if column not in header:
            known = ", ".join(header) or "none: the file is empty"
            raise CliError(f"{path}: no column {column!r} (columns: {known}); pass {option} with one of them")


def check_choice(option: str, value: str, valid: Iterable[str]) -> None:
    choices = sorted(valid)
    if value not in choices:
        raise CliError(f"unknown {option} {value!r}: choose one of {', '.join(choices)}")


def check_datasets(folder: Path) -> None:
    if not folder.is_dir():
        raise CliError(f"shared datasets not found at {folder}: pass --datasets PATH (the folder holding tweeteval_offensive/, ...)")


def describe_os_error(exc: OSError) -> str:
    """A file error as one line: which file, what went wrong."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc.__class__.__name__}: check the path and its permissions"
