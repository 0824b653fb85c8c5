"""The risk heads computed at run time (numpy) are the heads trained (torch), through the shipped file format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from moderation_service.core.classifiers.risk_heads import FILE_NAME, RiskHeads, load_risk_heads
from moderation_service.training.risk_heads import LABELS, HeadsConfig, _heads_module, _layers


def _round_trip(model: torch.nn.Sequential, tmp_path: Path) -> RiskHeads:
    hidden_w, hidden_b, weights, bias = _layers(model)
    ones = np.ones(len(LABELS), dtype=np.float32)
    points = dict.fromkeys(LABELS, 0.5)
    heads = RiskHeads("test", LABELS, weights, bias, ones, ones * 0, points, points, hidden_w, hidden_b)
    (tmp_path / FILE_NAME).write_text(heads.to_json({}), encoding="utf-8")
    loaded = load_risk_heads(tmp_path)
    assert loaded is not None
    return loaded


@pytest.mark.parametrize("hidden", [256, 0])
def test_file_heads_give_the_trained_logits(tmp_path: Path, hidden: int) -> None:
    cfg = HeadsConfig(tmp_path, tmp_path, tmp_path, tmp_path, tmp_path, hidden=hidden)
    torch.manual_seed(3)
    model = _heads_module(384, len(LABELS), cfg).eval()
    windows = torch.randn(5, 384)
    with torch.no_grad():
        expected = model(windows).numpy()
    loaded = _round_trip(model, tmp_path)
    assert (loaded.hidden_weights is None) == (hidden == 0)
    # Output weights are stored to six decimals; the hidden layer exactly.
    np.testing.assert_allclose(loaded.window_logits(windows.numpy()), expected, atol=1e-3)


def test_the_shipped_heads_load_with_their_hidden_layer() -> None:
    heads = load_risk_heads(Path(__file__).parents[1] / "models" / "embedded")
    assert heads is not None and heads.hidden_weights is not None
    assert heads.hidden_weights.shape[1] == heads.weights.shape[0]
    assert set(heads.operating_points) == set(LABELS)
