"""One rulebook version in every process: a reload is published in Redis and followed by every API and worker.

The published value is a digest of every live rulebook's name and version. A process publishes
what it loaded when it starts and after each reload it is asked for (HTTP or SIGHUP); every process
checks the published digest once a second (a follower thread), and a queue job checks it before it
judges, so a post accepted after a reload is judged by the reloaded rules. A process whose digest
differs reloads from its own rules folder; if its files still differ (another machine, other files),
it keeps its last good rulebooks, says so in the log, and ``/readyz`` shows ``rulebooks_current: false``.
"""

from __future__ import annotations

import hashlib
import logging
import threading

from moderation_service.errors import RulebookError, StoreUnavailable
from moderation_service.service.parts import Services

__all__ = ["RulebookFollower", "follow", "live_version", "publish", "start_follower"]

log = logging.getLogger(__name__)

FOLLOW_INTERVAL_S = 1.0


def live_version(services: Services) -> str:
    """Digest of every live rulebook (name and content version): equal digests mean the same rules."""
    books = services.pipeline.rulebooks.all()
    joined = "\n".join(f"{b.name}={b.version}" for b in books)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def publish(services: Services) -> bool:
    """Tell every process what this one now has (after a reload, or at start); False when Redis is down."""
    if services.store is None:
        return True
    version = live_version(services)
    try:
        services.store.publish_rulebook_version(version)
    except StoreUnavailable:
        log.warning("rulebook version not published: store unavailable")
        return False
    services.rulebook_sync.published = version
    return True


def follow(services: Services) -> bool:
    """Reload when the published version changed since last seen; True when this process reloaded."""
    if services.store is None:
        return False
    state = services.rulebook_sync
    published = services.store.published_rulebook_version()
    if published is None or published == state.published:
        return False
    with state.lock:
        if published == state.published:
            return False
        if live_version(services) == published:
            state.published = published
            return False
        try:
            services.pipeline.rulebooks.reload()
        except RulebookError as exc:
            log.error(
                "published rulebooks could not be loaded here; last good rulebooks stay live",
                extra={"problems": [str(p) for p in exc.problems]},
            )
            return False
        finally:
            # Marked seen only once the reload is over: a queue job that checks meanwhile must wait on
            # the lock, not judge with the rules this thread is still replacing.
            state.published = published
        mine = live_version(services)
        if mine == published:
            log.info("rulebooks reloaded to the published version", extra={"versions": {"published": published}})
        else:
            log.error("rulebook files here differ from the published version", extra={"versions": {"published": published, "live": mine}})
        return True


class RulebookFollower(threading.Thread):
    """Checks the published version once a second; never dies (Redis may come and go)."""

    def __init__(self, services: Services, interval_s: float = FOLLOW_INTERVAL_S) -> None:
        super().__init__(name="rulebook-follower", daemon=True)
        self.services = services
        self.interval_s = interval_s
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                follow(self.services)
            except StoreUnavailable:
                pass  # the reaper and the routes report an outage; this just tries again
            except Exception as exc:  # a follower that dies would leave this process on old rules for good
                log.exception("rulebook follower tick failed", extra={"error": exc.__class__.__name__})


def start_follower(services: Services) -> RulebookFollower:
    """Publish what this process loaded (so all converge on the newest start or reload), then follow."""
    publish(services)
    follower = RulebookFollower(services)
    if services.store is not None:
        follower.start()
    return follower
