"""Coral's external moderation phase, called exactly as Coral calls it, answers checked by a port of Coral's
own response validation (tests/coral_support.py); the answer-before-write test runs against a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from moderation_service.config import CoralSettings
from moderation_service.core.model_runs import RunQueue
from moderation_service.core.pipeline import Pipeline
from tests.conftest import CORAL_NEW_SECRET as NEW_SECRET
from tests.conftest import CORAL_OLD_SECRET as OLD_SECRET
from tests.conftest import CORAL_TENANT as TENANT
from tests.conftest import Api, Keys, Server, make_api, settings_for
from tests.coral_support import CoralAnswer, coral_body, coral_signature, validate_coral_answer

PATIENT_TENANT = "patient-tenant"  # a tenant whose phase timeout is Coral's maximum, for model-dependent answers
PATH = "/integrations/coral/moderation-phase"


@pytest.fixture
def fresh_load(shared_pipeline: Pipeline) -> Iterator[None]:
    """Each test starts with an empty backlog and no run-time estimate (slow scripted runs would skew the next test)."""
    saved = shared_pipeline.runs
    shared_pipeline.runs = RunQueue(saved.runners, saved.limit_units)
    yield
    shared_pipeline.runs.close()
    shared_pipeline.runs = saved


@pytest.fixture
def coral(shared_pipeline: Pipeline, shared_rules: Path, keys: Keys, redis_url: str, fresh_load: None) -> Api:
    settings = CoralSettings(secrets={TENANT: [NEW_SECRET, OLD_SECRET], PATIENT_TENANT: [NEW_SECRET]}, timeouts_ms={PATIENT_TENANT: 10_000})
    return make_api(settings_for(shared_rules, keys, redis_url, coral=settings), shared_pipeline)


def call(api: Api, text: str, *, secrets: tuple[str, ...] = (NEW_SECRET,), tenant: str = TENANT, **fields: Any) -> tuple[int, str]:
    body = coral_body(text, tenant=tenant, **fields)
    headers = {"Content-Type": "application/json", "X-Coral-Signature": coral_signature(body, *secrets)}
    with api.client(None) as c:
        response = c.post(PATH, content=body.encode(), headers=headers)
    return response.status_code, response.text


def answer(api: Api, text: str, **kwargs: Any) -> CoralAnswer | None:
    """What Coral concludes: None = no opinion (published), else the validated answer (raises where Coral would)."""
    status, body = call(api, text, **kwargs)
    assert status in (200, 204), body
    return validate_coral_answer(status, body)


def escalations(api: Api, keys: Keys) -> list[dict[str, Any]]:
    with api.client(keys.moderator) as c:
        items: list[dict[str, Any]] = c.get("/v1/escalations").json()["escalations"]
    return items


def withheld(result: CoralAnswer | None) -> bool:
    return result is not None and result.status == "SYSTEM_WITHHELD" and bool(result.actions)


# --- requests exactly as Coral sends them -------------------------------------------------------------------------


def test_allow_is_no_opinion(coral: Api) -> None:
    assert answer(coral, "<p>Here's a comment!</p>") is None


def test_hold_toxic_and_spam_pass_corals_validation(coral: Api) -> None:
    toxic = answer(coral, "<p>you idiot</p>")
    spam = answer(coral, "Turmeric capsules for sale, DM for prices", parent="d79b787f-f406-49a0-a179-72e3652e54be")
    assert withheld(toxic) and toxic and toxic.actions and toxic.actions[0].reason == "COMMENT_DETECTED_TOXIC"
    assert withheld(spam) and spam and spam.actions and spam.actions[0].reason == "COMMENT_DETECTED_SPAM"


def test_rotating_secrets_comma_joined_any_one_valid(coral: Api) -> None:
    assert withheld(answer(coral, "you idiot", secrets=("ssc_retired_000000000000", OLD_SECRET)))
    status, _ = call(coral, "you idiot", secrets=("ssc_retired_000000000000",))
    assert status == 401


@pytest.mark.parametrize(
    "html",
    [
        "<p>I'm going to kill&nbsp;myself tonight</p>",
        "<p>I'm going to kill<br>myself tonight</p>",
        "I&#39;m going to kill<br/>myself <b>tonight</b>",
    ],
)
def test_html_bodies_are_read_as_text_imminent_risk_withheld(coral: Api, html: str) -> None:
    assert withheld(answer(coral, html))


@pytest.mark.parametrize("html", ["you&nbsp;idiot", "<p>you</p><p>idiot</p>", "you<br>idiot", "<div>you <i>idiot</i></div>"])
def test_html_insults_are_held(coral: Api, html: str) -> None:
    """Block ends and line breaks separate words: "you</p><p>idiot" still reads as two words."""
    assert withheld(answer(coral, html))


def test_blockquote_is_a_quote_not_the_authors_words(coral: Api) -> None:
    """The quote-aware rule (unless: quoted) sees the quoted insult as a quote."""
    assert answer(coral, "<blockquote><p>you idiot</p></blockquote><p>Someone called me that and it hurt.</p>") is None


# --- fail closed at the edges --------------------------------------------------------------------------------------


def test_comment_over_the_length_limit_is_judged_on_its_first_part_and_withheld(coral: Api) -> None:
    long = "<p>" + "A long and friendly update about my week. " * 600 + "</p>"  # ~25,000 characters
    result = answer(coral, long)
    assert withheld(result), "the unread rest could hide anything: never published unread"


def test_signed_request_in_an_unknown_shape_is_withheld_not_published(coral: Api) -> None:
    body = '{\n  "action": "NEW",\n  "comment": {\n    "text": "you idiot"\n  }\n}'
    headers = {"Content-Type": "application/json", "X-Coral-Signature": coral_signature(body, NEW_SECRET)}
    with coral.client(None) as c:
        response = c.post(PATH, content=body.encode(), headers=headers)
    assert withheld(validate_coral_answer(response.status_code, response.text))


def test_image_only_comment_has_nothing_to_judge(coral: Api) -> None:
    assert answer(coral, '<p><img src="https://example.org/cat.png"></p>') is None


@pytest.mark.parametrize("role", ["MODERATOR", "STAFF", "ADMIN"])
def test_staff_coral_sends_are_moderated_like_anyone(coral: Api, role: str) -> None:
    """Coral approves its own staff before external phases; those it sends (site moderators posting outside
    their sites) get no exemption here."""
    assert withheld(answer(coral, "you idiot", role=role))


# --- answers in time ----------------------------------------------------------------------------------------------


def test_model_too_slow_for_the_budget_rules_and_grammars_answer(coral: Api, keys: Keys) -> None:
    """The scripted model sleeps 0.6 s, Coral's budget is 200 ms: the rules and crisis grammars answer,
    and the crisis post is still withheld and queued urgently."""
    result = answer(coral, "I'm going to kill&nbsp;myself tonight [fake sleep=0.6]")
    assert withheld(result)
    assert any(e["priority"] == "urgent" for e in escalations(coral, keys))


def test_model_finishing_late_with_a_worse_decision_is_escalated(coral: Api, keys: Keys) -> None:
    """Answered "no opinion" in time (no rule or grammar hit); the model then finds a threat: a person is asked to look."""
    assert answer(coral, "see you at the meeting [fake threat=0.97 sleep=0.5]") is None
    deadline = time.monotonic() + 20
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not found:
        found = [e for e in escalations(coral, keys) if "threats" in e["categories"]]
        time.sleep(0.1)
    assert found and found[0]["context"] == "http://localhost:1313/posts/a-story-url/"


def test_model_ready_in_time_is_used(coral: Api) -> None:
    assert withheld(answer(coral, "see you at the meeting [fake threat=0.97]", tenant=PATIENT_TENANT))


def test_per_tenant_budget_is_validated() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 100"):
        CoralSettings(timeouts_ms={"t": 50})
    assert CoralSettings(timeouts_ms={"t": 500}).budget_ms("t") == 500
    assert CoralSettings().budget_ms("other") == 200


# --- escalations: de-duplicated, recorded after the answer ---------------------------------------------------------


def test_new_then_edit_with_the_same_text_is_one_escalation(coral: Api, keys: Keys) -> None:
    text = "I can't do this anymore, I've got my tablets saved up"
    assert withheld(answer(coral, text, action="NEW"))
    assert withheld(answer(coral, text, action="EDIT"))
    assert withheld(answer(coral, text + " tonight", action="EDIT"))
    contexts = [e for e in escalations(coral, keys) if e["context"] == "http://localhost:1313/posts/a-story-url/"]
    assert len(contexts) == 2  # the unchanged edit is the same escalation; the changed text is a new one


CRISIS_CASES = [
    # (text, Coral status: withheld for imminent, flagged but published for high, no opinion for safe)
    ("I can't do this anymore, I've got my tablets saved up", "SYSTEM_WITHHELD"),
    ("ya no quiero vivir, tengo las pastillas preparadas", "SYSTEM_WITHHELD"),
    ("Honestly everyone would be better off without me", None),
    ("Just kill me now, three hours on hold to the DWP", "allow"),
]


@pytest.mark.parametrize(("text", "status"), CRISIS_CASES)
def test_crisis_posts(coral: Api, text: str, status: str | None) -> None:
    result = answer(coral, text)
    if status == "allow":
        assert result is None
        return
    assert result is not None and result.status == status and result.actions, "every risk post is flagged; imminent ones withheld"


def test_lone_surrogate_is_still_moderated(coral: Api) -> None:
    assert withheld(answer(coral, "you idiot \ud800"))


def test_answer_goes_out_before_the_escalation_is_written(server: Server, redis_url: str) -> None:
    """A real server, Redis refusing writes (CLIENT PAUSE WRITE): the imminent-risk comment is answered
    (withheld) while the escalation write still waits; it lands once Redis takes writes again."""
    client = redis.Redis.from_url(redis_url)
    body = coral_body("<p>I'm going to kill&nbsp;myself tonight</p>", tenant=TENANT, story="paused-story")
    headers = {"Content-Type": "application/json", "X-Coral-Signature": coral_signature(body, NEW_SECRET)}
    client.execute_command("CLIENT", "PAUSE", "20000", "WRITE")
    try:
        response = httpx.post(server.url + PATH, content=body.encode(), headers=headers, timeout=15)
        assert withheld(validate_coral_answer(response.status_code, response.text))
        assert client.zcard("ms:escalations:open") == 0, "the answer did not wait for the write"
    finally:
        client.execute_command("CLIENT", "UNPAUSE")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and client.zcard("ms:escalations:open") == 0:
        time.sleep(0.1)
    assert client.zcard("ms:escalations:open") == 1
    client.close()
