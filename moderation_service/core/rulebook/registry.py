"""The live rulebooks, by name, with reload that never replaces a good rulebook by a bad one."""

from __future__ import annotations

import threading
from pathlib import Path

from moderation_service.core.rulebook.loader import Rulebook, load_rulebook
from moderation_service.errors import Problem, RulebookError, UnknownRulebookError, load_each

__all__ = ["RulebookSet"]


class RulebookSet:
    """Every ``*.yaml`` directly in the rules folder is a live rulebook, named by its ``name``."""

    def __init__(
        self,
        folder: Path,
        default: str,
        helpline_numbers: frozenset[str] = frozenset(),
        files: list[Path] | None = None,
        rules_dir: Path | None = None,
    ) -> None:
        self.folder = folder
        self.rules_dir = rules_dir or folder  # where ``extends`` finds rulebooks besides a file's own folder
        self.default = default
        self._files = files
        self._numbers = helpline_numbers
        self._lock = threading.Lock()
        self._books: dict[str, Rulebook] = {}

    def _load_all(self) -> dict[str, Rulebook]:
        loaded = load_each(
            self._files or sorted(self.folder.glob("*.yaml")), lambda path: load_rulebook(path, self._numbers, self.rules_dir)
        )
        books = {book.name: book for book in loaded}
        if self.default not in books:
            raise RulebookError([Problem(str(self.folder), None, None, f"default rulebook {self.default!r} not found")])
        return books

    def reload(self) -> dict[str, str]:
        """Load everything again; on any problem raise and keep the current set live."""
        books = self._load_all()
        with self._lock:
            self._books = books
        return {name: book.version for name, book in books.items()}

    def get(self, name: str | None) -> Rulebook:
        books = self._books
        book = books.get(name or self.default)
        if book is None:
            raise UnknownRulebookError(name or self.default, sorted(books))
        return book

    def all(self) -> list[Rulebook]:
        return [self._books[name] for name in sorted(self._books)]

    @property
    def loaded(self) -> bool:
        return bool(self._books)
