"""The Detoxify backend, offline, on a tiny random checkpoint in Detoxify's format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from moderation_service.core.options import ClassifierOptions
from moderation_service.errors import ConfigError

CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]


def tiny_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    config_dir = tmp_path / "bert-config"
    config_dir.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "you", "are", "an", "idiot", "hello", "friend", "pain", "is", "bad"]
    (config_dir / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(str(config_dir / "vocab.txt"), model_max_length=512).save_pretrained(config_dir)
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, num_labels=len(CLASSES)
    )
    config.save_pretrained(config_dir)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    checkpoint = tmp_path / "tiny.ckpt"
    torch.save(
        {
            "config": {
                "arch": {
                    "args": {
                        "model_type": "bert-base-uncased",  # a hub name, as in real checkpoints: must not be fetched
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                        "num_classes": len(CLASSES),
                    }
                },
                "dataset": {"args": {"classes": CLASSES}},
            },
            "state_dict": model.state_dict(),
        },
        checkpoint,
    )
    return checkpoint, config_dir


def test_loads_offline_and_scores_long_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moderation_service.core.classifiers.base import create_classifier

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)

    checkpoint, config_dir = tiny_checkpoint(tmp_path)
    options = ClassifierOptions(detoxify_checkpoint=checkpoint, detoxify_config_dir=config_dir, cache_dir=tmp_path / "cache")
    classifier = create_classifier("detoxify", options)
    assert {"toxicity", "identity_attack", "threat"} <= set(classifier.labels)
    scores = classifier.predict(["you are an idiot", "hello friend " * 3000])
    assert len(scores) == 2
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ  # offline by argument, not by process setting
    for row in scores:
        assert set(row) == set(classifier.labels) and all(0.0 <= v <= 1.0 for v in row.values())


def test_missing_configuration_is_a_clear_error(tmp_path: Path) -> None:
    from moderation_service.core.classifiers.base import create_classifier

    with pytest.raises(ConfigError, match="MODERATION_DETOXIFY_CHECKPOINT"):
        create_classifier("detoxify", ClassifierOptions(cache_dir=tmp_path))
