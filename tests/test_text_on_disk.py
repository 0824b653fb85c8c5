"""Post text on disk: Redis files readable by their owner only, and expired text gone from the AOF after the
scheduled rewrite. Real redis-server processes, real files."""

from __future__ import annotations

import stat
from pathlib import Path

import redis

from moderation_service.config import ApiSettings, CoralSettings, QueueSettings, WebhookSettings
from moderation_service.core.pipeline import Pipeline
from moderation_service.embedded_run import start_redis
from moderation_service.service import Services
from moderation_service.service.retention import rewrite_aof_when_due
from moderation_service.store import Store, SubmissionIn, connect
from tests.queue_support import RedisServer, free_port, stop_process, wait_for

MARKER = "zqxjv-unmistakable-post-text"


def _rewritten(client: redis.Redis) -> bool:
    info = client.info("persistence")
    return bool(info["aof_rewrite_in_progress"] == 0 and info["aof_rewrite_scheduled"] == 0)


def _on_disk(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())


def test_run_keeps_redis_files_private(tmp_path: Path) -> None:
    """`moderation-service run`'s own Redis: its folder 0700 and every file in it 0600, rewritten files included."""
    port = free_port()
    process = start_redis(tmp_path, port)
    client = redis.Redis(port=port)
    try:
        client.set("ms:text:x", MARKER)
        client.bgrewriteaof()
        assert wait_for(lambda: _rewritten(client), 30)
        folder = tmp_path / "redis"
        files = [path for path in folder.rglob("*") if path.is_file()]
        assert files and MARKER.encode() in _on_disk(folder)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(path.stat().st_mode) & 0o077 == 0 for path in files), [oct(p.stat().st_mode) for p in files]
    finally:
        client.close()
        stop_process(process)


def test_expired_text_leaves_the_aof_at_the_scheduled_rewrite(tmp_path: Path, shared_pipeline: Pipeline) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        store = Store(connect(server.url), text_ttl_s=1, record_ttl_s=3600)
        services = Services(
            pipeline=shared_pipeline,
            api=ApiSettings(),
            queue_settings=QueueSettings(aof_rewrite_interval_s=3600),
            webhooks=WebhookSettings(),
            coral=CoralSettings(),
            store=store,
        )
        sub_id, _ = store.create_submission("k1", SubmissionIn(text=MARKER, post_id="p-1"))
        assert wait_for(lambda: MARKER.encode() in _on_disk(server.folder), 10)
        assert wait_for(lambda: store.body(sub_id) is None, 10)  # expired: gone from Redis ...
        assert MARKER.encode() in _on_disk(server.folder)  # ... but still in the AOF, until it is rewritten
        assert rewrite_aof_when_due(services)
        assert not rewrite_aof_when_due(services)  # one rewrite per interval, whichever worker asks
        client = server.client()
        assert wait_for(lambda: _rewritten(client), 30)
        client.close()
        assert MARKER.encode() not in _on_disk(server.folder)
        assert store.get(sub_id) is not None  # the record without text stays
    finally:
        server.stop()
