"""The API with the real embedded model loaded in its lifespan, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moderation_service.crisis import Dimension
from tests.conftest import Keys, Server, start_server, stop_server

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("model"), keys, {"MODERATION_CLASSIFIERS": "embedded", "MODERATION_CLASSIFIER_TIMEOUT_S": "10"}
    )
    yield running
    stop_server(running)


def test_scores_and_model_version_in_every_decision(model_server: Server, keys: Keys) -> None:
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


def test_long_post_at_the_limit_is_fine(model_server: Server, keys: Keys) -> None:
    text = ("My knees were sore after the physio session but I am glad I went. " * 400)[:20_000]
    with model_server.client(keys.moderate) as c:
        r = c.post("/v1/moderate", json={"text": text})
    assert r.status_code == 200 and r.json()["action"] == "allow"


def test_readme_crisis_example_with_the_real_model(model_server: Server, keys: Keys) -> None:
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
