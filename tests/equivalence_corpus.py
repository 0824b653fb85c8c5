"""A fixed, varied set of posts and what the rules-only pipeline decided for them, to prove speed work changes nothing.

The posts come from project text only (README examples, ``models/training_data`` crisis and abuse corpora,
``handwritten.yaml``, ``tests/data/crisis_examples`` for every shipped grammar language), plus long posts
joined from them and posts with a title, each with and without a locale. They are stored beside the
decisions in ``tests/data/equivalence/decisions.jsonl.gz``, so later edits to those corpora do not move the
baseline. ``tests/test_stage_equivalence.py`` runs the same posts through the current code and compares.

Regenerate (only from a commit whose decisions are the reference, e.g. the one before a speed change):
``.venv/bin/python -m tests.equivalence_corpus``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from moderation_service.bootstrap import build_pipeline
from moderation_service.config import ModelSettings, Settings
from moderation_service.core.normalise import normalise
from moderation_service.core.pipeline import Pipeline, Post

__all__ = ["GOLDEN", "corpus", "outcome", "rules_fingerprint", "rules_only_pipeline"]

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "data" / "equivalence" / "decisions.jsonl.gz"
_LOCALES = {"en": "en-GB", "es": "es-ES", "fr": "fr-FR", "de": "de-DE", "it": "it-IT", "pt": "pt-PT", "pl": "pl-PL", "cy": "cy-GB"}


def _jsonl_texts(folder: str, every: int) -> list[str]:
    texts = []
    for path in sorted((ROOT / "models" / "training_data" / folder).glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        texts += [json.loads(line)["text"] for line in lines[::every] if line.strip()]
    return texts


def _examples() -> list[tuple[str, str]]:
    """(text, language) for every sentence of every non-English grammar's examples file."""
    out = []
    for path in sorted((ROOT / "tests" / "data" / "crisis_examples").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for sentences in data.get("examples", {}).values():
            out += [(s, data["language"]) for s in sentences]
        out += [(s, data["language"]) for s in data.get("must_not_fire", [])]
    return out


def _readme() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return sorted(set(re.findall(r'"text": "([^"]+)"', text)) | set(re.findall(r'\btext: "([^"]+)"', text)))


def _handwritten() -> list[str]:
    data = yaml.safe_load((ROOT / "models" / "training_data" / "handwritten.yaml").read_text(encoding="utf-8"))
    return [text for group in data["groups"] for text in group["texts"]]


def corpus() -> Iterator[Post]:
    """The posts, in a fixed order: short ones, then long ones joined from them, then titled ones."""
    english = [*_readme(), *_handwritten(), *_jsonl_texts("crisis", 3), *_jsonl_texts("abuse", 1), *_jsonl_texts("abuse_train", 4)]
    for i, text in enumerate(english):
        yield Post(text=text, locale=(None, "en-GB", "en-US", "fr-FR")[i % 4])
    for text, language in _examples():
        yield Post(text=text, locale=_LOCALES[language])
        yield Post(text=text)
    for i in range(0, len(english) - 8, 23):  # long posts: a sentence's neighbours matter (timing, context)
        joiner = ("\n", ". ", " ", "\n\n")[i % 4]
        yield Post(text=joiner.join(english[i : i + 3 + i % 6]), locale=(None, "en-GB")[i % 2])
    examples = _examples()
    for i in range(0, len(examples) - 4, 7):
        yield Post(text=" ".join(t for t, _ in examples[i : i + 4]), locale=(None, _LOCALES[examples[i][1]])[i % 2])
    for i in range(0, len(english) - 1, 31):
        yield Post(title=english[i], text=english[i + 1], locale="en-GB")


def rules_fingerprint() -> str:
    """A hash of every rule, grammar, lexicon and signposting file: decisions may change when these do."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "rules").rglob("*.yaml")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def rules_only_pipeline() -> Pipeline:
    pipeline = build_pipeline(Settings(models=ModelSettings(classifiers=[])))
    assert pipeline.crisis is not None
    pipeline.crisis.warm()
    return pipeline


def outcome(pipeline: Pipeline, post: Post) -> dict[str, Any]:
    """Every decision field but the timings (signposting as resource ids), and the crisis finding itself."""
    decision = pipeline.moderate(post).model_dump(mode="json", exclude={"timings_ms"})
    if decision["signposting"]:
        decision["signposting"]["resources"] = [r["id"] for r in decision["signposting"]["resources"]]
    assert pipeline.crisis is not None
    fields = {"body": normalise(post.text), **({"title": normalise(post.title)} if post.title else {})}
    finding = pipeline.crisis.detect(fields, post.locale)
    return {
        "decision": decision,
        "language": {"language": finding.language.language, "candidates": list(finding.language.candidates)},
        "signals": sorted([s.dimension.value, s.field, s.start, s.end, s.language] for s in finding.signals),
    }


def main() -> None:
    pipeline = rules_only_pipeline()
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(GOLDEN, "wt", encoding="utf-8", compresslevel=9) as out:
        out.write(json.dumps({"rules": rules_fingerprint()}) + "\n")
        for post in corpus():
            record = {"post": {"text": post.text, "title": post.title, "locale": post.locale}, **outcome(pipeline, post)}
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    pipeline.close()


if __name__ == "__main__":
    main()
