"""The shipped abuse heads through the real model, on every path: sync, queue, Coral, Perspective, classify.

A handful of clear cases written for this file (not taken from any suite or corpus), under the example
rulebook that lets the heads hold (``rules/examples/abuse-heads-hold.yaml``). Each held case must carry
the head's own reason (source ``model``, the head's id, its category and score), so the test fails if the
heads stop seeing it even where a rule also holds the post. The default rulebook reports the heads
without holding on them; one test checks that.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moderation_service.bootstrap import build_pipeline
from moderation_service.config import CoralSettings, ModelSettings, PipelineSettings, RulesSettings, Settings
from moderation_service.core.classifiers.abuse_heads import load_abuse_heads
from moderation_service.core.crisis import CrisisDetector
from moderation_service.core.pipeline import Pipeline, Post
from tests.conftest import CORAL_NEW_SECRET, CORAL_TENANT, Api, Keys, copy_rules, make_api, settings_for
from tests.coral_support import coral_body, coral_signature, validate_coral_answer
from tests.grammars import language_detector, shipped_grammars
from tests.queue_support import RedisServer, start_worker, stop_workers, wait_for

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parent.parent

SELLING = "Handmade turmeric joint capsules, 3 tubs for £30 this week only, message me your address to order"
INSULT = "@Margaret you stupid old cow, nobody asked for your useless opinion"
GROUP_HATE = "People with fibromyalgia are leeches on the taxpayer and should be shipped off where nobody has to see them"
HELD = [(SELLING, "commercial", "commercial"), (INSULT, "insult", "harassment"), (GROUP_HATE, "identity_hate", "hate")]
# Counter-speech is not here: the identity_hate head holds "Disabled people are not a burden, whatever the
# tabloids say, and I am tired of hearing it" (0.94 against its 0.93 hold point); see models/README.md.
SAFE = [
    "The chemist had no gabapentin in today so I have to go back on Friday for the rest of my prescription",
    "This stupid bus is late again and my hips are killing me in the cold",
]
MODEL: dict[str, object] = {"models": ModelSettings(classifiers=["embedded"]), "pipeline": PipelineSettings(classifier_timeout_s=20)}
HOLDING = "abuse-heads-hold"


def head_reasons(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in decision["reasons"] if r["source"] == "model" and r["id"] in ("commercial", "insult", "identity_hate")}


def assert_held_by(decision: dict[str, Any], head: str, category: str) -> None:
    assert decision["action"] == "hold", decision["reasons"]
    reason = head_reasons(decision)[head]
    assert (reason["category"], reason["action"]) == (category, "hold")
    assert reason["score"] == decision["scores"][head] >= 0.5 and reason["message"]


@pytest.fixture(scope="module")
def holding_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped rules with the example that lets the heads hold, as the default rulebook."""
    rules = copy_rules(tmp_path_factory.mktemp("abuse-heads"))
    shutil.copy(ROOT / "rules" / "examples" / f"{HOLDING}.yaml", rules)
    return rules


def _settings(rules: Path, keys: Keys, redis_url: str | None = None, **groups: object) -> Settings:
    return settings_for(rules, keys, redis_url, rules=RulesSettings(rules_dir=rules, default_rulebook=HOLDING), **MODEL, **groups)


@pytest.fixture(scope="module")
def model_pipeline(holding_rules: Path, keys: Keys) -> Iterator[Pipeline]:
    pipeline = build_pipeline(_settings(holding_rules, keys), crisis=CrisisDetector(shipped_grammars(), language_detector()))
    yield pipeline
    pipeline.close()


@pytest.fixture
def model_api(model_pipeline: Pipeline, holding_rules: Path, keys: Keys, redis_url: str) -> Api:
    coral = CoralSettings(secrets={CORAL_TENANT: [CORAL_NEW_SECRET]}, timeouts_ms={CORAL_TENANT: 10_000})
    return make_api(_settings(holding_rules, keys, redis_url, coral=coral), model_pipeline)


def test_the_default_rulebook_scores_the_heads_without_acting_on_them(shared_rules: Path, keys: Keys) -> None:
    settings = settings_for(shared_rules, keys, None, **MODEL)
    pipeline = build_pipeline(settings, crisis=CrisisDetector(shipped_grammars(), language_detector()))
    try:
        decision = pipeline.moderate(Post(text=SELLING)).model_dump(mode="json")
    finally:
        pipeline.close()
    heads = load_abuse_heads(ROOT / "models" / "embedded")
    assert heads is not None
    assert decision["scores"]["commercial"] >= heads.operating_points["commercial"]  # the head sees it...
    assert head_reasons(decision) == {}  # ...and the default rulebook does not act on it


