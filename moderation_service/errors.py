"""Every error this service raises on purpose, in one tree.

    ModerationError
    ├── ConfigError            settings or key files that cannot be used
    │   └── ModelNotBuiltError a derived model file not built yet (run ``moderation-service models build``)
    ├── RulebookError          a rule file that is invalid (names file, line and rule id)
    ├── UnknownRulebookError   a community with no rulebook
    ├── InputError             a request the pipeline refuses
    │   └── TextTooLongError   text over the configured limit (HTTP 413)
    ├── NotFoundError          no such submission, decision or open escalation (404)
    ├── ClassifierError        a model that failed or timed out (the pipeline degrades, never raises)
    ├── OverloadedError        the model queue is full; a sync request without a deadline is shed (503 + Retry-After)
    ├── StoreError             the decision store (Redis)
    │   ├── StoreUnavailable   Redis cannot be reached (503 + Retry-After)
    │   └── IdempotencyConflict the same post_id submitted before with other text (409)
    └── AuthError              missing or invalid API key (401)
        └── ForbiddenError     a valid key without the scope (403)

Foreign exceptions (yaml, re2, onnxruntime) are wrapped where they enter, with ``raise ... from``.
Messages never contain post text or author identifiers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = [
    "AuthError",
    "ClassifierError",
    "ConfigError",
    "ForbiddenError",
    "IdempotencyConflict",
    "InputError",
    "ModelNotBuiltError",
    "ModerationError",
    "NotFoundError",
    "OverloadedError",
    "Problem",
    "RulebookError",
    "StoreError",
    "StoreUnavailable",
    "TextTooLongError",
    "UnknownRulebookError",
    "load_each",
]


class ModerationError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigError(ModerationError):
    pass


class ModelNotBuiltError(ConfigError):
    """A constructor found a derived model file missing: building it is slow, so it is done explicitly, never on first use."""

    def __init__(self, path: object) -> None:
        super().__init__(f"model file {path} is not built: run `moderation-service models build` (or start through bootstrap)")
        self.path = path


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a rule file, located for the person who has to fix it."""

    file: str
    line: int | None
    rule_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        rule = f" rule {self.rule_id}:" if self.rule_id else ""
        return f"{where}:{rule} {self.message}"


class RulebookError(ModerationError):
    """A rule file that cannot be used; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


T = TypeVar("T")


def load_each(paths: Iterable[Path], load: Callable[[Path], T]) -> list[T]:
    """Load every file; the problems of all of them are raised together, so one run names everything to fix."""
    loaded: list[T] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            loaded.append(load(path))
        except RulebookError as exc:
            problems += exc.problems
    if problems:
        raise RulebookError(problems)
    return loaded


class UnknownRulebookError(ModerationError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown community {name!r}; known: {', '.join(known)}")


class InputError(ModerationError):
    pass


class TextTooLongError(InputError):
    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit
        super().__init__(f"text has {length} characters; the limit is {limit}")


class NotFoundError(ModerationError):
    """What a request names does not exist (or its record has expired)."""


class ClassifierError(ModerationError):
    pass


class OverloadedError(ModerationError):
    """More model work is queued than the process may hold: shed now rather than answer late."""


class StoreError(ModerationError):
    """Base of the decision store's errors; Redis errors are wrapped into these where they enter."""


class StoreUnavailable(StoreError):
    """Redis cannot be reached; the API answers 503 with Retry-After."""


class IdempotencyConflict(StoreError):
    """The same (key, post_id) was submitted before with a different text."""


class AuthError(ModerationError):
    pass


class ForbiddenError(AuthError):
    pass
