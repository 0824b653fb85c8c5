"""Train the crisis risk-dimension heads on the embedded model's pooled vectors (CPU, minutes, seeded).

Data: the project-written crisis corpus (``models/training_data/crisis/*.jsonl``, this project's
own text under its licence) and, as negatives, health questions from ``medical_qa_forums`` (MIT) and
everyday comments from GoEmotions (Apache-2.0) that name no risk word.
Sets whose licence is "not stated" are never read here. Each post is embedded exactly as at run
time (int8 ONNX, windows of 128 tokens) and a head's post logit is its maximum over windows, so a
risk sentence buried in a long post is learnt where it is. 20 % of each corpus file (stratified by
kind, twin pairs kept together) is held out as dev; calibration and operating points come from dev
only: a precision target per head, capped by a false-positive budget on dev negatives. The crisis
functional suite (tests/suites/crisis) is never read.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import re2
import torch

from moderation_service.core.classifiers.embedded import EmbeddedClassifier
from moderation_service.core.classifiers.pooled_heads import PooledHeads
from moderation_service.core.classifiers.risk_heads import FILE_NAME
from moderation_service.core.crisis.dimensions import HEAD_LABELS, LEVEL_HEADS, RISK_PREFIX, Dimension
from moderation_service.core.decision import DISTRESS_ORDER, Action, DistressLevel
from moderation_service.core.pipeline import Pipeline, Post
from moderation_service.training.calibration import fit_platt
from moderation_service.training.datasets import read_rows, sha256_of
from moderation_service.training.metrics import binary_metrics

__all__ = [
    "LABELS",
    "CorpusPost",
    "FittedHeads",
    "HeadsConfig",
    "Split",
    "build_split",
    "embed",
    "evaluate_levels",
    "false_positive_point",
    "fit",
    "fit_on_encoder",
    "head_target",
    "kind_budget_point",
    "load_corpus",
    "operating_point",
    "progress_to_stderr",
    "train_risk_heads",
]

LABELS = HEAD_LABELS
# Dev precision each head must reach to count on its own, and to count beside another risk signal.
PRECISION_TARGET = dict.fromkeys(LEVEL_HEADS, 0.95)
DEFAULT_PRECISION = 0.9
SUPPORTING_PRECISION = dict.fromkeys(LEVEL_HEADS, 0.9)
DEFAULT_SUPPORTING_PRECISION = 0.6
# The share of dev negatives a head may flag on its own. A moderator's queue fills at this rate times the
# forum's volume, whatever the prevalence: dev is 25-45 % risk, a forum well under 1 %, so a dev precision
# target alone lets through a rate of false escalations nobody would accept on real traffic. Negatives
# are the posts below the level a head stands for (for a dimension head: posts with no risk) that the
# head is not meant to flag (a low-mood post is no negative for the hopelessness head).
MAX_ALONE_FPR = {"level.imminent": 0.005}
DEFAULT_MAX_ALONE_FPR = 0.01
# The same budget per kind of post without risk, for the level heads: a pooled budget lets one kind take
# all of it, and a forum's everyday posts come in kinds ("night all", "thanks for reading") that each
# arrive many times a day, so a head that flags one such kind floods the queue however rare it is on dev.
# Only kinds with enough dev posts for a rate to mean something are held to it.
MAX_KIND_FPR = {"level.imminent": 0.02, "level.any": 0.04}
MIN_KIND_POSTS = 20


@dataclass(frozen=True)
class CorpusPost:
    text: str
    level: str
    dimensions: tuple[str, ...]
    kind: str
    source: str
    pair: str | None = None  # contrastive twins share one id and stay on one side of the split


@dataclass(frozen=True)
class HeadsConfig:
    corpus_dir: Path
    datasets_dir: Path
    model_dir: Path
    output_dir: Path
    cache_dir: Path
    seed: int = 13
    dev_share: float = 0.2
    medical_negatives: int = 2000
    everyday_negatives: int = 4000
    epochs: int = 300
    learning_rate: float = 0.003
    weight_decay: float = 0.01
    hidden: int = 256  # one shared hidden layer; 0 trains linear heads (1.0.0)
    dropout: float = 0.2
    version: str = "1.2.0"


@dataclass
class Split:
    train: list[CorpusPost] = field(default_factory=list)
    dev: list[CorpusPost] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def load_corpus(corpus_dir: Path) -> list[CorpusPost]:
    """Every line of every ``*.jsonl`` in the corpus folder, validated against the dimension list."""
    known = {d.value for d in Dimension}
    posts = []
    for path in sorted(corpus_dir.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            unknown = set(row["dimensions"]) - known
            if unknown:
                raise ValueError(f"{path}:{number}: unknown dimension {sorted(unknown)[0]!r}")
            pair = row.get("pair")
            posts.append(CorpusPost(row["text"], row["level"], tuple(row["dimensions"]), row["kind"], path.stem, pair))
    return posts


def _stratified(posts: list[CorpusPost], share: float, seed: int) -> tuple[list[CorpusPost], list[CorpusPost]]:
    """``share`` of each file's kinds as dev, each (file, kind) shuffled by its own seed.

    Seeding per group means adding a file moves no other file's posts between train and dev (one
    shared random stream reshuffled them all, so dev figures from two corpus states were not
    comparable); a twin pair is one unit, filed under its first member's kind, because a post whose
    twin was trained on reads high on dev.
    """
    units: dict[tuple[str, str | int], list[CorpusPost]] = {}
    for number, post in enumerate(posts):
        units.setdefault((post.source, post.pair if post.pair else number), []).append(post)
    groups: dict[tuple[str, str], list[list[CorpusPost]]] = {}
    for unit in units.values():
        groups.setdefault((unit[0].source, unit[0].kind), []).append(unit)
    train: list[CorpusPost] = []
    dev: list[CorpusPost] = []
    for (source, kind), items in sorted(groups.items()):
        random.Random(f"{seed}:{source}:{kind}").shuffle(items)
        cut = round(len(items) * share)
        dev += [post for unit in items[:cut] for post in unit]
        train += [post for unit in items[cut:] for post in unit]
    return train, dev


# Everyday comments that name none of these are safe negatives; the rest are left out, not guessed at.
_RISK_WORDS = re2.compile(
    r"(?i)\b(die|died|dying|dead|death|kill|suicid\w*|alive|live|living|end it|harm|hurt|cut|cutting|pills?|tablets?|overdose|od|"
    r"goodbye|bye|note|letter|hopeless|burden|worthless|jump|bridge|rope|cope|point|gone|disappear|sleep|wake|tonight)\b"
)


def _no_risk_word(text: str) -> bool:
    return not _RISK_WORDS.search(text)


def _negatives(datasets_dir: Path, source: str, kind: str, count: int, seed: int, keep: Callable[[str], bool]) -> list[CorpusPost]:
    """A seeded sample of one licensed set's texts as "none" posts."""
    rows = [row["text"] for row in read_rows(datasets_dir / source / "train.csv") if row.get("text") and keep(row["text"])]
    rng = random.Random(seed)
    return [CorpusPost(text, "none", (), kind, source) for text in rng.sample(rows, min(count, len(rows)))]


