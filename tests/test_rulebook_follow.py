"""A queue job that checks the published rulebook version while another thread reloads waits for that reload.

Unit test of ``follow``'s locking with stand-ins for Redis and the rulebooks; the same path runs for real
(API, worker, Redis) in ``test_rulebook_sync.py``, where this race once failed a queued post.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from moderation_service.service.parts import RulebookSyncState, Services
from moderation_service.service.rulebook_sync import follow, live_version


@dataclass
class Book:
    name: str
    version: str


@dataclass
class SlowRulebooks:
    """Reload swaps in the new books only when ``release`` is set, as a real reload takes time."""

    books: list[Book]
    after_reload: list[Book]
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def all(self) -> list[Book]:
        return list(self.books)

    def reload(self) -> None:
        self.started.set()
        assert self.release.wait(10)
        self.books = list(self.after_reload)


def services_with(rulebooks: SlowRulebooks, published: str) -> Services:
    store = SimpleNamespace(published_rulebook_version=lambda: published)
    fake = SimpleNamespace(store=store, pipeline=SimpleNamespace(rulebooks=rulebooks), rulebook_sync=RulebookSyncState())
    return cast(Services, fake)


def test_a_check_during_a_reload_returns_only_once_the_new_rules_are_live() -> None:
    old = [Book("peer-support", "a")]
    new = [*old, Book("diabetes-forum", "b")]
    rulebooks = SlowRulebooks(books=old, after_reload=new)
    published = live_version(cast(Services, SimpleNamespace(pipeline=SimpleNamespace(rulebooks=SlowRulebooks(new, new)))))
    services = services_with(rulebooks, published)

    follower = threading.Thread(target=follow, args=(services,))
    follower.start()
    assert rulebooks.started.wait(10)

    seen: dict[str, Any] = {}

    def job_check() -> None:
        follow(services)
        seen["books"] = [b.name for b in rulebooks.all()]

    job = threading.Thread(target=job_check)
    job.start()
    job.join(0.3)
    assert job.is_alive(), "the job's check returned while the reload was still under way"
    rulebooks.release.set()
    follower.join(10)
    job.join(10)
    assert seen["books"] == ["peer-support", "diabetes-forum"]
    assert services.rulebook_sync.published == published


def test_a_version_already_live_is_marked_seen_without_a_reload() -> None:
    books = [Book("peer-support", "a")]
    rulebooks = SlowRulebooks(books=books, after_reload=books)
    services = services_with(rulebooks, live_version(cast(Services, SimpleNamespace(pipeline=SimpleNamespace(rulebooks=rulebooks)))))
    assert follow(services) is False
    assert not rulebooks.started.is_set()
    assert services.rulebook_sync.published is not None
