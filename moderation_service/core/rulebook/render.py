"""Publish the code of conduct from the same rulebook that is enforced, so the two cannot drift."""

from __future__ import annotations

import html
from collections import defaultdict

from moderation_service.core.decision import Action
from moderation_service.core.rulebook.loader import Rulebook

__all__ = ["render_html", "render_markdown"]

_WHAT_HAPPENS = {
    Action.allow: "Your post stays up.",
    Action.hold: "Your post is held until a moderator has looked at it.",
    Action.escalate: "A moderator is alerted straight away.",
}


def _sections(book: Rulebook) -> list[tuple[str, str, bool, list[tuple[str, str]]]]:
    rules_by_category: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rule in book.rules:
        consequence = _WHAT_HAPPENS[rule.action]
        if rule.signpost:
            consequence += " We will also point you to support."
        rules_by_category[rule.category].append((rule.description, consequence))
    return [(c.title, c.text, c.support, rules_by_category.get(key, [])) for key, c in book.categories.items()]


def render_markdown(book: Rulebook) -> str:
    lines = [f"# {book.title}", "", f"*{book.community}* · rulebook `{book.name}` version `{book.version}`", ""]
    if book.intro:
        lines += [book.intro.strip(), ""]
    for title, text, support, rules in _sections(book):
        lines += [f"## {title}", "", text.strip(), ""]
        if support:
            lines += ["_This is about support, not breaking rules: nobody is removed for saying they are struggling._", ""]
        lines += [f"- {description} {consequence}" for description, consequence in rules]
        if rules:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_html(book: Rulebook) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(book.title)}</title></head><body>",
        f"<h1>{e(book.title)}</h1>",
        f"<p><em>{e(book.community)}</em> · rulebook <code>{e(book.name)}</code> version <code>{e(book.version)}</code></p>",
    ]
    if book.intro:
        parts.append(f"<p>{e(book.intro.strip())}</p>")
    for title, text, support, rules in _sections(book):
        parts += [f"<section><h2>{e(title)}</h2>", f"<p>{e(text.strip())}</p>"]
        if support:
            parts.append("<p><em>This is about support, not breaking rules: nobody is removed for saying they are struggling.</em></p>")
        if rules:
            parts.append("<ul>" + "".join(f"<li>{e(d)} {e(c)}</li>" for d, c in rules) + "</ul>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