def build_split(cfg: HeadsConfig) -> Split:
    split = Split()
    corpus = load_corpus(cfg.corpus_dir)
    split.train, split.dev = _stratified(corpus, cfg.dev_share, cfg.seed)
    medical = _negatives(cfg.datasets_dir, "medical_qa_forums", "health_question", cfg.medical_negatives, cfg.seed, bool)
    # Short everyday comments (GoEmotions, Apache-2.0) without any risk word: ordinary chatter is not a crisis.
    everyday = _negatives(cfg.datasets_dir, "goemotions", "everyday_comment", cfg.everyday_negatives, cfg.seed, _no_risk_word)
    for extra in (medical, everyday):
        cut = round(len(extra) * cfg.dev_share)
        split.dev += extra[:cut]
        split.train += extra[cut:]
    for path in sorted(cfg.corpus_dir.glob("*.jsonl")):
        split.files[f"project:crisis/{path.name}"] = sha256_of(path)
    for name in ("medical_qa_forums/train.csv", "goemotions/train.csv"):
        split.files[name] = sha256_of(cfg.datasets_dir / name)
    return split


def embed(classifier: EmbeddedClassifier, texts: list[str], cache: Path, progress: Callable[[str], None]) -> list[np.ndarray]:
    """Pooled window vectors per text, cached on disk by text hash (re-runs take seconds)."""
    cache.mkdir(parents=True, exist_ok=True)
    out: list[np.ndarray] = []
    started = time.monotonic()
    for i, text in enumerate(texts):
        path = cache / (hashlib.sha256(text.encode()).hexdigest()[:24] + ".npy")
        if path.exists():
            out.append(np.load(path))
            continue
        _, pooled = classifier.run_windows([text])[0]
        np.save(path, pooled.astype(np.float32))
        out.append(pooled.astype(np.float32))
        if i % 500 == 0:
            progress(f"embedded {i}/{len(texts)} ({time.monotonic() - started:.0f}s)")
    return out


