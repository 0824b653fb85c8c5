"""Turn the shared public datasets into one multi-label training set.

Each loader maps a dataset's own labels onto this service's categories; a category a dataset
says nothing about stays unlabelled (masked in the loss), so no set teaches a false negative
for something it never annotated. Only sets whose licence allows training a shipped model are
used here; the "not stated" sets appear only in ``evaluate``.
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["CATEGORIES", "Example", "LoadedData", "load_training_data", "read_rows", "sha256_of"]

CATEGORIES = ("toxicity", "identity_attack", "threat", "distress", "suicide_risk")

_DISTRESS_EMOTIONS = ("sadness", "grief", "fear", "nervousness")
_DISTRESS_TOPICS = {
    "depression", "anxiety", "trauma", "grief-and-loss", "stress", "self-esteem",
    "domestic-violence", "eating-disorders", "substance-abuse", "addiction",
}  # fmt: skip
# Weak label: first-person suicidal thoughts, used only on help-seeking text (counsel_chat).
_IDEATION = re.compile(
    r"\b(suicid\w*|kill(ing)? myself|end(ing)? my life|want(ed)? to die|self[- ]?harm\w*|"
    r"cut(ting)? myself|take my (own )?life)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Example:
    text: str
    labels: dict[str, int]
    source: str


@dataclass
class LoadedData:
    train: list[Example] = field(default_factory=list)
    dev: list[Example] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a dataset CSV (UTF-8, header row), as dicts."""
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def sha256_of(path: Path) -> str:
    """Recorded beside a trained model for every file it read."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _split(examples: list[Example], dev_share: float, seed: int) -> tuple[list[Example], list[Example]]:
    shuffled = examples[:]
    random.Random(seed).shuffle(shuffled)
    cut = int(len(shuffled) * dev_share)
    return shuffled[cut:], shuffled[:cut]


def _tweeteval(folder: str, category: str, also_toxic: bool) -> Callable[[Path], tuple[list[Example], list[Example]]]:
    def load(root: Path) -> tuple[list[Example], list[Example]]:
        def convert(name: str) -> list[Example]:
            out = []
            for row in read_rows(root / folder / name):
                label = int(row["label"])
                labels = {category: label}
                if also_toxic and label == 1:
                    labels["toxicity"] = 1
                out.append(Example(row["text"], labels, folder))
            return out

        return convert("train.csv"), convert("val.csv")

    return load


def _davidson(root: Path) -> tuple[list[Example], list[Example]]:
    examples = []
    kept_offensive = 0
    for row in read_rows(root / "davidson_hate_offensive" / "train.csv"):
        label = int(row["label"])  # 0 hate, 1 offensive, 2 neither
        if label == 1:
            kept_offensive += 1
            if kept_offensive > 4000:  # the set is 77 % offensive: keep it from swamping the rest
                continue
        labels = {"toxicity": int(label != 2), "identity_attack": int(label == 0)}
        examples.append(Example(row["text"], labels, "davidson_hate_offensive"))
    return _split(examples, 0.1, seed=1)


def _stormfront(root: Path) -> tuple[list[Example], list[Example]]:
    examples = []
    for row in read_rows(root / "stormfront_hate" / "train.csv"):
        if row["label"] not in ("hate", "noHate"):
            continue  # "relation" and "idk/skip" need context this set does not give
        hate = int(row["label"] == "hate")
        labels = {"identity_attack": hate, **({"toxicity": 1} if hate else {})}
        examples.append(Example(row["text"], labels, "stormfront_hate"))
    return _split(examples, 0.1, seed=2)


def _ethos(root: Path) -> tuple[list[Example], list[Example]]:
    targets = ("gender", "race", "national_origin", "disability", "religion", "sexual_orientation")
    multi = {row["text"]: row for row in read_rows(root / "ethos_hate" / "multilabel_train.csv")}
    examples = []
    for row in read_rows(root / "ethos_hate" / "binary_train.csv"):
        labels = {"toxicity": int(row["label"])}
        detail = multi.get(row["text"])
        if detail is not None:
            labels["identity_attack"] = int(any(float(detail[t]) >= 0.5 for t in targets))
            labels["threat"] = int(float(detail["violence"]) >= 0.5)
        examples.append(Example(row["text"], labels, "ethos_hate"))
    return _split(examples, 0.15, seed=3)


def _goemotions(root: Path) -> tuple[list[Example], list[Example]]:
    def convert(name: str) -> list[Example]:
        out = []
        for row in read_rows(root / "goemotions" / name):
            distress = int(any(row[e] == "1" for e in _DISTRESS_EMOTIONS))
            out.append(Example(row["text"], {"distress": distress}, "goemotions"))
        return out

    return convert("train.csv"), convert("dev.csv")


def _tweeteval_emotion(root: Path) -> tuple[list[Example], list[Example]]:
    def convert(name: str) -> list[Example]:
        return [
            Example(row["text"], {"distress": int(row["label_name"] == "sadness")}, "tweeteval_emotion")
            for row in read_rows(root / "tweeteval_emotion" / name)
        ]

    return convert("train.csv"), convert("val.csv")


def _counsel_chat(root: Path) -> tuple[list[Example], list[Example]]:
    examples = []
    for row in read_rows(root / "counsel_chat" / "questions_train_val.csv"):
        labels = {"toxicity": 0, "threat": 0, "identity_attack": 0}
        if row["topic"] in _DISTRESS_TOPICS:
            labels["distress"] = 1
        labels["suicide_risk"] = int(bool(_IDEATION.search(row["text"])))
        examples.append(Example(row["text"], labels, "counsel_chat"))
    return _split(examples, 0.15, seed=4)


def _medical_qa(root: Path) -> tuple[list[Example], list[Example]]:
    """Half of the health questions teach 'health talk is not abuse or a crisis'; the other half is dev.

    They are labelled distress 0 too: a worried question about symptoms should get an answer from
    peers, not a crisis signpost. (Questions that mention suicide or self-harm are left unlabelled.)
    """
    negatives = {"toxicity": 0, "identity_attack": 0, "threat": 0, "distress": 0, "suicide_risk": 0}
    examples = []
    for row in read_rows(root / "medical_qa_forums" / "train.csv"):
        labels = {"toxicity": 0, "identity_attack": 0, "threat": 0} if _IDEATION.search(row["text"]) else negatives
        examples.append(Example(row["text"], labels, "medical_qa_forums"))
    return _split(examples, 0.5, seed=5)


def _composed(pools: dict[str, list[str]], count: int, seed: int) -> list[Example]:
    """Forum-length posts from the hand-written sentence pools (see handwritten.yaml)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        positive = i % 2 == 0
        parts = rng.sample(pools["context"], rng.randint(1, 3)) + rng.sample(pools["low_mood"], rng.randint(1, 3))
        if positive:
            parts += rng.sample(pools["ideation"], rng.randint(1, 2))
        else:
            parts += rng.sample(pools["hopeful_negative"], rng.randint(0, 2))
        rng.shuffle(parts)
        labels = {"suicide_risk": int(positive), "distress": 1, "toxicity": 0, "threat": 0, "identity_attack": 0}
        out.append(Example(" ".join(parts), labels, "handwritten_composed"))
    return out