def test_pipeline_holds_clear_cases_by_the_heads_and_not_their_safe_twins(model_pipeline: Pipeline) -> None:
    held = model_pipeline.moderate_batch([Post(text=text) for text, _, _ in HELD])
    for decision, (_, head, category) in zip(held, HELD, strict=True):
        assert_held_by(decision.model_dump(mode="json"), head, category)
    for decision in model_pipeline.moderate_batch([Post(text=text) for text in SAFE]):
        assert decision.action.value == "allow" and not head_reasons(decision.model_dump(mode="json")), decision.reasons


def test_sync_route(model_api: Api, keys: Keys) -> None:
    with model_api.client(keys.moderate) as c:
        for text, head, category in HELD:
            assert_held_by(c.post("/v1/moderate", json={"text": text}).json(), head, category)
        assert c.post("/v1/moderate", json={"text": SAFE[0]}).json()["action"] == "allow"


def test_perspective_reads_the_heads(model_api: Api, keys: Keys) -> None:
    attributes: dict[str, dict[str, object]] = {"INSULT": {}, "IDENTITY_ATTACK": {}, "SPAM": {}, "COMMERCIAL": {}, "TOXICITY": {}}
    with model_api.client(keys.moderate) as c:
        scored = {}
        for text, head, _ in HELD:
            body = {"comment": {"text": text}, "requestedAttributes": attributes}
            scored[head] = {
                k: v["summaryScore"]["value"]
                for k, v in c.post("/v1alpha1/comments:analyze", params={"key": keys.moderate}, json=body).json()["attributeScores"].items()
            }
            decision = c.post("/v1/moderate", json={"text": text}).json()
            assert scored[head]["INSULT"] == pytest.approx(decision["scores"]["insult"], abs=1e-4)
    assert scored["commercial"]["SPAM"] == scored["commercial"]["COMMERCIAL"] > 0.5 > scored["insult"]["SPAM"]
    assert scored["insult"]["INSULT"] > 0.5 > scored["commercial"]["INSULT"]
    assert scored["identity_hate"]["IDENTITY_ATTACK"] > 0.5 > scored["commercial"]["IDENTITY_ATTACK"]


def test_coral_withholds_selling_as_spam_and_abuse_as_toxic(model_api: Api) -> None:
    reasons = {}
    for text, head, _ in HELD:
        body = coral_body(text, tenant=CORAL_TENANT)
        headers = {"Content-Type": "application/json", "X-Coral-Signature": coral_signature(body, CORAL_NEW_SECRET)}
        with model_api.client(None) as c:
            response = c.post("/integrations/coral/moderation-phase", content=body.encode(), headers=headers)
        answer = validate_coral_answer(response.status_code, response.text)
        assert answer is not None and answer.actions
        reasons[head] = answer.actions[0].reason
    assert reasons == {"commercial": "COMMENT_DETECTED_SPAM", "insult": "COMMENT_DETECTED_TOXIC", "identity_hate": "COMMENT_DETECTED_TOXIC"}


def test_queue_worker_with_the_real_model(
    model_api: Api, keys: Keys, redis_server: RedisServer, holding_rules: Path, tmp_path: Path
) -> None:
    env = {
        "MODERATION_REDIS_URL": redis_server.url,
        "MODERATION_RULES_DIR": str(holding_rules),
        "MODERATION_DEFAULT_RULEBOOK": HOLDING,
        "MODERATION_CLASSIFIERS": "embedded",
        "MODERATION_CLASSIFIER_TIMEOUT_S": "20",
    }
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        with model_api.client(keys.submit_only) as c:
            ids = [
                c.post("/v1/submissions", json={"text": text, "post_id": f"abuse-{i}"}).json()["submission_id"]
                for i, (text, _, _) in enumerate(HELD)
            ]
            results: dict[str, dict[str, Any]] = {}

            def done() -> bool:
                for sub in ids:
                    results[sub] = c.get(f"/v1/submissions/{sub}").json()
                return all(r.get("status") == "done" for r in results.values())

            assert wait_for(done, 120), results
    finally:
        stop_workers([worker])
    for sub, (_, head, category) in zip(ids, HELD, strict=True):
        assert_held_by(results[sub]["decision"], head, category)


def test_classify_command(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps({"id": str(i), "text": text}) + "\n" for i, (text, _, _) in enumerate(HELD)), encoding="utf-8")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "moderation_service",
            "classify",
            str(posts),
            "--rulebook",
            str(ROOT / "rules" / "examples" / f"{HOLDING}.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    for line, (_, head, category) in zip(lines, HELD, strict=True):
        assert_held_by(line.get("decision", line), head, category)
