"""The moderator console in a real browser: Debian's chromium driven by Playwright, against a real API
process, a real worker and a real Redis. Keyboard only; axe-core (tests/browser, from npm) checks every
page for serious or critical WCAG 2.1 A/AA violations; screenshots are kept in test-artifacts/console/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from moderation_service.store import Store
from tests.conftest import ROOT, Keys, Server, start_server, stop_server
from tests.fake_classifier import FAKE
from tests.queue_support import RedisServer, start_worker, stop_workers, wait_for

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/system-deps --test); never a downloaded browser
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"  # scripts/browser-deps
SHOTS = ROOT / "test-artifacts" / "console"
DISTRESS = "Honestly everyone would be better off without me"
URGENT = "I can't do this anymore, I've got my tablets saved up"


@dataclass
class Console:
    server: Server
    redis: RedisServer
    browser: Browser
    keys: Keys
    worker_log: Path

    def page(self, **context: Any) -> Page:
        # bypass_csp: only so axe-core can be injected; the console itself sends a strict CSP (no scripts)
        page = self.browser.new_context(base_url=self.server.url, bypass_csp=True, **context).new_page()
        page.set_default_timeout(20_000)
        return page

    def store(self) -> Store:
        return Store(self.redis.client(), 3600, 3600)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, keys: Keys) -> Iterator[Console]:
    assert AXE.is_file(), "axe-core is missing: run scripts/browser-deps (make test does)"
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushall()
    tmp = tmp_path_factory.mktemp("console")
    server = start_server(tmp, keys, {"MODERATION_REDIS_URL": redis_server.url})
    env = {"MODERATION_REDIS_URL": redis_server.url, "MODERATION_RULES_DIR": str(server.rules_dir), "MODERATION_CLASSIFIERS": FAKE}
    workers = [start_worker(env, tmp / "worker.log")]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            yield Console(server, redis_server, browser, keys, tmp / "worker.log")
        finally:
            browser.close()
            stop_workers(workers)
            stop_server(server)


def submit_and_wait(console: Console, posts: list[tuple[str, str]]) -> list[str]:
    """Queued submissions, each finished by the real worker; their ids."""
    ids = []
    with console.server.client(console.keys.submit_only) as client:
        for post_id, text in posts:
            answer = client.post("/v1/submissions", json={"text": text, "post_id": post_id, "locale": "en-GB"})
            assert answer.status_code in (200, 202), answer.text
            ids.append(answer.json()["submission_id"])
        for sub_id in ids:

            def done(s: str = sub_id) -> bool:
                return bool(client.get(f"/v1/submissions/{s}").json()["status"] == "done")

            assert wait_for(done, 60)
    return ids


def axe_serious(page: Page) -> list[dict[str, Any]]:
    """Serious and critical WCAG 2.1 A/AA violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def tab_to(page: Page, condition: str, limit: int = 60) -> None:
    """Press Tab until the focused element satisfies ``condition`` (a JS expression over ``el``); keyboard only."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!({condition}); }})()"):
            assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none", "focus is not visible"
            return
    raise AssertionError(f"Tab never reached {condition}")


def sign_in(page: Page, key: str) -> None:
    page.goto("/console")
    assert page.url.endswith("/console/sign-in")
    assert axe_serious(page) == []
    tab_to(page, "el.id === 'key'")
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/queue")


def test_queue_blurred_shown_acknowledged_feedback_stored(console: Console) -> None:
    distress_id, urgent_id = submit_and_wait(console, [("b-distress", DISTRESS), ("b-urgent", URGENT)])
    page = console.page()
    sign_in(page, console.keys.moderator)
    assert axe_serious(page) == []
    items = page.locator("article.item")
    assert items.count() == 2 and "Urgent" in items.nth(0).inner_text()  # urgent first, though submitted last
    first = items.nth(0)
    assert not first.locator(".post").is_visible() and first.locator(".cover").is_visible()  # blurred behind "Show post"
    assert URGENT not in first.inner_text()
    page.screenshot(path=str(SHOTS / "queue-protected.png"), full_page=True)
    tab_to(page, "el.tagName === 'SUMMARY'")
    page.keyboard.press("Enter")
    assert first.locator(".post").is_visible() and "tablets" in first.locator(".post").inner_text()
    assert first.locator("mark").count() >= 1  # the matched words are highlighted
    assert axe_serious(page) == []
    page.screenshot(path=str(SHOTS / "queue-shown.png"), full_page=True)
    tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Acknowledge')")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/queue?done=acked")
    assert page.locator("[role=status]").inner_text() == "Acknowledged."
    assert page.locator("article.item").count() == 1
    # Feedback on the acknowledged urgent post, keyboard only.
    page.goto(f"/console/escalations/{urgent_id}")
    assert axe_serious(page) == []
    tab_to(page, "el.id === 'outcome-upheld'")
    page.keyboard.press("Space")
    tab_to(page, "el.id === 'note'")
    page.keyboard.type("called the member; safe plan in place")
    page.screenshot(path=str(SHOTS / "feedback.png"), full_page=True)
    tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Save feedback')")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/queue?done=feedback")
    [record] = [r for r in console.store().iter_feedback() if r.decision_id == urgent_id]
    assert (record.outcome.value, record.final_action.value, record.note) == ("upheld", "escalate", "called the member; safe plan in place")
    assert distress_id in page.content()  # the other escalation is still open
    logs = console.server.log_text() + console.worker_log.read_text(errors="replace")
    assert "tablets" not in logs and "better off" not in logs and "safe plan" not in logs  # no post text or note in any log


def test_two_hundred_percent_zoom_reflows_without_sideways_scrolling(console: Console) -> None:
    """A 1280 px wide window at 200 % zoom is 640 CSS pixels at twice the density."""
    page = console.page(viewport={"width": 640, "height": 720}, device_scale_factor=2)
    sign_in(page, console.keys.moderator)
    for path in ("/console/queue", "/console/settings", "/console/calibration"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), path
        assert axe_serious(page) == []
    page.goto("/console/queue")
    page.screenshot(path=str(SHOTS / "queue-200-percent.png"), full_page=True)


def test_a_key_of_another_tenant_sees_an_empty_queue_in_the_browser(console: Console) -> None:
    from moderation_service.keys import generate_key

    token, key = generate_key(["moderator"], tenant="forum-b")
    keys_file = console.server.rules_dir.parent / "keys"
    keys_file.write_text(keys_file.read_text() + key.line() + "\n")  # picked up by the running server within seconds
    submit_and_wait(console, [("b-tenant-a", DISTRESS + " again")])
    page = console.page()
    page.goto("/console/sign-in")
    assert wait_for(lambda: _signs_in(page, token), 15)
    assert page.locator("article.item").count() == 0 and "better off" not in page.content()


def _signs_in(page: Page, token: str) -> bool:
    page.goto("/console/sign-in")
    page.fill("#key", token)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    return page.url.endswith("/console/queue")


def _draft(rules_dir: Path) -> str:
    """The live rulebook with insults escalated instead of held."""
    text = (rules_dir / "peer-support.yaml").read_text()
    marker = (
        "  - id: harassment.insult\n    category: harassment\n    description: Don't insult or belittle other members.\n    action: hold"
    )
    return text.replace(marker, marker.replace("action: hold", "action: escalate"))


def test_playground_edits_a_draft_and_runs_its_tests(console: Console) -> None:
    page = console.page()
    sign_in(page, console.keys.moderator)
    page.goto("/console/playground")
    assert axe_serious(page) == []
    page.fill("#posts", "you idiot\nmy knees are bad today")
    page.select_option("#rulebook", "__draft__")
    page.fill("#draft", _draft(console.server.rules_dir))
    page.wait_for_selector("#draft-tests td.fail")  # the draft's tests ran as it was edited, before Try
    assert page.locator("#draft-tests").is_visible() and page.locator("article.result").count() == 0
    tab_to(page, "el.tagName === 'BUTTON' && el.textContent === 'Try'")
    page.keyboard.press("Enter")
    page.wait_for_selector("#draft-tests")
    results = page.locator("article.result")
    assert results.count() == 2
    assert "escalate" in results.nth(0).inner_text() and "allow" in results.nth(1).inner_text()
    assert page.locator("#draft-tests td.fail").count() >= 1 and page.locator("#draft-tests td.pass").count() >= 1
    assert axe_serious(page) == []
    page.screenshot(path=str(SHOTS / "playground.png"), full_page=True)


def test_replay_over_two_hundred_stored_posts_matches_the_cli(console: Console, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from moderation_service.store import Scope

    texts = [
        "you idiot",
        "you moron, honestly",
        "hello everyone, new here",
        "my knees hurt after the walk",
        "has anyone tried hydrotherapy?",
    ]
    with console.server.client(console.keys.submit_only) as client:
        for start in range(0, 200, 100):
            items = [{"text": f"{texts[i % 5]} ({i})", "post_id": f"replay-{i}"} for i in range(start, start + 100)]
            assert client.post("/v1/submissions/batch", json={"items": items}).status_code == 202
    corpus = console.store().kept_texts(Scope())
    assert len(corpus) >= 200
    (tmp_path / "posts.jsonl").write_text("".join(json.dumps({"id": i, **p.model_dump(mode="json")}) + "\n" for i, p in corpus))
    (tmp_path / "draft.yaml").write_text(_draft(console.server.rules_dir))
    env = {**os.environ, "MODERATION_RULES_DIR": str(console.server.rules_dir), "MODERATION_CLASSIFIERS": FAKE}
    command = [
        sys.executable,
        "-m",
        "moderation_service",
        "rules",
        "replay",
        str(tmp_path / "draft.yaml"),
        "--corpus",
        str(tmp_path / "posts.jsonl"),
    ]
    cli = subprocess.run([*command, "--json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert expected["posts"] == len(corpus) and expected["changed"] == 80  # the 80 insults: hold -> escalate

    page = console.page()
    sign_in(page, console.keys.moderator)
    page.goto("/console/replay")
    page.fill("#draft", _draft(console.server.rules_dir))
    tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Replay')")
    page.keyboard.press("Enter")
    page.wait_for_selector("#replay-summary")
    summary = page.locator("#replay-summary strong")
    assert (int(summary.nth(0).inner_text()), int(summary.nth(1).inner_text())) == (expected["changed"], expected["posts"])
    rows = page.locator("#replay-transitions tr").all_inner_texts()[1:]
    seen = sorted(tuple(cell.strip() for cell in row.split("\t")) for row in rows)
    want = sorted((t["category"].replace("_", " "), t["before"], t["after"], str(t["posts"])) for t in expected["transitions"])
    assert seen == want
    assert axe_serious(page) == []
    page.screenshot(path=str(SHOTS / "replay.png"), full_page=True)