def _handwritten(path: Path) -> tuple[list[Example], list[Example]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    examples = [
        Example(str(text), {k: int(v) for k, v in group["labels"].items()}, "handwritten")
        for group in document["groups"]
        for text in group["texts"]
    ]
    return examples + _composed(document["pools"], 1200, seed=7), []


LOADERS: dict[str, tuple[list[str], Callable[[Path], tuple[list[Example], list[Example]]]]] = {
    "tweeteval_offensive": (["train.csv", "val.csv"], _tweeteval("tweeteval_offensive", "toxicity", False)),
    "tweeteval_hate": (["train.csv", "val.csv"], _tweeteval("tweeteval_hate", "identity_attack", True)),
    "davidson_hate_offensive": (["train.csv"], _davidson),
    "stormfront_hate": (["train.csv"], _stormfront),
    "ethos_hate": (["binary_train.csv", "multilabel_train.csv"], _ethos),
    "goemotions": (["train.csv", "dev.csv"], _goemotions),
    "tweeteval_emotion": (["train.csv", "val.csv"], _tweeteval_emotion),
    "counsel_chat": (["questions_train_val.csv"], _counsel_chat),
    "medical_qa_forums": (["train.csv"], _medical_qa),
}


def load_training_data(datasets_dir: Path, handwritten: Path) -> LoadedData:
    """Every licensed set, mapped to CATEGORIES, with the sha256 of each file read."""
    data = LoadedData()
    for name, (files, loader) in LOADERS.items():
        train, dev = loader(datasets_dir)
        data.train += train
        data.dev += dev
        for file in files:
            data.files[f"{name}/{file}"] = sha256_of(datasets_dir / name / file)
    train, _ = _handwritten(handwritten)
    data.train += train
    data.files[f"project:{handwritten.name}"] = sha256_of(handwritten)
    return data
