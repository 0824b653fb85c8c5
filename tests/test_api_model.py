"""The API with the real embedded model, in-process (the model is loaded once for the module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from moderation_service.bootstrap import build_pipeline
from moderation_service.config import ModelSettings, PipelineSettings
from moderation_service.core.crisis import CrisisDetector, Dimension
from moderation_service.core.pipeline import Pipeline
from tests.conftest import Api, Keys, make_api, settings_for
from tests.grammars import language_detector, shipped_grammars

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model_pipeline(shared_rules: Path, keys: Keys) -> Iterator[Pipeline]:
    settings = settings_for(
        shared_rules, keys, models=ModelSettings(classifiers=["embedded"]), pipeline=PipelineSettings(classifier_timeout_s=10)
    )
    pipeline = build_pipeline(settings, crisis=CrisisDetector(shipped_grammars(), language_detector()))
    yield pipeline
    pipeline.close()


@pytest.fixture
def model_server(model_pipeline: Pipeline, shared_rules: Path, keys: Keys) -> Api:
    settings = settings_for(
        shared_rules, keys, models=ModelSettings(classifiers=["embedded"]), pipeline=PipelineSettings(classifier_timeout_s=10)
    )
    return make_api(settings, model_pipeline)


def test_scores_and_model_version_in_every_decision(model_server: Api, keys: Keys) -> None:
    with model_server.client(keys.moderate) as c:
        kind = c.post("/v1/moderate", json={"text": "Thank you all, this group has been a lifeline for me"}).json()
        nasty = c.post("/v1/moderate", json={"text": "You are a pathetic worthless excuse for a human being, nobody wants you"}).json()
        ready = c.get("/readyz").json()
    assert kind["action"] == "allow"
    assert {"toxicity", "identity_attack", "threat", "distress", "suicide_risk", "level.any", "level.imminent"} <= set(kind["scores"])
    assert {k for k in kind["scores"] if k.startswith("risk.")} == {f"risk.{d.value}" for d in Dimension}
    assert nasty["scores"]["toxicity"] > kind["scores"]["toxicity"] + 0.3
    assert nasty["action"] == "hold"
    assert kind["models"][0].startswith("embedded@") and "model:embedded" in kind["timings_ms"]
    assert ready["models"] == kind["models"]


def test_long_post_at_the_limit_is_fine(model_server: Api, keys: Keys) -> None:
    text = ("My knees were sore after the physio session but I am glad I went. " * 400)[:20_000]
    with model_server.client(keys.moderate) as c:
        r = c.post("/v1/moderate", json={"text": text})
    assert r.status_code == 200 and r.json()["action"] == "allow"


def test_readme_crisis_example_with_the_real_model(model_server: Api, keys: Keys) -> None:
    """The README's imminent example, as the README prints it (grammar spans, emergency number first)."""
    text = "I cant do this anymore, ive got my tablets saved up"
    with model_server.client(keys.moderate) as c:
        body = c.post("/v1/moderate", json={"text": text, "locale": "en-GB"}).json()
    assert (body["action"], body["priority"], body["publish"], body["distress_level"]) == ("escalate", "urgent", False, "imminent")
    assert body["risk_dimensions"] == ["means", "preparation", "hopelessness"]
    grammar = [(r["id"], r["span"]["start"], r["span"]["end"]) for r in body["reasons"] if r["source"] == "grammar"]
    assert ("crisis.hopelessness", 2, 22) in grammar and ("crisis.means", 35, 51) in grammar
    assert body["reasons"][0]["id"] == "crisis.imminent"
    assert body["signposting"]["resources"][0]["name"] == "Emergency services (999)"
