"""A classifier factory that fails with an unexpected error, quoting a "post", for the crash-log test."""

from __future__ import annotations

from typing import NoReturn

__all__ = ["CRASH_TEXT", "exploding"]

CRASH_TEXT = "zqxjv the post someone wrote"


def exploding(options: object) -> NoReturn:
    raise RuntimeError(f"unexpected failure while reading {CRASH_TEXT!r}")
