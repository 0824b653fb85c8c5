"""Invalid rule files are refused with file, line and rule id; extends and the CLI exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from moderation_service.cli import app
from moderation_service.core.rulebook import load_rulebook
from moderation_service.errors import RulebookError
from moderation_service.service.rule_files import run_file_tests

RULES = Path(__file__).resolve().parent.parent / "rules"
HEADER = (
    "name: t\ntitle: T\ncommunity: C\ncategories:\n  c: {title: C, text: be nice}\n  care: {title: Care, text: support, support: true}\n"
)


def write(tmp_path: Path, body: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(RulebookError) as caught:
        load_rulebook(path)
    return [str(p) for p in caught.value.problems]


def test_unknown_key_is_refused_with_line_and_rule_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules:\n  - id: r1\n    category: c\n    description: d\n    action: hold\n    match: {any: {phrases: [x]}}\n    colour: red\n",
    )
    [message] = problems(path)
    assert f"{path}:13: rule r1:" in message and "colour" in message


def test_regex_re2_cannot_compile_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, "rules:\n  - id: look\n    category: c\n    description: d\n    action: hold\n    match: {any: {regex: ['(?<=a)b']}}\n"
    )
    [message] = problems(path)
    assert "rule look:" in message and "RE2 cannot compile" in message and ":12:" in message


def test_catastrophic_regex_is_fine_because_re2_is_linear(tmp_path: Path) -> None:
    path = write(
        tmp_path, "rules:\n  - id: evil\n    category: c\n    description: d\n    action: hold\n    match: {any: {regex: ['(a+)+$']}}\n"
    )
    book = load_rulebook(path)
    from moderation_service.core.author import AuthorFacts
    from moderation_service.core.normalise import normalise

    # A backtracking engine takes exponential time here; RE2 answers at once.
    assert book.matcher.match({"body": normalise("a" * 5000 + "!")}, AuthorFacts(), "GB") == []
    assert [h.rule.id for h in book.matcher.match({"body": normalise("a" * 5000)}, AuthorFacts(), "GB")] == ["evil"]


def test_semantic_problems_are_all_reported(tmp_path: Path) -> None:
    body = (
        "rules:\n"
        "  - {id: a, category: nope, description: d, action: hold, match: {any: {phrases: [x]}}}\n"
        "  - {id: a, category: c, description: d, action: hold, match: {any: {phrases: [y]}}}\n"
        "  - {id: sad, category: care, description: d, action: hold, match: {any: {phrases: [z]}}}\n"
        "tests:\n  - {text: hi, triggers: [ghost]}\n"
    )
    found = problems(write(tmp_path, body))
    joined = "\n".join(found)
    assert "unknown category 'nope'" in joined
    assert "duplicate rule id 'a'" in joined
    assert "may not 'hold' alone" in joined and "must set signpost" in joined
    assert "unknown rule 'ghost'" in joined
    assert len(found) == 5


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - id: [unclosed\n")
    [message] = problems(path)
    assert str(path) in message and "invalid YAML" in message


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "title: again\n")
    [message] = problems(path)
    assert "duplicate key 'title'" in message


def test_extends_overrides_and_disables(tmp_path: Path) -> None:
    base = write(
        tmp_path,
        "rules:\n  - {id: a, category: c, description: d, action: hold, match: {any: {phrases: [apple]}}}\n"
        "  - {id: b, category: c, description: d, action: hold, match: {any: {phrases: [banana]}}}\n",
        "base.yaml",
    )
    child = tmp_path / "child.yaml"
    child.write_text(
        f"name: child\ntitle: T\ncommunity: C\nextends: {base.name}\ndisable: [b]\n"
        "rules:\n  - {id: a, category: c, description: d, action: escalate, match: {any: {phrases: [apple]}}}\n"
        "  - {id: c, category: c, description: d, action: hold, match: {any: {phrases: [cherry]}}}\n"
    )
    book = load_rulebook(child)
    assert [(r.id, r.action.value) for r in book.rules] == [("a", "escalate"), ("c", "hold")]
    assert book.version != load_rulebook(base).version


def test_extends_cycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("name: x\ntitle: T\ncommunity: C\nextends: y.yaml\n")
    (tmp_path / "y.yaml").write_text("name: y\ntitle: T\ncommunity: C\nextends: x.yaml\n")
    assert "extends cycle" in problems(tmp_path / "x.yaml")[0]


def test_example_rulebooks_are_valid_and_pass_their_tests() -> None:
    runner = CliRunner()
    for path in sorted((RULES / "examples").glob("*.yaml")):
        result = runner.invoke(app, ["rules", "test", str(path)])
        assert result.exit_code == 0, result.output


def test_cli_rules_check_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["rules", "check", str(RULES / "peer-support.yaml")])
    assert good.exit_code == 0 and "ok" in good.output
    bad = write(tmp_path, "rules:\n  - {id: r, category: c, description: d, action: maybe, match: {any: {phrases: [x]}}}\n")
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:8: rule r:" in result.output


def test_cli_rules_test_reports_failures_and_exits_1(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules:\n  - {id: r, category: c, description: d, action: hold, match: {any: {phrases: [apple]}}}\n"
        "tests:\n  - {text: an apple, triggers: [r]}\n  - {text: a pear, triggers: [r]}\n",
    )
    result = CliRunner().invoke(app, ["rules", "test", str(path)])
    assert result.exit_code == 1
    assert "1 passed, 1 failed" in result.output and "a pear" in result.output


def test_cli_rules_render_md_and_html(tmp_path: Path) -> None:
    runner = CliRunner()
    md = runner.invoke(app, ["rules", "render", str(RULES / "peer-support.yaml"), "--format", "md"])
    assert md.exit_code == 0 and md.output.startswith("# Our community code of conduct")
    assert "It's OK not to be OK" in md.output
    target = tmp_path / "coc.html"
    html = runner.invoke(app, ["rules", "render", str(RULES / "peer-support.yaml"), "--format", "html", "-o", str(target)])
    assert html.exit_code == 0
    page = target.read_text()
    assert page.startswith("<!doctype html>") and "<h2>No selling</h2>" in page


US_PHONE_RULE = "rules:\n  - {id: phone, category: c, description: d, action: hold, match: {any: {detect: [phone_number]}}}\n"


def test_a_rule_test_runs_in_its_own_locale(tmp_path: Path) -> None:
    """A US number is a phone number for an en-US test, as it would be for an en-US post (it was read as GB)."""
    path = write(
        tmp_path,
        US_PHONE_RULE + "tests:\n  - {text: 'ring me on (415) 555-2671', locale: en-US, triggers: [phone]}\n"
        "  - {text: 'ring me on (415) 555-2671', not_triggers: [phone]}\n",
    )
    assert run_file_tests(path, RULES, "en-GB") == (2, [])


def test_a_rule_test_without_locale_runs_in_the_default_locale(tmp_path: Path) -> None:
    path = write(tmp_path, US_PHONE_RULE + "tests:\n  - {text: 'ring me on (415) 555-2671', triggers: [phone]}\n")
    assert run_file_tests(path, RULES, "en-US") == (1, [])
    total, failures = run_file_tests(path, RULES, "en-GB")
    assert total == 1 and [f.expected for f in failures] == ["triggers phone"]
