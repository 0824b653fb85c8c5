"""HTML bodies as the text a reader sees, so rules and models judge words, not markup.

Coral sends comment bodies as HTML by default (``kill&nbsp;myself``, ``kill<br>myself``): matched as
markup, such a comment slips past every rule. The standard library's HTML parser (tolerant of broken
markup, entities decoded) does the parsing; this module only decides where lines break: block
elements end a line, ``<br>`` reads as a space (editors put it inside sentences:
``kill<br>myself`` is one phrase), ``<blockquote>`` lines are kept as ``> `` quotes so a rule can tell
quoted words from the author's own, and scripts and styles are dropped.
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["html_to_text"]

_BLOCKS = frozenset(
    "address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre "
    "section table tbody td tfoot th thead tr ul".split()
)
_DROPPED = frozenset({"script", "style", "template", "head", "title"})
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2007": " "})  # no-break spaces read as spaces


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._quote_depth = 0
        self._dropped_depth = 0

    def _break(self) -> None:
        text = " ".join("".join(self._line).split())
        if text:
            self.lines.append("> " * self._quote_depth + text)
        self._line = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropped_depth += 1
        elif tag == "br":
            self._line.append(" ")
        elif tag in _BLOCKS:
            self._break()
            if tag == "blockquote":
                self._quote_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._line.append(" ")
        elif tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._dropped_depth = max(0, self._dropped_depth - 1)
        elif tag in _BLOCKS:
            self._break()
            if tag == "blockquote":
                self._quote_depth = max(0, self._quote_depth - 1)

    def handle_data(self, data: str) -> None:
        if not self._dropped_depth:
            self._line.append(data.translate(_SPACES))


def html_to_text(html: str) -> str:
    """The visible text, one line per block; entities decoded; quoted lines start with ``> ``."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    collector._break()
    return "\n".join(collector.lines)
