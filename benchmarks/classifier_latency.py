"""Embedded classifier latency (one thread) next to a Detoxify-shaped BERT-base in the same run.

Run: ``.venv/bin/python benchmarks/classifier_latency.py`` (writes results/classifier_latency.{json,md}).
The BERT-base has random weights: only its cost matters here. Both run on one thread.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import timed, words, write  # noqa: E402


def main() -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast  # type: ignore[attr-defined]

    from moderation_service.bootstrap import build_classifiers
    from moderation_service.config import ModelSettings

    torch.set_num_threads(1)
    [embedded] = build_classifiers(ModelSettings(classifiers=["embedded"], model_threads=1))
    iterations = int(os.environ.get("BENCH_ITERATIONS", "300"))
    rows: dict[str, dict[str, float]] = {}
    for n in (20, 50, 500):
        text = words(n)
        rows[f"embedded int8 ONNX, {n} words"] = timed(functools.partial(embedded.predict, [text]), iterations)

    # Detoxify 'original' is bert-base-uncased with a 6-label head; random weights, same shapes.
    bert = BertForSequenceClassification(BertConfig(num_labels=6)).eval()  # type: ignore[call-arg, no-untyped-call]
    from moderation_service.core.classifiers.minilm_model import backbone_path

    tokenizer = BertTokenizerFast.from_pretrained(str(backbone_path()))  # same uncased WordPiece vocabulary size class
    text = words(50)

    def bert_once() -> None:
        with torch.no_grad():
            bert(**tokenizer([text], return_tensors="pt", truncation=True, max_length=512))

    rows["BERT-base (Detoxify-shaped) torch fp32, 50 words"] = timed(bert_once, max(50, iterations // 5), warmup=3)
    ratio = rows["BERT-base (Detoxify-shaped) torch fp32, 50 words"]["p50_ms"] / rows["embedded int8 ONNX, 50 words"]["p50_ms"]
    lines = ["| model, post length | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |" for name, r in rows.items()]
    lines.append(f"\nBERT-base / embedded at 50 words (p50): **{ratio:.1f}x**. One thread each, all five categories in one pass.\n")
    path = write("classifier_latency", {"rows": rows, "bert_over_embedded_p50": round(ratio, 2)}, "\n".join(lines))
    sys.stdout.write("\n".join(lines) + f"\nwritten {path}\n")


if __name__ == "__main__":
    main()
