"""Lua scripts for the store's multi-step changes, so each runs atomically inside Redis."""

from __future__ import annotations

__all__ = ["CLAIM", "CLAIM_MANY", "COMPLETE", "CREATE", "CREATE_MANY", "POP_DUE", "REQUEUE"]

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

# A batch: every item's idempotency key is checked first; one conflict (an earlier submission, or an earlier
# item of this batch, with the same post_id and other text) stores nothing and returns 'conflict|<index>|<id>'.
# KEYS: PENDING, AUDIT, then per item: idempotency, submission, text. ARGV: record TTL, key id, now, text TTL,
# tenant, then per item: id, digest, post_id, callback_url, body, community.
CREATE_MANY = """
local n = (#KEYS - 2) / 3
local seen = {}
for i = 0, n - 1 do
  local idem = KEYS[3 + 3 * i]
  local digest = ARGV[6 + 6 * i + 1]
  local existing = seen[idem] or redis.call('GET', idem)
  if existing then
    local id, old = string.match(existing, '^([^|]*)|(.*)$')
    if old ~= digest then return 'conflict|' .. i .. '|' .. id end
  else
    seen[idem] = ARGV[6 + 6 * i] .. '|' .. digest
  end
end
local out = {}
for i = 0, n - 1 do
  local idem, sub, text = KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i]
  local id, digest = ARGV[6 + 6 * i], ARGV[6 + 6 * i + 1]
  local existing = redis.call('GET', idem)
  if existing then
    out[#out + 1] = string.match(existing, '^([^|]*)')
  else
    redis.call('SET', idem, id .. '|' .. digest, 'EX', ARGV[1])
    redis.call('HSET', sub, 'status', 'queued', 'post_id', ARGV[6 + 6 * i + 2], 'key_id', ARGV[2], 'attempt', 1,
      'created_at', ARGV[3], 'updated_at', ARGV[3], 'callback_url', ARGV[6 + 6 * i + 3], 'text_hash', digest,
      'tenant', ARGV[5], 'community', ARGV[6 + 6 * i + 5])
    redis.call('EXPIRE', sub, ARGV[1])
    redis.call('SET', text, ARGV[6 + 6 * i + 4], 'EX', ARGV[4])
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'event', 'submitted', 'id', id, 'key_id', ARGV[2])
    out[#out + 1] = 'new|' .. id
  end
end
return out
"""

CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' or status == 'failed' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'attempt')) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

# A batch job's claim, read and lease in one call: CLAIM's rule per item, and the claimed ones' text and tenant.
# KEYS: LEASES, then per item: submission, text. ARGV: now, lease end, then per item: id, attempt.
# Returns per item: 'skip', '', '' or 'run', text ('' once expired), tenant.
CLAIM_MANY = """
local out = {}
for i = 0, (#KEYS - 1) / 2 - 1 do
  local sub, text, id, attempt = KEYS[2 + 2 * i], KEYS[3 + 2 * i], ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local status = redis.call('HGET', sub, 'status')
  if not status or status == 'done' or status == 'failed'
      or tonumber(redis.call('HGET', sub, 'attempt')) ~= tonumber(attempt) then
    out[#out + 1] = 'skip'; out[#out + 1] = ''; out[#out + 1] = ''
  else
    redis.call('HSET', sub, 'status', 'running', 'updated_at', ARGV[1])
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    out[#out + 1] = 'run'
    out[#out + 1] = redis.call('GET', text) or ''
    out[#out + 1] = redis.call('HGET', sub, 'tenant') or ''
  end
end
return out
"""

COMPLETE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' or status == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'done', 'decision', ARGV[1], 'updated_at', ARGV[2], 'action', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'event', 'decided', 'id', ARGV[4], 'action', ARGV[3])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[6], 'priority', ARGV[5], 'post_id', ARGV[6], 'categories', ARGV[7], 'created_at', ARGV[2],
    'status', 'open', 'context', '', 'tenant', ARGV[10], 'community', ARGV[11], 'decision', ARGV[1])
  redis.call('EXPIRE', KEYS[6], ARGV[8])
  redis.call('ZADD', KEYS[7], 'NX', ARGV[2], ARGV[4])
  redis.call('ZADD', KEYS[9], 'NX', ARGV[2], ARGV[4])
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'event', 'escalated', 'id', ARGV[4], 'priority', ARGV[5])
end
if ARGV[9] ~= '' then
  redis.call('ZADD', KEYS[8], ARGV[2], ARGV[9])
end
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
