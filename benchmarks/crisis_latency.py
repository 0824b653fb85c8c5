"""What the crisis stage costs per post: language detection plus every plausible language's grammar.

Run: .venv/bin/python benchmarks/crisis_latency.py  (warm-up, 300 iterations per length; quiet machine)
Results: benchmarks/results/crisis_latency.{json,md}. The grammars run for every post on every path
(sync, queue, Coral, Perspective), so this adds to the pipeline figures measured in core_latency.py.
"""

from __future__ import annotations

import functools

from common import timed, words, write

from moderation_service.config import Settings
from moderation_service.core.crisis import CrisisDetector, LanguageDetector, load_grammars


def main() -> None:
    detector = CrisisDetector(load_grammars(Settings().rules.rules_dir / "crisis"), LanguageDetector())
    detector.warm()
    rows: dict[int | str, dict[str, dict[str, float]]] = {}
    for n in (10, 50, 200, 1000):
        text = words(n)
        rows[n] = {
            "language": timed(functools.partial(detector.languages.detect, text, "en-GB"), 300),
            "whole_stage": timed(functools.partial(detector.detect, {"body": text}, "en-GB"), 300),
        }
    spanish = "ya no quiero vivir, tengo las pastillas preparadas y hoy no puedo más con el dolor"
    rows["es"] = {"whole_stage": timed(lambda: detector.detect({"body": spanish}, None), 300)}
    lines = [
        "# Crisis stage latency (1 thread)",
        "",
        "| post | language detection p50 / p99 ms | whole stage p50 / p95 / p99 ms |",
        "|---|---|---|",
    ]
    for key, row in rows.items():
        lang = row.get("language")
        whole = row["whole_stage"]
        label = f"{key} words (English)" if isinstance(key, int) else "Spanish, no locale (es + en grammars)"
        lang_text = f"{lang['p50_ms']} / {lang['p99_ms']}" if lang else "–"
        lines.append(f"| {label} | {lang_text} | {whole['p50_ms']} / {whole['p95_ms']} / {whole['p99_ms']} |")
    path = write("crisis_latency", {"rows": {str(k): v for k, v in rows.items()}}, "\n".join(lines) + "\n")
    print(path)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
