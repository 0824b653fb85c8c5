"""Classification core: stage latencies, throughput by batch size and threads, baselines, scaling.

Run: ``.venv/bin/python benchmarks/core_latency.py`` (about 5 minutes on 2 cores). Writes
results/core_latency.{json,md} and results/latency_vs_length.png, results/latency_vs_rules.png.
Baselines in the same run: a Detoxify-shaped BERT-base (random weights, torch), alt-profanity-check,
and TF-IDF + logistic regression trained here on TweetEval-offensive (if ../shared/datasets exists).
"""

from __future__ import annotations

import csv
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, timed, words, write  # noqa: E402

ITER = int(os.environ.get("BENCH_ITERATIONS", "300"))


def pipeline(classifiers: str, threads: int = 1):  # type: ignore[no-untyped-def]
    from moderation_service.bootstrap import build_pipeline
    from moderation_service.config import ModelSettings, PipelineSettings, Settings

    models = ModelSettings(classifiers=classifiers.split(",") if classifiers else [], model_threads=threads)
    return build_pipeline(Settings(models=models, pipeline=PipelineSettings(classifier_timeout_s=60)))


def stage_table() -> dict[str, dict[str, float]]:
    from moderation_service.core.pipeline import Post

    rows: dict[str, dict[str, float]] = {}
    for label, names in (("rules only", ""), ("rules + embedded model", "embedded")):
        pipe = pipeline(names)
        for n in (20, 50, 500):
            post = Post(text=words(n))
            for _ in range(10):
                pipe.moderate(post)
            stages: dict[str, list[float]] = {}
            for _ in range(ITER):
                for stage, ms in pipe.moderate(post).timings_ms.items():
                    stages.setdefault(stage, []).append(ms)
            for stage, samples in stages.items():
                samples.sort()
                rows[f"{label} | {n} words | {stage}"] = {
                    "p50_ms": round(samples[len(samples) // 2], 3),
                    "p95_ms": round(samples[int(len(samples) * 0.95)], 3),
                    "p99_ms": round(samples[int(len(samples) * 0.99)], 3),
                }
        pipe.close()
    return rows


def throughput() -> dict[str, float]:
    from moderation_service.core.pipeline import Post

    out: dict[str, float] = {}
    for threads in (1, 2):
        pipe = pipeline("embedded", threads)
        for batch in (1, 8, 32):
            posts = [Post(text=words(50)) for _ in range(batch)]
            pipe.moderate_batch(posts)
            rounds = max(3, 96 // batch)
            start = time.perf_counter()
            for _ in range(rounds):
                pipe.moderate_batch(posts)
            out[f"threads={threads} batch={batch}"] = round(rounds * batch / (time.perf_counter() - start), 1)
        pipe.close()
    return out


def baselines() -> dict[str, dict[str, float]]:
    import torch
    from profanity_check import predict_prob
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast  # type: ignore[attr-defined]

    from moderation_service.core.classifiers.minilm_model import backbone_path

    torch.set_num_threads(1)
    text = words(50)
    rows = {"alt-profanity-check": timed(lambda: predict_prob([text]), ITER)}
    datasets = Path(os.environ.get("MODERATION_DATASETS", "../shared/datasets"))
    train = datasets / "tweeteval_offensive" / "train.csv"
    if train.exists():
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        with train.open(newline="", encoding="utf-8") as handle:
            data = list(csv.DictReader(handle))
        vectoriser = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        model = LogisticRegression(max_iter=1000).fit(vectoriser.fit_transform([r["text"] for r in data]), [int(r["label"]) for r in data])
        rows["TF-IDF + logistic regression"] = timed(lambda: model.predict_proba(vectoriser.transform([text])), ITER)
    bert = BertForSequenceClassification(BertConfig(num_labels=6)).eval()  # type: ignore[call-arg, no-untyped-call]
    tokenizer = BertTokenizerFast.from_pretrained(str(backbone_path()))

    def bert_once() -> None:
        with torch.no_grad():
            bert(**tokenizer([text], return_tensors="pt", truncation=True, max_length=512))

    rows["BERT-base, Detoxify-shaped (torch fp32)"] = timed(bert_once, max(50, ITER // 5), warmup=3)
    pipe = pipeline("embedded")
    from moderation_service.core.pipeline import Post

    rows["this service: rules + embedded model"] = timed(lambda: pipe.moderate(Post(text=text)), ITER)
    pipe.close()
    return rows


def rule_scaling() -> dict[str, float]:
    from moderation_service.core.author import AuthorFacts
    from moderation_service.core.normalise import normalise
    from moderation_service.core.rulebook import load_rulebook

    out = {}
    text = normalise(words(50))
    for count in (100, 1000, 10000):
        rules = "\n".join(
            f"  - {{id: r{i}, category: c, description: d, action: hold, match: {{any: {{phrases: ['term{i} phrase']}}}}}}"
            for i in range(count)
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "scale.yaml"
            path.write_text(f"name: scale\ntitle: t\ncommunity: c\ncategories:\n  c: {{title: t, text: t}}\nrules:\n{rules}\n")
            book = load_rulebook(path)
        out[f"{count} rules"] = timed(functools.partial(book.matcher.match, {"body": text}, AuthorFacts(), "GB"), ITER)["p50_ms"]
    return out


def length_scaling() -> dict[int, float]:
    from moderation_service.core.pipeline import Post

    pipe = pipeline("embedded")
    out = {}
    for n in (20, 50, 100, 250, 500, 1000, 2000):
        post = Post(text=words(n)[:20_000])
        samples = []
        for _ in range(max(10, ITER // 10)):
            start = time.perf_counter()
            pipe.moderate(post)
            samples.append((time.perf_counter() - start) * 1000)
        out[n] = round(statistics.median(samples), 2)
    pipe.close()
    return out


def plots(lengths: dict[int, float], rules: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(list(lengths), list(lengths.values()), marker="o")
    ax.set(title="End-to-end p50 vs post length (1 thread)", xlabel="words", ylabel="ms")
    fig.tight_layout()
    fig.savefig(RESULTS / "latency_vs_length.png", dpi=80)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(list(rules), list(rules.values()))
    ax.set(title="Rule matching p50 vs rule count (50-word post)", ylabel="ms")
    fig.tight_layout()
    fig.savefig(RESULTS / "latency_vs_rules.png", dpi=80)


def main() -> None:
    stages = stage_table()
    tput = throughput()
    base = baselines()
    rules = rule_scaling()
    lengths = length_scaling()
    RESULTS.mkdir(parents=True, exist_ok=True)
    plots(lengths, rules)
    ours = base["this service: rules + embedded model"]["p50_ms"]
    bert = base["BERT-base, Detoxify-shaped (torch fp32)"]["p50_ms"]
    md = [
        "## Classification core (one thread unless stated)",
        "",
        "| configuration, post, stage | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    md += [f"| {k} | {v['p50_ms']} | {v['p95_ms']} | {v['p99_ms']} |" for k, v in stages.items()]
    md += ["", "| 50-word post, same run | p50 ms | p99 ms |", "|---|---|---|"]
    md += [f"| {k} | {v['p50_ms']} | {v['p99_ms']} |" for k, v in base.items()]
    md += [
        "",
        f"BERT-base / this service (p50): **{bert / ours:.1f}x**",
        "",
        "| posts per second (50 words, rules + model) | posts/s |",
        "|---|---|",
    ]
    md += [f"| {k} | {v} |" for k, v in tput.items()]
    md += ["", "| rule count | rule matching p50 ms |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rules.items()]
    md += ["", "| post length (words) | end-to-end p50 ms |", "|---|---|"] + [f"| {k} | {v} |" for k, v in lengths.items()]
    payload = {
        "stages": stages,
        "throughput_posts_per_s": tput,
        "baselines": base,
        "rule_scaling_p50_ms": rules,
        "length_scaling_p50_ms": lengths,
    }
    write("core_latency", payload, "\n".join(md) + "\n")
    sys.stdout.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
