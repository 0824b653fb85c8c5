"""Read YAML while remembering the line of every key, so errors can name file and line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from moderation_service.errors import Problem, RulebookError

__all__ = ["LocatedYaml", "read_located_yaml"]

Loc = tuple[str | int, ...]
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster on big files


class LocatedYaml:
    """A parsed document plus a map from each key path to its 1-based line."""

    def __init__(self, path: Path, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest part of ``loc`` that exists in the file."""
        for cut in range(len(loc), -1, -1):
            found = self.lines.get(tuple(loc[:cut]))
            if found is not None:
                return found
        return None

    def rule_id(self, loc: Sequence[str | int]) -> str | None:
        """The id of the rule ``loc`` points into, when it points into one and it has an id."""
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(self.data, dict):
            rules = self.data.get("rules")
            if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
                rule_id = rules[loc[1]].get("id")
                return str(rule_id) if rule_id is not None else None
        return None

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        return Problem(str(self.path), self.line(loc), self.rule_id(loc), message)


def _index(node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[str]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(f"{key_node.start_mark.line + 1}:duplicate key {key!r}")
            seen.add(key)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _index(value_node, (*loc, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), lines, problems)


def read_located_yaml(path: Path) -> LocatedYaml:
    """Parse ``path``; a syntax error or duplicate key raises RulebookError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulebookError([Problem(str(path), None, None, f"cannot read file: {exc.__class__.__name__}")]) from exc
    try:
        loader = _LOADER(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise RulebookError([Problem(str(path), line, None, f"invalid YAML: {reason}")]) from exc
    lines: dict[Loc, int] = {}
    duplicates: list[str] = []
    if node is not None:
        _index(node, (), lines, duplicates)
    if duplicates:
        problems = []
        for entry in duplicates:
            line, message = entry.split(":", 1)
            problems.append(Problem(str(path), int(line), None, message))
        raise RulebookError(problems)
    return LocatedYaml(path, data, lines)
