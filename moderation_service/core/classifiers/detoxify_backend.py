"""Optional Detoxify backend (``pip install .[detoxify]``), loaded strictly offline.

Detoxify's loader calls ``from_pretrained(model_type)`` with the hub name stored in the checkpoint
(e.g. ``bert-base-uncased``), which would download. We copy the checkpoint once with ``model_type``
pointing at the operator's local config/tokenizer folder, set ``HF_HUB_OFFLINE``, and then use
Detoxify's own loading code unchanged. It is never the default.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moderation_service.errors import ClassifierError, ConfigError

if TYPE_CHECKING:
    from moderation_service.core.options import ClassifierOptions as Settings

__all__ = ["DetoxifyClassifier", "from_settings", "offline_checkpoint"]

_WINDOW_CHARS = 2000
_OVERLAP_CHARS = 200


def offline_checkpoint(checkpoint: Path, config_dir: Path, cache_dir: Path) -> Path:
    """A copy of ``checkpoint`` whose ``model_type`` is the local folder, so nothing is fetched."""
    import torch

    digest = hashlib.sha256(checkpoint.read_bytes() + str(config_dir.resolve()).encode()).hexdigest()[:16]
    target = cache_dir / f"detoxify-{digest}.ckpt"
    if target.exists():
        return target
    loaded: dict[str, Any] = torch.load(checkpoint, map_location="cpu", weights_only=False)
    try:
        loaded["config"]["arch"]["args"]["model_type"] = str(config_dir.resolve())
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{checkpoint} is not a Detoxify checkpoint (no config.arch.args)") from exc
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    torch.save(loaded, partial)
    os.replace(partial, target)
    return target


class DetoxifyClassifier:
    def __init__(self, checkpoint: Path, config_dir: Path, cache_dir: Path) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from detoxify import Detoxify
        except ImportError as exc:
            raise ConfigError("the detoxify backend needs `pip install .[detoxify]`") from exc
        if not checkpoint.is_file() or not config_dir.is_dir():
            raise ConfigError("set MODERATION_DETOXIFY_CHECKPOINT (a .ckpt file) and MODERATION_DETOXIFY_CONFIG_DIR (a folder)")
        patched = offline_checkpoint(checkpoint, config_dir, cache_dir)
        self._model = Detoxify(checkpoint=str(patched), device="cpu", huggingface_config_path=str(config_dir.resolve()))
        self.labels: tuple[str, ...] = tuple(self._model.class_names)
        self.name = "detoxify"
        self.version = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12]

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
            raw = self._model.predict(windows)
        except Exception as exc:  # torch/transformers errors become a degraded decision upstream
            raise ClassifierError(f"detoxify failed: {exc.__class__.__name__}") from exc
        out: list[dict[str, float]] = [{} for _ in texts]
        for label, values in raw.items():
            column = values if isinstance(values, list) else [values]
            for i, value in zip(owner, column, strict=True):
                out[i][label] = max(out[i].get(label, 0.0), float(value))
        return out


def from_settings(settings: Settings) -> DetoxifyClassifier:
    """Registry factory for ``MODERATION_CLASSIFIERS=detoxify``."""
    if settings.detoxify_checkpoint is None or settings.detoxify_config_dir is None:
        raise ConfigError("set MODERATION_DETOXIFY_CHECKPOINT and MODERATION_DETOXIFY_CONFIG_DIR for the detoxify backend")
    return DetoxifyClassifier(settings.detoxify_checkpoint, settings.detoxify_config_dir, settings.cache_dir)
