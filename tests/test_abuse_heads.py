"""The abuse heads: run-time maths equal the trained module through the file, thresholds chosen by rule, corpus errors named.

The real-model cases (hand-written here, not from any suite) are in tests/test_abuse_heads_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from moderation_service.cli import app
from moderation_service.core.classifiers.abuse_heads import ABUSE_LABELS, FILE_NAME, CurvePoint, dev_curves, load_abuse_heads, point_at
from moderation_service.core.classifiers.pooled_heads import PooledHeads
from moderation_service.core.rulebook import load_rulebook
from moderation_service.errors import ConfigError
from moderation_service.training.abuse_heads import (
    abuse_config,
    choose_hold_point,
    dev_curve,
    in_dev,
    load_abuse_corpus,
    post_probabilities,
)
from moderation_service.training.risk_heads import _heads_module, _layers

MODELS = Path(__file__).resolve().parent.parent / "models" / "embedded"
RULES = MODELS.parent.parent / "rules"


def _write(model: torch.nn.Sequential, tmp_path: Path, extra: dict[str, object]) -> PooledHeads:
    hidden_w, hidden_b, weights, bias = _layers(model)
    a = np.array([1.5, 0.5, 2.0], dtype=np.float32)
    b = np.array([-0.2, 0.1, 0.3], dtype=np.float32)
    points = dict.fromkeys(ABUSE_LABELS, 0.7)
    heads = PooledHeads("test", ABUSE_LABELS, weights, bias, a, b, points, points, hidden_w, hidden_b)
    (tmp_path / FILE_NAME).write_text(heads.to_json(extra), encoding="utf-8")
    loaded = load_abuse_heads(tmp_path)
    assert loaded is not None
    return loaded


def test_file_heads_give_the_trained_scores(tmp_path: Path) -> None:
    """Logits, calibration and the max over a post's windows: numpy from the file equals torch from training."""
    cfg = abuse_config(tmp_path, tmp_path, tmp_path, tmp_path, tmp_path)
    torch.manual_seed(5)
    model = _heads_module(384, len(ABUSE_LABELS), cfg).eval()
    posts = [torch.randn(n, 384) for n in (1, 3, 2)]  # windows per post
    loaded = _write(model, tmp_path, {})
    assert loaded.hidden_weights is not None and loaded.labels == ABUSE_LABELS
    with torch.no_grad():
        logits = np.stack([model(windows).max(dim=0).values.numpy() for windows in posts])
    expected = 1.0 / (1.0 + np.exp(-(logits * loaded.calibration_a + loaded.calibration_b)))
    got = post_probabilities(loaded, [w.numpy() for w in posts])
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert loaded.scores(posts[1].numpy()) == pytest.approx(dict(zip(ABUSE_LABELS, got[1].tolist(), strict=True)), abs=1e-6)


def test_a_float16_hidden_layer_loads_as_computed(tmp_path: Path) -> None:
    """The shipped abuse heads store the hidden layer as float16; the loaded heads equal ``half_hidden()`` exactly."""
    cfg = abuse_config(tmp_path, tmp_path, tmp_path, tmp_path, tmp_path)
    torch.manual_seed(6)
    hidden_w, hidden_b, weights, bias = _layers(_heads_module(384, len(ABUSE_LABELS), cfg).eval())
    ones = np.ones(len(ABUSE_LABELS), dtype=np.float32)
    points = dict.fromkeys(ABUSE_LABELS, 0.7)
    heads = PooledHeads("test", ABUSE_LABELS, weights, bias, ones, ones * 0, points, points, hidden_w, hidden_b).half_hidden()
    (tmp_path / FILE_NAME).write_text(heads.to_json({}, half=True), encoding="utf-8")
    loaded = load_abuse_heads(tmp_path)
    assert loaded is not None and "float16_base64" in (tmp_path / FILE_NAME).read_text()
    windows = np.random.default_rng(0).standard_normal((4, 384)).astype(np.float32)
    np.testing.assert_allclose(loaded.window_logits(windows), heads.window_logits(windows), atol=1e-5)
    assert loaded.hidden_weights is not None and hidden_w is not None
    assert np.abs(loaded.hidden_weights - hidden_w).max() < 1e-3  # float16 keeps the trained layer to ~3 digits


def test_dev_curve_is_base_rate_aware() -> None:
    """At a forum's prevalence, the same recall and false-positive rate give a far lower precision than on dev."""
    labels = np.array([1] * 50 + [0] * 200, dtype=float)
    probs = np.array([0.9] * 40 + [0.2] * 10 + [0.95] * 2 + [0.1] * 198)  # 40/50 caught, 2/200 false at 0.5
    point = point_at(dev_curve(labels, probs, prevalence=0.01), 0.5)
    assert point is not None
    assert point.precision == pytest.approx(40 / 42, abs=1e-4)
    assert (point.recall, point.false_positive_rate) == (0.8, 0.01)
    assert point.dev_hold_rate == pytest.approx(42 / 250, abs=1e-4)
    expected = 0.01 * 0.8 / (0.01 * 0.8 + 0.99 * 0.01)  # 0.447: most holds on a forum would be wrong
    assert point.deployed_precision == pytest.approx(expected, abs=1e-4)
    assert point.deployed_hold_rate == pytest.approx(0.01 * 0.8 + 0.99 * 0.01, abs=1e-5)


def test_no_false_positive_on_dev_still_counts_half_of_one() -> None:
    labels = np.array([1] * 10 + [0] * 100, dtype=float)
    probs = np.array([0.9] * 10 + [0.1] * 100)
    point = point_at(dev_curve(labels, probs, prevalence=0.01), 0.5)
    assert point is not None and point.precision == 1.0
    assert point.deployed_precision == pytest.approx(0.01 / (0.01 + 0.99 * 0.005), abs=1e-4)  # 0.67, not 1.0