def head_target(post: CorpusPost, label: str) -> float:
    """What one risk head should say for a corpus post (shared with the encoder's multi-task training)."""
    if label in LEVEL_HEADS:  # level.any: high or imminent; level.imminent: imminent
        return float(DISTRESS_ORDER[DistressLevel(post.level)] >= DISTRESS_ORDER[LEVEL_HEADS[label]])
    return float(label.removeprefix(RISK_PREFIX) in post.dimensions)


def _targets(posts: Iterable[CorpusPost]) -> np.ndarray:
    return np.array([[head_target(p, label) for label in LABELS] for p in posts], dtype=np.float32)


def _padded(vectors: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(v.shape[0] for v in vectors)
    x = torch.zeros((len(vectors), width, vectors[0].shape[1]))
    mask = torch.zeros((len(vectors), width), dtype=torch.bool)
    for i, v in enumerate(vectors):
        x[i, : v.shape[0]] = torch.from_numpy(v)
        mask[i, : v.shape[0]] = True
    return x, mask


def _post_logits(x: torch.Tensor, mask: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    logits: torch.Tensor = model(x)  # (posts, windows, labels)
    pooled: torch.Tensor = logits.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
    return pooled


def fit(vectors: list[np.ndarray], targets: np.ndarray, cfg: HeadsConfig) -> torch.nn.Sequential:
    """Full-batch heads (one shared hidden layer) with max-over-windows pooling; rare dimensions weighted up."""
    torch.manual_seed(cfg.seed)
    x, mask = _padded(vectors)
    y = torch.from_numpy(targets)
    model = _heads_module(x.shape[-1], y.shape[1], cfg)
    positives = y.sum(0).clamp(min=1.0)
    pos_weight = ((len(y) - positives) / positives).clamp(max=20.0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    model.train()
    for _ in range(cfg.epochs):
        optimiser.zero_grad()
        loss = loss_fn(_post_logits(x, mask, model), y)
        loss.backward()
        optimiser.step()
    model.eval()
    return model


def _heads_module(dim: int, labels: int, cfg: HeadsConfig) -> torch.nn.Sequential:
    if not cfg.hidden:
        return torch.nn.Sequential(torch.nn.Linear(dim, labels))
    return torch.nn.Sequential(
        torch.nn.Dropout(cfg.dropout),
        torch.nn.Linear(dim, cfg.hidden),
        torch.nn.GELU(approximate="tanh"),
        torch.nn.Dropout(cfg.dropout),
        torch.nn.Linear(cfg.hidden, labels),
    )


def _layers(model: torch.nn.Sequential) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, np.ndarray]:
    """(hidden weights, hidden bias, output weights, output bias) as the run-time PooledHeads holds them."""
    linears = [_numpy(m.weight).T for m in model if isinstance(m, torch.nn.Linear)]
    biases = [_numpy(m.bias) for m in model if isinstance(m, torch.nn.Linear)]
    if len(linears) == 1:
        return None, None, linears[0], biases[0]
    return linears[0], biases[0], linears[1], biases[1]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    out: np.ndarray = tensor.detach().numpy().astype(np.float32)
    return out


# The thresholds operating points are chosen from (steps of 0.01).
_GRID = np.linspace(0.05, 0.99, 95)


def operating_point(labels: np.ndarray, probs: np.ndarray, precision: float) -> tuple[float, bool]:
    """The lowest threshold whose dev precision reaches the target (most recall); else the best-F1 one."""
    best_f1, best_t = -1.0, 0.5
    for t in _GRID:
        predicted = probs >= t
        tp = float((predicted & (labels == 1)).sum())
        if predicted.sum() and tp / predicted.sum() >= precision:
            return round(float(t), 3), True
        f1 = 2 * tp / max(1.0, predicted.sum() + labels.sum())
        if f1 > best_f1:
            best_f1, best_t = f1, float(t)
    return round(best_t, 3), False


def false_positive_point(negative_probs: np.ndarray, budget: float) -> float:
    """The lowest threshold (the operating-point grid) flagging at most ``budget`` of the negatives."""
    for t in _GRID:
        if float((negative_probs >= t).mean()) <= budget:
            return round(float(t), 3)
    return 0.99


def _by_kind(probs: np.ndarray, kinds: list[str]) -> dict[str, np.ndarray]:
    """Each kind's scores, for the kinds with at least MIN_KIND_POSTS posts (a rate on fewer means little)."""
    labels = np.array(kinds)
    groups = {kind: probs[labels == kind] for kind in sorted(set(kinds))}
    return {kind: group for kind, group in groups.items() if len(group) >= MIN_KIND_POSTS}


def kind_budget_point(probs: np.ndarray, kinds: list[str], budget: float) -> float:
    """The lowest threshold (the operating-point grid) flagging at most ``budget`` of every kind's posts.

    ``probs`` and ``kinds`` are the posts without risk only; kinds with fewer than MIN_KIND_POSTS posts are left out.
    """
    groups = _by_kind(probs, kinds).values()
    for t in _GRID:
        if all(float((g >= t).mean()) <= budget for g in groups):
            return round(float(t), 3)
    return 0.99


def _negatives_for(label: str, dev: list[CorpusPost]) -> np.ndarray:
    """Which dev posts count as a head's negatives for its false-positive budget (see MAX_ALONE_FPR)."""
    below = LEVEL_HEADS.get(label, DistressLevel.high)
    return np.array([DISTRESS_ORDER[DistressLevel(p.level)] < DISTRESS_ORDER[below] and not head_target(p, label) for p in dev])


def progress_to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")


@dataclass(frozen=True)
class FittedHeads:
    """Heads fitted on one encoder's pooled vectors, with the dev split's vectors and raw post logits."""

    encoder: str
    model: torch.nn.Sequential
    dev_vectors: list[np.ndarray]
    dev_logits: np.ndarray

    def heads(
        self,
        version: str,
        labels: tuple[str, ...],
        calibration: list[dict[str, float]],
        points: dict[str, float],
        supporting: dict[str, float],
    ) -> PooledHeads:
        """The fitted layers as run-time heads, with Platt calibration (``fit_platt`` results, one per label) and thresholds."""
        hidden_weights, hidden_bias, weights, bias = _layers(self.model)
        return PooledHeads(
            version=version,
            labels=labels,
            weights=weights,
            bias=bias,
            hidden_weights=hidden_weights,
            hidden_bias=hidden_bias,
            calibration_a=np.array([c["a"] for c in calibration], dtype=np.float32),
            calibration_b=np.array([c["b"] for c in calibration], dtype=np.float32),
            operating_points=points,
            supporting_points=supporting,
        )


def fit_on_encoder(
    cfg: HeadsConfig, train: tuple[list[str], np.ndarray], dev_texts: list[str], progress: Callable[[str], None]
) -> FittedHeads:
    """Embed both splits with the encoder (one cache per encoder version, shared by every head set), fit, score dev."""
    classifier = EmbeddedClassifier(cfg.model_dir, cfg.cache_dir, risk_heads=False)
    cache = cfg.cache_dir / "risk-head-embeddings" / classifier.version
    train_texts, train_targets = train
    model = fit(embed(classifier, train_texts, cache, progress), train_targets, cfg)
    dev_vectors = embed(classifier, dev_texts, cache, progress)
    with torch.no_grad():
        dev_logits = _post_logits(*_padded(dev_vectors), model).numpy().astype(np.float64)
    return FittedHeads(classifier.version, model, dev_vectors, dev_logits)


def train_risk_heads(cfg: HeadsConfig, progress: Callable[[str], None] = progress_to_stderr) -> dict[str, object]:
    """Train, calibrate and choose operating points; write ``risk_heads.json`` into ``cfg.output_dir``.

    The encoder's ONNX file must be built first (``bootstrap.ensure_models``, as the CLI does).
    """
    started = time.monotonic()
    split = build_split(cfg)
    fitted = fit_on_encoder(cfg, ([p.text for p in split.train], _targets(split.train)), [p.text for p in split.dev], progress)
    dev_logits = fitted.dev_logits
    dev_targets = _targets(split.dev)
    calibration: list[dict[str, float]] = []
    points: dict[str, float] = {}
    supporting: dict[str, float] = {}
    metrics: dict[str, dict[str, object]] = {}
    no_risk = np.array([p.level in ("none", "low") for p in split.dev])
    no_risk_kinds = [p.kind for p, keep in zip(split.dev, no_risk, strict=True) if keep]
    for col, label in enumerate(LABELS):
        platt = fit_platt(dev_logits[:, col], dev_targets[:, col])
        calibration.append(platt)
        probs = 1.0 / (1.0 + np.exp(-(platt["a"] * dev_logits[:, col] + platt["b"])))
        precise, met = operating_point(dev_targets[:, col], probs, PRECISION_TARGET.get(label, DEFAULT_PRECISION))
        negatives = probs[_negatives_for(label, split.dev)]
        threshold = max(precise, false_positive_point(negatives, MAX_ALONE_FPR.get(label, DEFAULT_MAX_ALONE_FPR)))
        if label in MAX_KIND_FPR:
            threshold = max(threshold, kind_budget_point(probs[no_risk], no_risk_kinds, MAX_KIND_FPR[label]))
        points[label] = threshold
        lower = operating_point(dev_targets[:, col], probs, SUPPORTING_PRECISION.get(label, DEFAULT_SUPPORTING_PRECISION))[0]
        supporting[label] = min(threshold, lower)
        metrics[label] = {
            **binary_metrics(dev_targets[:, col], probs, threshold),
            "false_positive_rate": round(float((negatives >= threshold).mean()), 4),
            "precision_target_met": met,
        }
        if label in MAX_KIND_FPR:
            rates = {kind: float((group >= threshold).mean()) for kind, group in _by_kind(probs[no_risk], no_risk_kinds).items()}
            worst = max(rates, key=rates.__getitem__)
            metrics[label]["worst_kind_false_positive_rate"] = {"kind": worst, "rate": round(rates[worst], 4)}
    heads = fitted.heads(cfg.version, LABELS, calibration, points, supporting)
    meta: dict[str, object] = {
        "encoder": fitted.encoder,
        "architecture": {
            "hidden": cfg.hidden,
            "activation": "gelu-tanh" if cfg.hidden else None,
            "dropout": cfg.dropout,
            "epochs": cfg.epochs,
            "learning_rate": cfg.learning_rate,
            "weight_decay": cfg.weight_decay,
        },
        "precision_target": {label: PRECISION_TARGET.get(label, DEFAULT_PRECISION) for label in LABELS},
        "supporting_precision": {label: SUPPORTING_PRECISION.get(label, DEFAULT_SUPPORTING_PRECISION) for label in LABELS},
        "max_alone_false_positive_rate": {label: MAX_ALONE_FPR.get(label, DEFAULT_MAX_ALONE_FPR) for label in LABELS},
        "max_kind_false_positive_rate": {"budget": MAX_KIND_FPR, "min_kind_posts": MIN_KIND_POSTS},
        "data_files_sha256": split.files,
        "train_posts": len(split.train),
        "dev_posts": len(split.dev),
        "seed": cfg.seed,
        "train_seconds": round(time.monotonic() - started, 1),
        "dev_metrics": metrics,
    }
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    (cfg.output_dir / FILE_NAME).write_text(heads.to_json(meta), encoding="utf-8")
    return meta


def evaluate_levels(cfg: HeadsConfig, pipeline: Pipeline) -> dict[str, object]:
    """The whole decision (grammars + heads + rulebook) on the dev split: the crisis gates and per kind."""
    dev = build_split(cfg).dev
    decisions = pipeline.moderate_batch([Post(text=post.text[: pipeline.max_text_chars]) for post in dev])
    # The two failures that matter most, side by side: a crisis missed, and a post without risk escalated as an
    # emergency (withheld, its author told to ring 999).
    counts: dict[str, list[int]] = {
        "imminent_recall": [0, 0],
        "risk_escalation_recall": [0, 0],
        "false_escalations": [0, 0],
        "false_emergencies": [0, 0],
    }
    kinds: dict[str, list[int]] = {}
    for post, decision in zip(dev, decisions, strict=True):
        escalated = decision.action is Action.escalate
        imminent = decision.distress_level is DistressLevel.imminent
        if post.level == "imminent":
            counts["imminent_recall"][0] += imminent
            counts["imminent_recall"][1] += 1
        if post.level in ("high", "imminent"):
            counts["risk_escalation_recall"][0] += escalated
            counts["risk_escalation_recall"][1] += 1
        else:
            counts["false_escalations"][0] += escalated
            counts["false_escalations"][1] += 1
            counts["false_emergencies"][0] += imminent
            counts["false_emergencies"][1] += 1
        right = imminent if post.level == "imminent" else escalated if post.level == "high" else not escalated
        row = kinds.setdefault(f"{post.source}:{post.kind}", [0, 0])
        row[0] += right
        row[1] += 1
    return {
        "gates": {name: {"hits": h, "total": t, "share": round(h / t, 4) if t else None} for name, (h, t) in counts.items()},
        "kinds": {kind: {"correct": c, "posts": n} for kind, (c, n) in sorted(kinds.items())},
    }
