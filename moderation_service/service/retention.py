"""Keep expired post text off the disk: have Redis rewrite its append-only file on a schedule.

A key's TTL removes it from memory, but the write that stored it stays in the AOF until Redis rewrites
the file, which it does by itself only when the file has grown (64 MB by default): text could sit on
disk for weeks. So once per ``aof_rewrite_interval_s`` one worker (a lock in Redis picks it) asks for
``BGREWRITEAOF``; the rewritten file holds only live keys. Text then leaves the disk at most
``text_ttl_s + aof_rewrite_interval_s`` (plus the rewrite's own minutes) after it was submitted.
"""

from __future__ import annotations

import logging

from moderation_service.service.parts import Services

__all__ = ["rewrite_aof_when_due"]

log = logging.getLogger(__name__)


def rewrite_aof_when_due(services: Services) -> bool:
    """One reaper tick's part: True when this call asked Redis to rewrite its AOF."""
    interval = services.queue_settings.aof_rewrite_interval_s
    store = services.require_store()
    if interval <= 0 or not store.take_aof_rewrite_turn(interval):
        return False
    if not store.rewrite_aof():
        log.warning("Redis refused BGREWRITEAOF: expired post text stays in its append-only file until Redis rewrites it")
        return False
    return True
