"""Optional Detoxify backend (``pip install .[detoxify]``), loaded strictly offline.

A Detoxify checkpoint names a hub model (e.g. ``bert-base-uncased``) for its config and tokenizer,
which Detoxify's loader would fetch. We read the checkpoint ourselves and load config, weights and
tokenizer from the operator's local folder with ``local_files_only=True`` on every call, so nothing
is downloaded and no process-wide setting (``HF_HUB_OFFLINE``) is changed. It is never the default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moderation_service.core.options import ClassifierOptions
from moderation_service.errors import ClassifierError, ConfigError

__all__ = ["DetoxifyClassifier", "from_options"]

_WINDOW_CHARS = 2000
_OVERLAP_CHARS = 200
_LABELS = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}  # as Detoxify names them


def _load(checkpoint: Path, config_dir: Path) -> tuple[Any, Any, tuple[str, ...]]:
    """(model, tokenizer, labels) from a Detoxify checkpoint, every file read from disk only."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigError("the detoxify backend needs `pip install .[detoxify]`") from exc
    loaded: dict[str, Any] = torch.load(checkpoint, map_location="cpu", weights_only=False)
    try:
        args = loaded["config"]["arch"]["args"]
        classes = loaded["config"]["dataset"]["args"]["classes"]
        model_class = getattr(transformers, args["model_name"])
        tokenizer_class = getattr(transformers, args["tokenizer_name"])
        state_dict = loaded["state_dict"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{checkpoint} is not a Detoxify checkpoint (config.arch.args, dataset classes, state_dict)") from exc
    folder = str(config_dir.resolve())
    config = model_class.config_class.from_pretrained(folder, num_labels=args["num_classes"], local_files_only=True)
    model = model_class.from_pretrained(None, config=config, state_dict=state_dict, local_files_only=True)
    model.eval()
    tokenizer = tokenizer_class.from_pretrained(folder, local_files_only=True)
    return model, tokenizer, tuple(_LABELS.get(c, c) for c in classes)


class DetoxifyClassifier:
    def __init__(self, checkpoint: Path, config_dir: Path) -> None:
        if not checkpoint.is_file() or not config_dir.is_dir():
            raise ConfigError("set MODERATION_DETOXIFY_CHECKPOINT (a .ckpt file) and MODERATION_DETOXIFY_CONFIG_DIR (a folder)")
        self._model, self._tokenizer, self.labels = _load(checkpoint, config_dir)
        self.name = "detoxify"
        self.version = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12]

    def _scores(self, windows: list[str]) -> dict[str, list[float]]:
        """Sigmoid score per label per window (what ``Detoxify.predict`` returns)."""
        import torch

        with torch.no_grad():
            inputs = self._tokenizer(windows, return_tensors="pt", truncation=True, padding=True)
            probs = torch.sigmoid(self._model(**inputs)[0]).tolist()
        return {label: [row[i] for row in probs] for i, label in enumerate(self.labels)}

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Scores per text; long texts are windowed and each label takes its maximum."""
        windows: list[str] = []
        owner: list[int] = []
        for index, text in enumerate(texts):
            step = _WINDOW_CHARS - _OVERLAP_CHARS
            for start in range(0, max(1, len(text) - _OVERLAP_CHARS), step):
                windows.append(text[start : start + _WINDOW_CHARS])
                owner.append(index)
        try:
            raw = self._scores(windows)
        except Exception as exc:  # torch/transformers errors become a degraded decision upstream
            raise ClassifierError(f"detoxify failed: {exc.__class__.__name__}") from exc
        out: list[dict[str, float]] = [{} for _ in texts]
        for label, column in raw.items():
            for i, value in zip(owner, column, strict=True):
                out[i][label] = max(out[i].get(label, 0.0), float(value))
        return out


def from_options(options: ClassifierOptions) -> DetoxifyClassifier:
    """Registry factory for ``MODERATION_CLASSIFIERS=detoxify``."""
    if options.detoxify_checkpoint is None or options.detoxify_config_dir is None:
        raise ConfigError("set MODERATION_DETOXIFY_CHECKPOINT and MODERATION_DETOXIFY_CONFIG_DIR for the detoxify backend")
    return DetoxifyClassifier(options.detoxify_checkpoint, options.detoxify_config_dir)
