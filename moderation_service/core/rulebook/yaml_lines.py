"""Read YAML while remembering the line of every key, so errors can name file and line.

Aliases (``*name``) are allowed (rule files share regex lists with them) but bounded: a few hundred bytes
of nested aliases can stand for billions of nodes ("billion laughs"), so the composed node graph is
measured first, each distinct node once, and a document that would expand past ``MAX_NODES`` is refused
before it is indexed or built. Errors name the line and what was expected, never the file's own text
(a file may not be what it claims to be).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from moderation_service.errors import Problem, RulebookError

__all__ = ["MAX_NODES", "LocatedYaml", "read_located_yaml"]

Loc = tuple[str | int, ...]
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster on big files
MAX_NODES = 200_000  # the shipped rulebook expands to about 2,000 nodes; a 462-byte alias bomb to hundreds of millions


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


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes the document has once every alias is expanded; each distinct node is counted once (memo)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, memo) for item in node.value)
    memo[id(node)] = size
    return size


def _check_size(node: yaml.Node, path: Path) -> None:
    """RulebookError when aliases expand the document past MAX_NODES ("billion laughs"), before it is indexed or built."""
    try:
        size = _expanded_size(node, {})
    except RecursionError as exc:
        raise RulebookError([Problem(str(path), None, None, "the YAML is nested too deeply")]) from exc
    if size > MAX_NODES:
        message = f"the YAML expands to more than {MAX_NODES:,} nodes through its aliases (*name): refused as an alias bomb"
        raise RulebookError([Problem(str(path), None, None, message)])


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
            if node is not None:
                _check_size(node, path)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        # ``problem`` says what the parser expected; ``str(exc)`` would quote the file's lines.
        reason = getattr(exc, "problem", None) or "the file is not valid YAML"
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