def _point(threshold: float, precision: float, recall: float, deployed: float) -> CurvePoint:
    return CurvePoint(threshold, precision, recall, 0.1, 0.01, 0.01, deployed, 0.01)


def test_hold_point_is_the_lowest_threshold_meeting_the_target_on_dev_and_deployed() -> None:
    curve = [_point(0.3, 0.9, 0.9, 0.5), _point(0.5, 0.7, 0.8, 0.8), _point(0.6, 0.85, 0.7, 0.8), _point(0.9, 0.95, 0.2, 0.9)]
    chosen, met = choose_hold_point(curve, 0.75)
    assert (chosen.threshold, met) == (0.6, True)  # 0.3 fails deployed, 0.5 fails dev precision
    fallback, met = choose_hold_point(curve, 0.99)
    assert not met and fallback.threshold == 0.5  # best balance of deployed precision and recall (0.8, 0.8)


def test_hold_point_never_holds_more_health_questions_than_today() -> None:
    precise = CurvePoint(0.4, 0.9, 0.8, 0.1, 0.01, 0.01, 0.9, 0.01, health_hold_rate=0.002)
    quieter = CurvePoint(0.5, 0.9, 0.7, 0.1, 0.01, 0.01, 0.9, 0.01, health_hold_rate=0.0008)
    chosen, met = choose_hold_point([precise, quieter], 0.75)
    assert (chosen.threshold, met) == (0.5, True)


def test_corpus_lines_are_checked_and_named(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"text": "buy my tea", "labels": ["commercial"], "kind": "promo"}) + "\n\n"
        + json.dumps({"text": "x", "labels": ["spam"], "kind": "promo"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"a\.jsonl:3: unknown label 'spam'"):
        load_abuse_corpus(tmp_path)
    (tmp_path / "a.jsonl").write_text('{"text": "no labels", "kind": "k"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"a\.jsonl:1: not a \{text, labels, kind\} line"):
        load_abuse_corpus(tmp_path)


def test_dev_split_is_a_fixed_hash_of_the_text() -> None:
    texts = [f"post number {i}" for i in range(2000)]
    dev = [t for t in texts if in_dev(t)]
    assert 0.16 < len(dev) / len(texts) < 0.24
    assert [t for t in reversed(texts) if in_dev(t)] == list(reversed(dev))  # order does not matter
    assert in_dev("Post Number 7 ") == in_dev("post number 7")


def test_a_broken_heads_file_is_refused_not_skipped(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text('{"version": "1", "labels": ["insult"]}', encoding="utf-8")
    with pytest.raises(ConfigError, match="abuse_heads.json"):
        load_abuse_heads(tmp_path)
    with pytest.raises(ConfigError, match="dev curves"):
        dev_curves(tmp_path)


def test_the_shipped_heads_carry_their_hold_points_and_curves() -> None:
    heads = load_abuse_heads(MODELS)
    assert heads is not None and heads.labels == ABUSE_LABELS and heads.hidden_weights is not None
    curves = dev_curves(MODELS)
    for label in ABUSE_LABELS:
        point = point_at(curves[label], heads.operating_points[label])
        assert point is not None and point.threshold == heads.operating_points[label]


def test_rules_check_prints_what_a_moved_threshold_would_hold(tmp_path: Path) -> None:
    """The default hold points and a community's own value, each read off the shipped dev curve."""
    child = tmp_path / "strict.yaml"
    child.write_text(
        "name: strict\ntitle: T\ncommunity: C\nextends: peer-support\n"
        "thresholds:\n  insult:\n    category: harassment\n    bands: [{min: 0.95, action: hold}]\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    shipped = runner.invoke(app, ["rules", "check", str(RULES / "peer-support.yaml")])
    moved = runner.invoke(app, ["rules", "check", str(child)], env={"MODERATION_RULES_DIR": str(RULES)})
    assert shipped.exit_code == moved.exit_code == 0, moved.output
    heads = load_abuse_heads(MODELS)
    assert heads is not None
    curves = dev_curves(MODELS)
    example_file = str(RULES / "examples" / "abuse-heads-hold.yaml")
    example = runner.invoke(app, ["rules", "check", example_file], env={"MODERATION_RULES_DIR": str(RULES)})
    assert example.exit_code == 0, example.output
    for label in ABUSE_LABELS:  # the opt-in example holds each head at its hold point; the default does not act on them
        assert f"  {label} >= {heads.operating_points[label]:.2f} (hold)" in example.output
        assert f"  {label} >= " not in shipped.output
    point = point_at(curves["insult"], 0.95)
    assert point is not None
    line = next(line for line in moved.output.splitlines() if line.startswith("  insult >= 0.95 (hold)"))
    assert f"recall {point.recall:.1%}" in line and f"at an assumed {point.prevalence:.1%} prevalence" in line
    assert f"holds {point.deployed_hold_rate:.1%} of posts" in line


def test_the_rulebooks_default_to_the_hold_points() -> None:
    """The opt-in example holds each head at its hold point; peer-support does not act on the heads."""
    heads = load_abuse_heads(MODELS)
    assert heads is not None
    example = load_rulebook(RULES / "examples" / "abuse-heads-hold.yaml", rules_dir=RULES)
    for label in ABUSE_LABELS:
        [band] = example.thresholds[label].bands
        assert (band.min, band.action.value) == (heads.operating_points[label], "hold")
    assert not set(ABUSE_LABELS) & set(load_rulebook(RULES / "peer-support.yaml", rules_dir=RULES).thresholds)
