"""The real embedded model: committed weights + packaged backbone, int8 ONNX built into a cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moderation_service.bootstrap import ensure_models
from moderation_service.config import ModelSettings, Settings
from moderation_service.core.classifiers.abuse_heads import ABUSE_LABELS
from moderation_service.core.classifiers.embedded import EmbeddedClassifier, onnx_path
from moderation_service.core.crisis import Dimension
from moderation_service.errors import ModelNotBuiltError

pytestmark = pytest.mark.model
MODELS = Path(__file__).resolve().parent.parent / "models" / "embedded"


@pytest.fixture(scope="module")
def model() -> EmbeddedClassifier:
    settings = ModelSettings(models_dir=MODELS.parent, classifiers=["embedded"])
    ensure_models(settings)  # the one place that builds, as the service does
    return EmbeddedClassifier(MODELS, settings.cache_dir, threads=1)


def test_the_constructor_refuses_a_missing_onnx_file_instead_of_building_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotBuiltError) as caught:
        EmbeddedClassifier(MODELS, tmp_path / "empty-cache", threads=1)
    assert caught.value.path == onnx_path(MODELS, tmp_path / "empty-cache")
    assert str(caught.value.path) in str(caught.value) and "moderation-service models build" in str(caught.value)
    assert not (tmp_path / "empty-cache").exists()


def test_scores_every_category_as_probabilities(model: EmbeddedClassifier) -> None:
    assert model.labels[:5] == ("toxicity", "identity_attack", "threat", "distress", "suicide_risk")
    risk = {f"risk.{d.value}" for d in Dimension} | {"level.any", "level.imminent"}
    assert set(model.labels[5:]) == risk | set(ABUSE_LABELS)
    assert set(model.operating_points) == risk and all(0 < t < 1 for t in model.operating_points.values())
    [scores] = model.predict(["Has anyone tried hydrotherapy for their knees?"])
    assert set(scores) == set(model.labels) and all(0.0 <= v <= 1.0 for v in scores.values())


@pytest.mark.parametrize(
    ("higher", "lower", "category"),
    [
        ("You are a pathetic worthless idiot, shut up", "Thanks so much, that really helped me", "toxicity"),
        ("I'm going to find you and smash your face in", "I'm going to find a new physio next month", "threat"),
        ("I feel so hopeless and alone, I can't stop crying", "Had a lovely walk in the park with my dog today", "distress"),
        ("I don't want to be alive anymore, I've been planning how to end it", "My knees hurt after the walk today", "suicide_risk"),
    ],
)
def test_ranks_clear_cases(model: EmbeddedClassifier, higher: str, lower: str, category: str) -> None:
    high, low = model.predict([higher, lower])
    assert high[category] > low[category] + 0.2


def test_batching_and_padding_do_not_change_scores(model: EmbeddedClassifier) -> None:
    texts = ["short", "a somewhat longer sentence about arthritis pain in the mornings and evenings"]
    together = model.logits(texts)
    alone = np.vstack([model.logits([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-3)


def test_long_posts_are_windowed_and_risk_anywhere_counts(model: EmbeddedClassifier) -> None:
    filler = "Today I went to the pharmacy and then had lunch with my sister. " * 150  # ~2,000 tokens
    risky = filler + " I don't want to be alive anymore, I've been planning how to end it. " + filler
    assert len(risky) <= 20_000
    calm_score, risky_score = (s["suicide_risk"] for s in model.predict([filler + filler, risky]))
    assert risky_score > calm_score + 0.2


def test_onnx_file_is_built_into_the_cache_not_the_repo(model: EmbeddedClassifier) -> None:
    path = onnx_path(MODELS, Settings().models.cache_dir)
    assert path.exists() and MODELS not in path.parents
    assert not list(MODELS.glob("*.onnx"))


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_committed_model_files_stay_small() -> None:
    """The shipped weights and the text they were trained and checked on have separate budgets: a clone
    stays small, and a new corpus slice cannot push the weights out of their budget unnoticed."""
    assert _size(MODELS) <= 24 * 1024 * 1024
    assert _size(MODELS.parent / "training_data") + _size(MODELS.parent / "eval") <= 8 * 1024 * 1024
