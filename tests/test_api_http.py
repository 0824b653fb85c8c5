"""The synchronous API: in-process (``TestClient``), and a few checks end to end against a uvicorn process."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from tests.conftest import Api, Keys, Server

DISTINCTIVE = "Zebra-marmalade-7731 I want to die"


def test_health_is_open_and_ready_lists_versions(server: Server) -> None:
    with server.client(None) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
    assert ready["status"] == "ready" and "peer-support" in ready["rulebooks"] and ready["models"] == ["fake@0"]


def test_allow_for_everyday_health_talk(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate", json={"text": "This pain is killing me but my painkillers help", "post_id": "p1"})
    body = r.json()
    assert r.status_code == 200
    assert body["action"] == "allow" and body["publish"] is True and body["post_id"] == "p1"
    assert body["rulebook"]["name"] == "peer-support" and len(body["rulebook"]["version"]) == 12
    assert set(body["timings_ms"]) >= {"normalise", "rules", "policy", "total", "model:fake"}


def test_hold_with_span_in_title(api: Api, keys: Keys) -> None:
    title = "Y0U 1D10T"
    with api.client(keys.moderate) as c:
        body = c.post("/v1/moderate", json={"title": title, "text": "read the thread"}).json()
    assert body["action"] == "hold" and body["publish"] is False
    [reason] = body["reasons"]
    assert reason["id"] == "harassment.insult" and reason["span"]["field"] == "title"
    assert title[reason["span"]["start"] : reason["span"]["end"]] == "Y0U 1D10T"


def test_distress_escalates_signposts_by_locale_and_keeps_post(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        us = c.post("/v1/moderate", json={"text": "I want to die", "locale": "en-US"}).json()
        unknown = c.post("/v1/moderate", json={"text": "I want to die", "locale": "xx-ZZ"}).json()
    assert us["action"] == "escalate" and us["priority"] == "normal" and us["publish"] is True
    assert us["distress_level"] == "high" and us["content_warnings"]
    assert any(res["id"] == "lifeline-988" for res in us["signposting"]["resources"])
    assert unknown["signposting"]["country"] is None
    assert any(res["id"] == "find-a-helpline" for res in unknown["signposting"]["resources"])


def test_imminent_is_urgent_and_withheld(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        body = c.post("/v1/moderate", json={"text": "this is my last post, I'm going to kill myself tonight"}).json()
    assert (body["action"], body["priority"], body["publish"], body["distress_level"]) == ("escalate", "urgent", False, "imminent")


def test_model_scores_go_through_rulebook_thresholds(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        toxic = c.post("/v1/moderate", json={"text": "[fake toxicity=0.97] whatever"}).json()
        mild = c.post("/v1/moderate", json={"text": "[fake toxicity=0.2] whatever"}).json()
        suicidal = c.post("/v1/moderate", json={"text": "[fake level.imminent=0.99] words"}).json()
    assert toxic["action"] == "hold" and toxic["scores"]["toxicity"] == 0.97
    assert toxic["reasons"][0]["source"] == "model" and toxic["reasons"][0]["category"] == "harassment"
    assert mild["action"] == "allow"
    assert suicidal["action"] == "escalate" and suicidal["priority"] == "urgent" and suicidal["signposting"]


@pytest.mark.parametrize("instruction", ["[fake fail]", "[fake sleep=3]"])
def test_classifier_failure_or_timeout_degrades_to_hold(api: Api, keys: Keys, instruction: str) -> None:
    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate", json={"text": f"{instruction} a kind post"})
    body = r.json()
    assert r.status_code == 200
    assert body["action"] == "hold" and body["degraded"] is True
    assert [x["id"] for x in body["reasons"]] == ["moderation_degraded"]


def test_batch_keeps_order(api: Api, keys: Keys) -> None:
    items = [{"text": "hello", "post_id": "a"}, {"text": "you idiot", "post_id": "b"}, {"text": "I want to die", "post_id": "c"}]
    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate/batch", json={"items": items})
    assert r.status_code == 200
    assert [(x["post_id"], x["action"]) for x in r.json()["results"]] == [("a", "allow"), ("b", "hold"), ("c", "escalate")]


def test_batch_over_limit_and_bad_item(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        big = c.post("/v1/moderate/batch", json={"items": [{"text": "x"}] * 65})
        bad = c.post("/v1/moderate/batch", json={"items": [{"text": "ok"}, {"text": "   "}]})
        empty = c.post("/v1/moderate/batch", json={"items": []})
    assert big.status_code == 422 and big.json()["code"] == "invalid_input"
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "items", 1, "text"]
    assert empty.status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 422, "validation_error"),
        (b'{"text": ""}', 422, "validation_error"),
        (b'{"text": "   \\n\\t "}', 422, "validation_error"),
        (b'{"text": 42}', 422, "validation_error"),
        (b'{"text": "hi", "author": {"account_age_days": "old"}}', 422, "validation_error"),
        (b'{"text": "hi", "surprise": 1}', 422, "validation_error"),
        (b'{"text": "unterminated', 400, "invalid_json"),
        (b'{"text": "\xff\xfe"}', 400, "invalid_json"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json"),
        (json.dumps({"text": "x" * 20_001}).encode(), 413, "text_too_long"),
        (json.dumps({"text": "hi", "community": "nope"}).encode(), 404, "unknown_community"),
    ],
)
def test_bad_input_gets_a_problem_not_a_5xx(api: Api, keys: Keys, body: bytes, status: int, code: str) -> None:
    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == code and problem["status"] == status and problem["type"].endswith(code)


def test_ten_thousand_emoji_are_fine(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate", json={"text": "😀" * 10_000})
    assert r.status_code == 200 and r.json()["action"] == "allow"


def test_body_over_limit_is_413(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate", content=b'{"text": "' + b"a" * (9 << 20) + b'"}', headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"


def test_unknown_community_lists_known_ones(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        problem = c.post("/v1/moderate", json={"text": "hi", "community": "nope"}).json()
    assert problem["known"] == ["peer-support"]


def test_auth(api: Api, keys: Keys) -> None:
    with api.client(None) as c:
        missing = c.post("/v1/moderate", json={"text": "hi"})
    with api.client("msk_deadbeef_nope") as c:
        wrong = c.post("/v1/moderate", json={"text": "hi"})
    with api.client(keys.submit_only) as c:
        scope = c.post("/v1/moderate", json={"text": "hi"})
    with api.client(keys.moderate) as c:
        not_admin = c.post("/v1/rulebooks/reload")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
    assert scope.status_code == 403 and not_admin.status_code == 403


def test_rulebooks_code_of_conduct_and_signposting(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        books = c.get("/v1/rulebooks").json()
        html = c.get("/v1/rulebooks/peer-support/code-of-conduct")
        md = c.get("/v1/rulebooks/peer-support/code-of-conduct", params={"format": "md"})
        missing = c.get("/v1/rulebooks/nope/code-of-conduct")
        nz = c.get("/v1/signposting", params={"locale": "en-NZ"}).json()
        fallback = c.get("/v1/signposting", params={"locale": "fr"}).json()
    assert books["default"] == "peer-support" and books["rulebooks"][0]["rules"] >= 15
    assert html.headers["content-type"].startswith("text/html") and "<h2>Be kind</h2>" in html.text
    assert md.text.startswith("# Our community code of conduct")
    assert missing.status_code == 404
    assert nz["country"] == "NZ" and any("1737" in ct["value"] for r in nz["resources"] for ct in r["contacts"])
    assert fallback["resources"] and fallback["country"] is None


def test_reload_refuses_invalid_file_and_keeps_last_good(api: Api, keys: Keys) -> None:
    path = api.rules_dir / "peer-support.yaml"
    original = path.read_text()
    with api.client(keys.admin) as c:
        before = c.get("/v1/rulebooks").json()["rulebooks"][0]["version"]
        path.write_text(
            original.replace("action: hold\n    message: Please keep it kind.", "action: maybe\n    message: Please keep it kind.")
        )
        refused = c.post("/v1/rulebooks/reload")
        still = c.post("/v1/moderate", json={"text": "you idiot"}).json()
        path.write_text(original.replace("- you moron\n", "- you moron\n          - you numpty\n"))
        accepted = c.post("/v1/rulebooks/reload")
        now = c.post("/v1/moderate", json={"text": "you numpty"}).json()
        path.write_text(original)
        c.post("/v1/rulebooks/reload")
    assert refused.status_code == 422 and refused.json()["code"] == "rulebook_invalid"
    [problem] = refused.json()["problems"]
    assert problem["rule_id"] == "harassment.insult" and problem["line"] and problem["file"].endswith("peer-support.yaml")
    assert still["action"] == "hold" and still["rulebook"]["version"] == before
    assert accepted.status_code == 200 and now["action"] == "hold" and now["rulebook"]["version"] != before


def test_sighup_reloads(server: Server, keys: Keys) -> None:
    path = server.rules_dir / "peer-support.yaml"
    original = path.read_text()
    try:
        path.write_text(original.replace("- you moron\n", "- you moron\n          - you plonker\n"))
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        action = "allow"
        with server.client(keys.moderate) as c:
            while action != "hold" and time.monotonic() < deadline:
                action = c.post("/v1/moderate", json={"text": "you plonker"}).json()["action"]
                time.sleep(0.1)
        assert action == "hold"
    finally:
        path.write_text(original)
        os.kill(server.process.pid, signal.SIGHUP)


def test_no_post_text_or_author_id_in_logs(server: Server, keys: Keys) -> None:
    with server.client(keys.moderate) as c:
        c.post("/v1/moderate", json={"text": DISTINCTIVE, "author": {"id": "author-Quokka-4411"}})
        c.post("/v1/moderate", json={"text": f"[fake fail] {DISTINCTIVE}"})
        c.post("/v1/moderate", content=b'{"text": "Zebra-marmalade-7731', headers={"content-type": "application/json"})
        c.post("/v1/moderate", json={"text": 5, "title": DISTINCTIVE})
    time.sleep(0.3)
    log = server.log_text()
    assert '"route": "/v1/moderate"' in log  # the request log is captured, so absence below means something
    assert "Zebra-marmalade" not in log and "Quokka" not in log


def test_validation_errors_do_not_echo_input(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate", json={"text": 5, "title": ["Zebra-marmalade-7731"]})
    assert r.status_code == 422 and "Zebra" not in r.text


def test_not_found_is_a_problem(api: Api) -> None:
    with api.client(None) as c:
        r = c.get("/nowhere")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("text", "locale", "level", "action", "priority", "publish", "dimensions"),
    [
        ("I can't do this anymore, I've got my tablets saved up", "en-GB", "imminent", "escalate", "urgent", False, {"means"}),
        ("I have saved up my tablets and I plan to take them all tonight.", "en-GB", "imminent", "escalate", "urgent", False, {"timing"}),
        ("ya no quiero vivir, tengo las pastillas preparadas", "es-ES", "imminent", "escalate", "urgent", False, {"passive_ideation"}),
        ("ya no quiero vivir, tengo las pastillas preparadas", None, "imminent", "escalate", "urgent", False, {"means"}),
        ("Honestly everyone would be better off without me", "en-GB", "high", "escalate", "normal", True, {"passive_ideation"}),
        ("Just kill me now, three hours on hold to the DWP", "en-GB", "none", "allow", None, True, set()),
        ("I want to die of embarrassment lol", "en-GB", "none", "allow", None, True, set()),
    ],
)
def test_crisis_decisions_over_http(
    api: Api,
    keys: Keys,
    text: str,
    locale: str | None,
    level: str,
    action: str,
    priority: str | None,
    publish: bool,
    dimensions: set[str],
) -> None:
    with api.client(keys.moderate) as c:
        body = c.post("/v1/moderate", json={"text": text, **({"locale": locale} if locale else {})}).json()
    assert (body["distress_level"], body["action"], body["priority"], body["publish"]) == (level, action, priority, publish)
    assert dimensions <= set(body["risk_dimensions"])
    if level == "imminent":
        assert body["signposting"]["resources"][0]["id"].startswith("emergency")
        assert "emergency" in body["author_message"] and "only you can see it" in body["author_message"]
    if level == "high":
        assert "Your post is up" in body["author_message"]
    for reason in body["reasons"]:
        if reason["span"]:
            assert text[reason["span"]["start"] : reason["span"]["end"]].strip()


def test_author_message_and_signposting_never_repeat_a_sentence(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        bodies = [c.post("/v1/moderate", json={"text": t}).json() for t in ("I'm going to kill myself tonight", "I want to die")]
    for body in bodies:
        author = {s.strip() for s in body["author_message"].split(".") if s.strip()}
        signpost = {s.strip() for s in body["signposting"]["message"].split(".") if s.strip()}
        assert not author & signpost


def test_language_is_reported_and_unsupported_languages_are_flagged(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        es = c.post("/v1/moderate", json={"text": "Hola a todos, hoy mi artritis está fatal pero voy tirando"}).json()
        en = c.post("/v1/moderate", json={"text": "Hello all, my arthritis is bad today but I'm getting by"}).json()
    assert (es["language"], es["language_supported"], es["action"]) == ("es", False, "allow")
    assert (en["language"], en["language_supported"]) == ("en", True)


def test_a_lone_surrogate_is_replaced_at_the_boundary_not_a_500(api: Api, keys: Keys) -> None:
    """JSON may carry an unpaired surrogate ("\\ud800"); the post is still judged, the character becomes U+FFFD."""

    def raw(payload: object) -> dict[str, Any]:  # json.dumps escapes the surrogate, as a real client does
        return {"content": json.dumps(payload).encode(), "headers": {"Content-Type": "application/json"}}

    with api.client(keys.moderate) as c:
        one = c.post("/v1/moderate", **raw({"title": "\ud800", "text": "you idiot \ud800"}))
        batch = c.post("/v1/moderate/batch", **raw({"items": [{"text": "fine \udfff"}, {"text": "you idiot"}]}))
    assert one.status_code == 200 and one.json()["action"] == "hold"
    assert batch.status_code == 200 and [d["action"] for d in batch.json()["results"]] == ["allow", "hold"]
