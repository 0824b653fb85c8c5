"""Sync decisions of every action get an id moderators can give feedback on (a real Redis behind the store)."""

from __future__ import annotations

from tests.conftest import Api, Keys

FEEDBACK = {"outcome": "overturned", "final_action": "allow", "note": "a wrong hold"}


def test_allow_and_hold_get_a_decision_id_and_take_feedback(api_with_store: Api, keys: Keys) -> None:
    with api_with_store.client(keys.moderate) as c, api_with_store.client(keys.moderator) as m:
        allowed = c.post("/v1/moderate", json={"text": "my knees are better today"}).json()
        held = c.post("/v1/moderate", json={"text": "you idiot", "post_id": "p-1"}).json()
        batch = c.post("/v1/moderate/batch", json={"items": [{"text": "hello"}, {"text": "you idiot"}]}).json()["results"]
        assert (allowed["action"], held["action"]) == ("allow", "hold")
        ids = [allowed["decision_id"], held["decision_id"], *(r["decision_id"] for r in batch)]
        assert all(ids) and len(set(ids)) == 4
        for decision_id in ids:
            assert m.post(f"/v1/decisions/{decision_id}/feedback", json=FEEDBACK).status_code == 201
        assert m.post("/v1/decisions/0123456789abcdef01234567/feedback", json=FEEDBACK).status_code == 404


def test_without_a_store_the_decision_stands_without_an_id(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate", json={"text": "you idiot"})
    assert r.status_code == 200 and r.json()["action"] == "hold" and r.json()["decision_id"] is None
