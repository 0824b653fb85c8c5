"""Lua scripts for the store's multi-step changes, so each runs atomically inside Redis."""

from __future__ import annotations

__all__ = ["CLAIM", "COMPLETE", "CREATE", "POP_DUE", "REQUEUE"]

CREATE = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
redis.call('HSET', KEYS[2], 'status', 'queued', 'post_id', ARGV[4], 'key_id', ARGV[5], 'attempt', 1,
  'created_at', ARGV[6], 'updated_at', ARGV[6], 'callback_url', ARGV[7], 'text_hash', ARGV[2],
  'tenant', ARGV[10], 'community', ARGV[11])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'event', 'submitted', 'id', ARGV[1], 'key_id', ARGV[5])
return 'new'
"""

CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' or status == 'failed' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'attempt')) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

COMPLETE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' or status == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'done', 'decision', ARGV[1], 'updated_at', ARGV[2], 'action', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'event', 'decided', 'id', ARGV[4], 'action', ARGV[3])
return 1
"""

REQUEUE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' or status == 'failed' then
  redis.call('ZREM', KEYS[2], ARGV[1]); redis.call('ZREM', KEYS[3], ARGV[1]); return -1
end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt'))
if attempt >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[3], 'updated_at', ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[1]); redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'event', 'failed', 'id', ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempt', attempt + 1, 'updated_at', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'event', 'requeued', 'id', ARGV[1])
return attempt + 1
"""

POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZREM', KEYS[1], member) end
return due
"""
