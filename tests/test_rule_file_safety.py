"""Rule files cannot read other files, cannot hang a reload with an alias bomb, and are never echoed in errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moderation_service.core.rulebook import load_rulebook
from moderation_service.errors import RulebookError

ROOT = Path(__file__).resolve().parent.parent
HEADER = "name: t\ntitle: T\ncommunity: C\ncategories:\n  c: {title: C, text: be nice}\n"
RULE = "rules:\n  - {id: c.x, category: c, description: d, action: hold, match: {any: {regex: ['{{words}}']}}}\n"
SHADOW = "root:$6$Zq0xSECRETHASH$abc:19000:0:99999:7:::\ndescription: d\nsource: s\nchecked: 2026-01-01\nterms: [x]\n"

# Nine levels of nine aliases: 462 bytes that stand for 9**9 (387 million) strings.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def problems(path: Path, rules_dir: Path | None = None) -> list[str]:
    with pytest.raises(RulebookError) as caught:
        load_rulebook(path, rules_dir=rules_dir)
    return [str(p) for p in caught.value.problems]


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(HEADER + BOMB)
    assert len(BOMB) < 600
    [message] = problems(path)
    assert str(path) in message and "alias bomb" in message


def test_aliases_within_bounds_still_work(tmp_path: Path) -> None:
    """The shipped rulebook shares regex lists through aliases; a small file doing the same loads."""
    path = tmp_path / "t.yaml"
    rule = "  - {{id: c.{n}, category: c, description: d, action: hold, match: {{any: {{regex: *shared}}}}}}\n"
    first = rule.format(n=1).replace("*shared", "&shared ['\\bfoo\\b']")
    path.write_text(HEADER + "rules:\n" + first + rule.format(n=2))
    book = load_rulebook(path)
    assert [r.id for r in book.rules] == ["c.1", "c.2"] and book.rules[1].match.any is not None


def test_the_cli_refuses_an_alias_bomb_with_one_line(tmp_path: Path) -> None:
    """A real process: `rules check` answers at once with file and reason (exit 2), not after minutes and gigabytes."""
    path = tmp_path / "bomb.yaml"
    path.write_text(HEADER + BOMB)
    ran = subprocess.run(
        [sys.executable, "-m", "moderation_service", "rules", "check", str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert ran.returncode == 2 and "alias bomb" in ran.stdout + ran.stderr


@pytest.mark.parametrize("reference", ["../outside/shadow.yaml", "{outside}/shadow.yaml", "lexicons/link.yaml", "~/shadow.yaml"])
def test_lexicon_files_are_confined_to_the_rules_folder(tmp_path: Path, reference: str) -> None:
    rules_dir, outside = tmp_path / "rules", tmp_path / "outside"
    (rules_dir / "lexicons").mkdir(parents=True)
    outside.mkdir()
    (outside / "shadow.yaml").write_text(SHADOW)
    (rules_dir / "lexicons" / "link.yaml").symlink_to(outside / "shadow.yaml")  # a link leading out does not count
    path = rules_dir / "t.yaml"
    path.write_text(HEADER + f"lexicons: {{words: '{reference.format(outside=outside)}'}}\n" + RULE)
    found = problems(path, rules_dir)
    assert found and all("lexicon" in p for p in found)
    joined = "\n".join(found)
    assert "SECRETHASH" not in joined and "99999" not in joined


def test_lexicons_in_the_rules_folder_still_load(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    (rules_dir / "lexicons").mkdir(parents=True)
    (rules_dir / "lexicons" / "words.yaml").write_text("description: d\nsource: s\nchecked: 2026-01-01\nterms: [fooo]\n")
    path = rules_dir / "t.yaml"
    path.write_text(HEADER + "lexicons: {words: lexicons/words.yaml}\n" + RULE)
    assert load_rulebook(path, rules_dir=rules_dir).rules[0].id == "c.x"


def test_a_bad_lexicon_file_is_named_by_line_never_quoted(tmp_path: Path) -> None:
    (tmp_path / "words.yaml").write_text("root-SECRETHASH-line: x\n" + SHADOW.split("\n", 1)[1])
    path = tmp_path / "t.yaml"
    path.write_text(HEADER + "lexicons: {words: words.yaml}\n" + RULE)
    [message] = problems(path)
    assert f"{tmp_path / 'words.yaml'}:1:" in message and "SECRETHASH" not in message


@pytest.mark.parametrize("body", ["key: value\n  SECRETHASH: : broken\n", "SECRETHASH: [unclosed\n", "\tSECRETHASH\n"])
def test_yaml_syntax_errors_name_the_line_not_the_text(tmp_path: Path, body: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(body)
    [message] = problems(path)
    assert "invalid YAML" in message and str(path) in message and "SECRETHASH" not in message


def test_the_cli_never_echoes_a_broken_file(tmp_path: Path) -> None:
    """A real `rules check`: file and line, and none of the file's contents, in its output."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "t.yaml").write_text(HEADER + "extends: ../outside\n" + "SECRETHASH: [\n")
    env = {**os.environ, "MODERATION_RULES_DIR": str(rules_dir)}
    ran = subprocess.run(
        [sys.executable, "-m", "moderation_service", "rules", "check", str(rules_dir / "t.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert ran.returncode == 2 and "t.yaml" in ran.stdout + ran.stderr and "SECRETHASH" not in ran.stdout + ran.stderr
