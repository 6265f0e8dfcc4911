"""Redis storage backend, for several plughook instances behind one load balancer.

Every instance of a deployment points at the same Redis server and namespace,
so any instance can handle any delivery and any instance's worker can drain the
outbox. Every key starts with ``<namespace>:``::

    kv:<plugin>             hash    JSON ["chat_key", "user_key", "store_key"] -> value
    task:<id>               hash    TaskRecord fields; result and error absent when None
    tasks:running           set     ids of tasks whose state is "running"
    dedupe:<key>            string  "in_progress <deadline>" or "duplicate <deadline>"
    delivery:<id>           hash    DeliveryRecord fields; expires after delivery_ttl
    deliveries              zset    delivery record ids scored by received_at
    outbox:seq              string  last assigned message seq (INCR)
    outbox:msg:<id>         hash    OutboxMessage fields, plus "entry" (its stream
                                    entry id) and "claimed_until" while pending
    outbox:pending          zset    ids of pending messages scored by seq
    outbox:dead             zset    ids of dead messages scored by seq
    outbox:stream:<chat_key> stream pending messages of one chat, oldest first, with
                                    the consumer group "workers"; each storage
                                    handle (one per instance) is a consumer
    outbox:due              zset    chat keys with pending messages, scored by when the
                                    head may be sent: its next_attempt_at, or the end
                                    of a consumer's claim on it when that is later
    instance:<owner>        string  heartbeat of a running instance; expires when it dies

Writes that touch several keys run as Lua scripts or MULTI transactions, so the
indexes never disagree with the records. The scripts build key names from the
prefix, which a standalone Redis (or a Sentinel-managed primary) allows and
Redis Cluster does not.

Durability is Redis's own: with ``appendonly yes`` and ``appendfsync everysec``
a crash of the Redis server loses at most about one second of writes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

import attrs
import cattrs
import redis.asyncio
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from .errors import ConfigError
from .records import DeliveryRecord, OutboxMessage, OutboxState, TaskRecord
from .store import IN_PROGRESS_TTL, ClaimResult, Storage

__all__ = ["RedisStorage"]

logger = logging.getLogger("plughook.outbox")

# redis-py understands these URL schemes (TCP, TLS and Unix socket).
URL_SCHEMES = ("redis", "rediss", "unix")
# A consumer that read a chat's head message and then went silent (crash, lost
# network) keeps that chat for this long, and then another consumer claims the
# message and sends it again. It must exceed the longest send of a channel. The
# OneBot and HTTP channels time out after 10 s by default, and a channel
# configured with a longer timeout risks duplicates.
DEFAULT_VISIBILITY_TIMEOUT = 60.0
# Delivery records expire in Redis after this long even when no instance prunes
# the log. It matches the default deliveries.retention_days of 7.
DEFAULT_DELIVERY_TTL = 7 * 86400.0
# deliveries_list reads the index newest first in pages of this many ids.
DELIVERY_PAGE = 200

_converter = cattrs.Converter()
# A hash as redis-py returns it. redis-py types fields as bytes | str, but this
# client never sets decode_responses, so they are bytes.
_Reply = Mapping[Any, Any]

# Shared by the outbox scripts. ARGV[1] is the key prefix.
_OUTBOX_LUA_HELPERS = """
local p = ARGV[1]
local GROUP = 'workers'
local function stream_key(chat) return p .. 'outbox:stream:' .. chat end
local function message_key(id) return p .. 'outbox:msg:' .. id end

-- Append a pending message to its chat's stream. The consumer group is created
-- with the stream, from its first entry.
local function enqueue(chat, id)
  local stream = stream_key(chat)
  local fresh = redis.call('EXISTS', stream) == 0
  local entry = redis.call('XADD', stream, '*', 'id', id)
  if fresh then redis.call('XGROUP', 'CREATE', stream, GROUP, '0') end
  redis.call('HSET', message_key(id), 'entry', entry, 'claimed_until', '')
end

-- Acknowledge and delete a message's stream entry, if it has one.
local function dequeue(chat, id)
  local key = message_key(id)
  local entry = redis.call('HGET', key, 'entry')
  if entry then
    redis.call('XACK', stream_key(chat), GROUP, entry)
    redis.call('XDEL', stream_key(chat), entry)
    redis.call('HDEL', key, 'entry', 'claimed_until')
  end
end

-- The consumer that holds a stream entry, or nil when no consumer does.
local function holder(chat, entry)
  local pending = redis.call('XPENDING', stream_key(chat), GROUP, entry, entry, 1)[1]
  if pending then return pending[2] end
end

-- Score a chat in outbox:due by the time its head may be sent: its
-- next_attempt_at, or the end of a worker's claim on it when that is later.
-- Times stay the strings Python wrote: Lua would print numbers with only 14 digits.
local function refresh_due(chat)
  local first = redis.call('XRANGE', stream_key(chat), '-', '+', 'COUNT', 1)[1]
  if not first then
    redis.call('ZREM', p .. 'outbox:due', chat)
    redis.call('DEL', stream_key(chat))
    return
  end
  local fields = redis.call('HMGET', message_key(first[2][2]), 'next_attempt_at', 'claimed_until')
  local at = fields[1]
  if fields[2] and fields[2] ~= '' and tonumber(fields[2]) > tonumber(at) then
    at = fields[2]
  end
  redis.call('ZADD', p .. 'outbox:due', at, chat)
end
"""

# ARGV: prefix, id, chat_key, text, created_at, plugin, attempts, next_attempt_at,
# possible_duplicates, state, last_error. Returns the assigned seq.
_OUTBOX_ADD = (
    _OUTBOX_LUA_HELPERS
    + """
local id, chat, state = ARGV[2], ARGV[3], ARGV[10]
local key = message_key(id)
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('outbox message ' .. id .. ' already exists')
end
local seq = redis.call('INCR', p .. 'outbox:seq')
redis.call('HSET', key, 'id', id, 'chat_key', chat, 'text', ARGV[4],
  'created_at', ARGV[5], 'plugin', ARGV[6], 'seq', seq, 'attempts', ARGV[7],
  'next_attempt_at', ARGV[8], 'possible_duplicates', ARGV[9], 'state', state,
  'last_error', ARGV[11])
redis.call('ZADD', p .. 'outbox:' .. state, seq, id)
if state == 'pending' then
  enqueue(chat, id)
  refresh_due(chat)
end
return seq
"""
)

# ARGV: prefix, id, attempts, next_attempt_at, possible_duplicates, state,
# last_error, consumer.
_OUTBOX_UPDATE = (
    _OUTBOX_LUA_HELPERS
    + """
local id, state, consumer = ARGV[2], ARGV[6], ARGV[8]
local key = message_key(id)
local chat = redis.call('HGET', key, 'chat_key')
if not chat then return 0 end
local seq = redis.call('HGET', key, 'seq')
redis.call('HSET', key, 'attempts', ARGV[3], 'next_attempt_at', ARGV[4],
  'possible_duplicates', ARGV[5], 'state', state, 'last_error', ARGV[7])
if state == 'dead' then
  redis.call('ZREM', p .. 'outbox:pending', id)
  redis.call('ZADD', p .. 'outbox:dead', seq, id)
  dequeue(chat, id)
else
  local entry = redis.call('HGET', key, 'entry')
  if not entry then
    -- A dead message back in the queue joins the end of its chat's stream,
    -- with a new seq that matches its place there.
    seq = redis.call('INCR', p .. 'outbox:seq')
    redis.call('HSET', key, 'seq', seq)
    redis.call('ZREM', p .. 'outbox:dead', id)
    enqueue(chat, id)
  else
    -- The update ends the caller's claim. A claim another consumer took over
    -- after the caller went silent stays.
    local owner = holder(chat, entry)
    if not owner or owner == consumer then
      redis.call('HSET', key, 'claimed_until', '')
    end
  end
  redis.call('ZADD', p .. 'outbox:pending', seq, id)
end
refresh_due(chat)
return 1
"""
)

# ARGV: prefix, id. Acknowledges the message's entry: its channel confirmed it.
_OUTBOX_REMOVE = (
    _OUTBOX_LUA_HELPERS
    + """
local id = ARGV[2]
local key = message_key(id)
local chat = redis.call('HGET', key, 'chat_key')
if not chat then return 0 end
dequeue(chat, id)
redis.call('DEL', key)
redis.call('ZREM', p .. 'outbox:pending', id)
redis.call('ZREM', p .. 'outbox:dead', id)
refresh_due(chat)
return 1
"""
)

# Claim the heads of due chats for one consumer. ARGV: prefix, now, limit,
# consumer, visibility timeout in milliseconds, the claim's end (now plus the
# visibility timeout), then the busy chat keys. Returns each claimed head as
# HGETALL pairs, plus "taken_from" and the silent consumer's name for a head
# taken over from one.
#
# Each chat has its own stream, and a consumer reads a new entry from it only
# while none of its entries is pending, so one chat's messages go out one at a
# time and in order. A pending head is one of:
# - released: its consumer recorded a failure or a deferral. The first
#   consumer that finds it due takes it over with XCLAIM.
# - claimed: a consumer is sending it. Once it has been idle for the
#   visibility timeout, that consumer counts as dead, and XAUTOCLAIM hands
#   the head to the caller. The dead consumer's send counts as an attempt
#   and as a possible duplicate.
_OUTBOX_DUE = (
    _OUTBOX_LUA_HELPERS
    + """
local now, limit, consumer = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local visibility, claim_end = tonumber(ARGV[5]), ARGV[6]
local busy = {}
for i = 7, #ARGV do busy[ARGV[i]] = true end
local due = p .. 'outbox:due'
local chats = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit + #ARGV - 6)
local claimed = {}
for _, chat in ipairs(chats) do
  if #claimed >= limit then break end
  if not busy[chat] then
    local stream = stream_key(chat)
    local pending = redis.call('XPENDING', stream, GROUP, '-', '+', 1)[1]
    local id = nil
    local silent = nil
    if not pending then
      local read = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', 1,
        'STREAMS', stream, '>')
      if read and read[1] and read[1][2][1] then id = read[1][2][1][2][2] end
    else
      local entry, idle = pending[1], pending[3]
      local fields = redis.call('XRANGE', stream, entry, entry)[1]
      local head = fields and fields[2][2]
      if not head then
        -- An entry whose message is gone carries nothing to send.
        redis.call('XACK', stream, GROUP, entry)
        redis.call('XDEL', stream, entry)
        refresh_due(chat)
      elseif redis.call('HGET', message_key(head), 'claimed_until') == '' then
        redis.call('XCLAIM', stream, GROUP, consumer, 0, entry)
        id = head
      elseif idle >= visibility then
        redis.call('XAUTOCLAIM', stream, GROUP, consumer, visibility, '0-0', 'COUNT', 1)
        redis.call('HINCRBY', message_key(head), 'attempts', 1)
        redis.call('HINCRBY', message_key(head), 'possible_duplicates', 1)
        id = head
        silent = pending[2]
      else
        redis.call('ZADD', due, tonumber(now) + (visibility - idle) / 1000, chat)
      end
    end
    if id then
      redis.call('HSET', message_key(id), 'claimed_until', claim_end)
      redis.call('ZADD', due, claim_end, chat)
      local fields = redis.call('HGETALL', message_key(id))
      if silent then
        fields[#fields + 1] = 'taken_from'
        fields[#fields + 1] = silent
      end
      claimed[#claimed + 1] = fields
    elseif not pending then
      refresh_due(chat)
    end
  end
end
return claimed
"""
)

# ARGV: prefix, now, "1" to interrupt every owner's tasks, then the owners.
_TASKS_INTERRUPT = """
local p, now, every_owner = ARGV[1], ARGV[2], ARGV[3] == '1'
local owners = {}
for i = 4, #ARGV do owners[ARGV[i]] = true end
local count = 0
for _, id in ipairs(redis.call('SMEMBERS', p .. 'tasks:running')) do
  local key = p .. 'task:' .. id
  local fields = redis.call('HMGET', key, 'state', 'owner')
  if fields[1] ~= 'running' then
    redis.call('SREM', p .. 'tasks:running', id)
  elseif every_owner or owners[fields[2]] then
    redis.call('HSET', key, 'state', 'interrupted', 'updated_at', now)
    redis.call('SREM', p .. 'tasks:running', id)
    count = count + 1
  end
end
return count
"""

# This is SET NX PX done in one atomic script, so of concurrent claims on any
# number of instances exactly one returns "claimed". The deadline stored in the
# value lets the caller's ``now`` decide expiry, as in the other backends, and
# PX lets Redis drop the key once that time has passed.
# KEYS: the dedupe key. ARGV: now, deadline, PX milliseconds.
_DEDUPE_CLAIM = """
local entry = redis.call('GET', KEYS[1])
if entry then
  local state, deadline = string.match(entry, '^(%S+) (%S+)$')
  if state and tonumber(deadline) > tonumber(ARGV[1]) then return state end
end
redis.call('SET', KEYS[1], 'in_progress ' .. ARGV[2], 'PX', ARGV[3])
return 'claimed'
"""

# KEYS: the dedupe key. Deletes it only while it is still a claim in progress.
_DEDUPE_RELEASE = """
local entry = redis.call('GET', KEYS[1])
if entry and string.sub(entry, 1, 12) == 'in_progress ' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# ARGV: prefix, older_than, keep. Returns the number of records deleted.
_DELIVERIES_PRUNE = """
local p, older_than, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
local index = p .. 'deliveries'
local deleted = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. older_than)) do
  deleted = deleted + redis.call('DEL', p .. 'delivery:' .. id)
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. older_than)
for _, id in ipairs(redis.call('ZREVRANGE', index, keep, -1)) do
  deleted = deleted + redis.call('DEL', p .. 'delivery:' .. id)
end
redis.call('ZREMRANGEBYRANK', index, 0, -(keep + 1))
return deleted
"""


@attrs.frozen
class _Connection:
    client: redis.asyncio.Redis
    outbox_add: AsyncScript
    outbox_update: AsyncScript
    outbox_remove: AsyncScript
    outbox_due: AsyncScript
    tasks_interrupt: AsyncScript
    dedupe_claim: AsyncScript
    dedupe_release: AsyncScript
    deliveries_prune: AsyncScript


class RedisStorage(Storage):
    """Storage shared by every instance that uses the same Redis ``url`` and ``namespace``.

    ``delivery_ttl`` (seconds) is how long Redis keeps a delivery record when
    no instance prunes the log first. ``visibility_timeout`` (seconds) is how
    long an outbox message read by a consumer that went silent waits before
    another consumer claims it. ``consumer`` names this handle in the outbox's
    consumer groups; the default is unique per handle.
    """

    # Other instances use this storage at the same time, so the app must not
    # mark every running task as interrupted when it starts.
    shared: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "plughook",
        delivery_ttl: float = DEFAULT_DELIVERY_TTL,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        consumer: str = "",
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in URL_SCHEMES:
            msg = (
                f"invalid Redis URL {_without_password(url)!r}: expected redis://host:port/db, "
                "rediss://host:port/db or unix:///path/to/redis.sock"
            )
            raise ConfigError([("storage.url", msg)])
        if not namespace:
            raise ConfigError([("storage.namespace", "the Redis key namespace must not be empty")])
        self.url = url
        self.namespace = namespace
        self.delivery_ttl = delivery_ttl
        self.visibility_timeout = visibility_timeout
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._prefix = f"{namespace}:"
        self._connection: _Connection | None = None

    def __repr__(self) -> str:
        return f"RedisStorage({_without_password(self.url)!r}, namespace={self.namespace!r})"

    async def open(self) -> None:
        client = redis.asyncio.from_url(self.url)
        try:
            await client.ping()
        except (redis.RedisError, OSError) as exc:
            await client.aclose()
            msg = (
                f"cannot connect to Redis at {_without_password(self.url)}: "
                f"{str(exc).rstrip('.')}. "
                "Check [storage] url and that the Redis server is running."
            )
            raise ConnectionError(msg) from exc
        self._connection = _Connection(
            client=client,
            outbox_add=client.register_script(_OUTBOX_ADD),
            outbox_update=client.register_script(_OUTBOX_UPDATE),
            outbox_remove=client.register_script(_OUTBOX_REMOVE),
            outbox_due=client.register_script(_OUTBOX_DUE),
            tasks_interrupt=client.register_script(_TASKS_INTERRUPT),
            dedupe_claim=client.register_script(_DEDUPE_CLAIM),
            dedupe_release=client.register_script(_DEDUPE_RELEASE),
            deliveries_prune=client.register_script(_DELIVERIES_PRUNE),
        )

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.client.aclose()

    def _conn(self) -> _Connection:
        if self._connection is None:
            msg = f"{self!r} is not open; call open() first"
            raise RuntimeError(msg)
        return self._connection

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    # Plugin key-value store.
    async def kv_get(self, plugin: str, chat_key: str, user_key: str, store_key: str) -> str | None:
        value = await self._conn().client.hget(
            self._key("kv", plugin), _kv_field(chat_key, user_key, store_key)
        )
        return None if value is None else _text(value)

    async def kv_set(
        self, plugin: str, chat_key: str, user_key: str, store_key: str, value: str
    ) -> None:
        await self._conn().client.hset(
            self._key("kv", plugin), _kv_field(chat_key, user_key, store_key), value
        )

    async def kv_delete(self, plugin: str, chat_key: str, user_key: str, store_key: str) -> bool:
        removed = await self._conn().client.hdel(
            self._key("kv", plugin), _kv_field(chat_key, user_key, store_key)
        )
        return bool(removed)

    # Task records.
    async def tasks_write(self, records: Sequence[TaskRecord]) -> None:
        running = self._key("tasks", "running")
        async with self._conn().client.pipeline(transaction=True) as pipe:
            for record in records:
                key = self._key("task", record.id)
                pipe.delete(key)
                pipe.hset(key, mapping=_task_fields(record))
                if record.state == "running":
                    pipe.sadd(running, record.id)
                else:
                    pipe.srem(running, record.id)
            await pipe.execute()

    async def task_get(self, task_id: str) -> TaskRecord | None:
        fields = await self._conn().client.hgetall(self._key("task", task_id))
        if not fields:
            return None
        return _converter.structure(_decode(fields), TaskRecord)

    async def tasks_interrupt(self, owners: Sequence[str] | None, now: float) -> int:
        every_owner = "1" if owners is None else "0"
        args: list[EncodableT] = [self._prefix, now, every_owner, *(owners or ())]
        count = await self._conn().tasks_interrupt(args=args)
        return int(count)

    # Liveness of instances.
    async def heartbeat(self, owner: str, ttl: float) -> None:
        await self._conn().client.set(self._key("instance", owner), "1", px=int(ttl * 1000))

    async def dead_task_owners(self) -> list[str]:
        client = self._conn().client
        task_ids = [
            _text(member) for member in await client.smembers(self._key("tasks", "running"))
        ]
        owners: set[str] = set()
        for task_id in task_ids:
            owner = await client.hget(self._key("task", task_id), "owner")
            if owner is not None:
                owners.add(_text(owner))
        dead = []
        for owner in sorted(owners):
            if not await client.exists(self._key("instance", owner)):
                dead.append(owner)
        return dead

    # Outbox.
    async def outbox_add(self, message: OutboxMessage) -> None:
        args: list[EncodableT] = [
            self._prefix,
            message.id,
            message.chat_key,
            message.text,
            message.created_at,
            message.plugin,
            message.attempts,
            message.next_attempt_at,
            message.possible_duplicates,
            message.state,
            message.last_error,
        ]
        seq = await self._conn().outbox_add(args=args)
        message.seq = int(seq)

    async def outbox_due(
        self, now: float, limit: int, busy_chats: frozenset[str]
    ) -> list[OutboxMessage]:
        """Claim and return the oldest pending message of up to ``limit`` due chats.

        This handle's consumer reads each head from its chat's stream. The head
        stays hidden from every other consumer until it is updated or removed,
        or until it has been idle for ``visibility_timeout`` seconds; then
        another consumer claims it (XAUTOCLAIM) and it is returned again with
        ``attempts`` and ``possible_duplicates`` raised by one (at-least-once
        delivery).
        """
        if limit <= 0:
            return []
        args: list[EncodableT] = [
            self._prefix,
            now,
            limit,
            self.consumer,
            _milliseconds(self.visibility_timeout),
            now + self.visibility_timeout,
            *sorted(busy_chats),
        ]
        claimed = await self._conn().outbox_due(args=args)
        messages = []
        for flat in claimed:
            fields = _decode(_pairs(flat))
            message = _message(fields)
            silent = fields.get("taken_from")
            if silent is not None:
                logger.warning(
                    "message %s to %s was read by consumer %s, which has not confirmed it for "
                    "%.0f s; sending it again (possible duplicate)",
                    message.id,
                    message.chat_key,
                    silent,
                    self.visibility_timeout,
                )
            messages.append(message)
        return sorted(messages, key=lambda m: m.seq)

    async def outbox_next_due(self, busy_chats: frozenset[str] = frozenset()) -> float | None:
        """Return the earliest time a chat's head message may be sent.

        Claims count, and messages behind a chat's head do not, because they
        cannot be sent before it. Nor do the chats in ``busy_chats``.
        """
        # The due set contains one entry per chat, so the first len(busy_chats) + 1
        # entries include the earliest chat that is not busy.
        first = cast(
            list[tuple[bytes, float]],
            await self._conn().client.zrange(
                self._key("outbox", "due"), 0, len(busy_chats), withscores=True
            ),
        )
        for chat, at in first:
            if chat.decode() not in busy_chats:
                return float(at)
        return None

    async def outbox_update(self, message: OutboxMessage) -> None:
        args: list[EncodableT] = [
            self._prefix,
            message.id,
            message.attempts,
            message.next_attempt_at,
            message.possible_duplicates,
            message.state,
            message.last_error,
            self.consumer,
        ]
        await self._conn().outbox_update(args=args)

    async def outbox_remove(self, message_id: str) -> None:
        await self._conn().outbox_remove(args=[self._prefix, message_id])

    async def outbox_get(self, message_id: str) -> OutboxMessage | None:
        fields = await self._conn().client.hgetall(self._key("outbox", "msg", message_id))
        return _message(_decode(fields)) if fields else None

    async def outbox_list(self, state: OutboxState | None, limit: int) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        client = self._conn().client
        states: list[OutboxState] = ["pending", "dead"] if state is None else [state]
        ids: list[bytes] = []
        for name in states:
            ids += cast(list[bytes], await client.zrange(self._key("outbox", name), 0, limit - 1))
        messages = await self._outbox_many(ids)
        return sorted(messages, key=lambda m: m.seq)[:limit]

    async def outbox_chat_pending(self, chat_key: str, limit: int) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        client = self._conn().client
        stream = self._key("outbox", "stream", chat_key)
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(stream, count=limit)
        )
        messages = await self._outbox_many([fields[b"id"] for _, fields in entries])
        pending = [m for m in messages if m.state == "pending"]
        return sorted(pending, key=lambda m: m.seq)

    async def _outbox_many(self, ids: Sequence[bytes]) -> list[OutboxMessage]:
        async with self._conn().client.pipeline(transaction=False) as pipe:
            for message_id in ids:
                pipe.hgetall(self._key("outbox", "msg", _text(message_id)))
            found: list[dict[bytes, bytes]] = await pipe.execute()
        # A message removed between the index read and this one is skipped.
        return [_message(_decode(fields)) for fields in found if fields]

    async def outbox_count(self, state: OutboxState) -> int:
        return int(await self._conn().client.zcard(self._key("outbox", state)))

    # Duplicate detection of deliveries.
    async def dedupe_claim(
        self, key: str, now: float, claim_for: float = IN_PROGRESS_TTL
    ) -> ClaimResult:
        deadline = now + claim_for
        args: list[EncodableT] = [now, deadline, _milliseconds(claim_for)]
        result = await self._conn().dedupe_claim(keys=[self._key("dedupe", key)], args=args)
        return cast(ClaimResult, _text(result))

    async def dedupe_complete(self, key: str, now: float, window: float) -> None:
        client = self._conn().client
        if window <= 0:
            await client.delete(self._key("dedupe", key))
            return
        value = f"duplicate {now + window!r}"
        await client.set(self._key("dedupe", key), value, px=_milliseconds(window))

    async def dedupe_release(self, key: str) -> None:
        await self._conn().dedupe_release(keys=[self._key("dedupe", key)])

    # Delivery log.
    async def deliveries_write(self, records: Sequence[DeliveryRecord]) -> None:
        index = self._key("deliveries")
        ttl = _milliseconds(self.delivery_ttl)
        async with self._conn().client.pipeline(transaction=True) as pipe:
            for record in records:
                key = self._key("delivery", record.id)
                pipe.delete(key)
                pipe.hset(key, mapping=_delivery_fields(record))
                pipe.pexpire(key, ttl)
                pipe.zadd(index, {record.id: record.received_at})
            await pipe.execute()

    async def deliveries_list(
        self, plugin: str | None, status_class: int | None, limit: int, *, with_bodies: bool = True
    ) -> list[DeliveryRecord]:
        """Return the newest records first; ``status_class`` 4 selects 4xx and so on.

        Filters are applied while reading the index newest first, so a rare
        match can read the whole log (at most ``deliveries.max_records`` ids).
        """
        found: list[DeliveryRecord] = []
        start = 0
        client = self._conn().client
        while len(found) < limit:
            stop = start + DELIVERY_PAGE - 1
            ids = cast(list[bytes], await client.zrevrange(self._key("deliveries"), start, stop))
            if not ids:
                break
            start += DELIVERY_PAGE
            for record in await self._deliveries_many(ids, with_bodies):
                if plugin is not None and record.plugin != plugin:
                    continue
                if status_class is not None and record.status // 100 != status_class:
                    continue
                found.append(record)
        return found[: max(limit, 0)]

    async def _deliveries_many(
        self, ids: Sequence[bytes], with_bodies: bool = True
    ) -> list[DeliveryRecord]:
        async with self._conn().client.pipeline(transaction=False) as pipe:
            for record_id in ids:
                key = self._key("delivery", _text(record_id))
                if with_bodies:
                    pipe.hgetall(key)
                else:
                    pipe.hmget(key, _FIELDS_WITHOUT_BODY)
            replies: list[Any] = await pipe.execute()
        if with_bodies:
            found: list[dict[bytes, bytes]] = replies
        else:
            # HMGET returns None for a field the hash lacks, or for every field
            # of a record that has expired.
            found = [
                {
                    name.encode(): value
                    for name, value in zip(_FIELDS_WITHOUT_BODY, values, strict=True)
                    if value is not None
                }
                for values in replies
            ]
        # Records that expired in Redis are still in the index until pruned.
        return [_delivery(fields) for fields in found if fields]

    async def delivery_get(self, record_id: str) -> DeliveryRecord | None:
        fields = await self._conn().client.hgetall(self._key("delivery", record_id))
        return _delivery(fields) if fields else None

    async def deliveries_prune(self, older_than: float, keep: int) -> int:
        args: list[EncodableT] = [self._prefix, older_than, max(keep, 0)]
        return int(await self._conn().deliveries_prune(args=args))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _kv_field(chat_key: str, user_key: str, store_key: str) -> str:
    # JSON keeps the three parts apart whatever characters they contain.
    return json.dumps([chat_key, user_key, store_key], ensure_ascii=False)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _milliseconds(seconds: float) -> int:
    # PX takes a positive whole number of milliseconds.
    return max(1, math.ceil(seconds * 1000))


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """Turn an HGETALL reply from a script, [field, value, ...], into a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _decode(fields: _Reply) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in fields.items()}


def _message(fields: dict[str, str]) -> OutboxMessage:
    # "claimed_until" is empty while no consumer has claimed the message, and
    # absent while the message is not queued (a dead message).
    fields["claimed_until"] = fields.get("claimed_until") or "0"
    return _converter.structure(fields, OutboxMessage)


def _task_fields(record: TaskRecord) -> dict[EncodableT, EncodableT]:
    fields = attrs.asdict(record)
    return {name: _field_text(value) for name, value in fields.items() if value is not None}


def _field_text(value: Any) -> str:
    # repr() of a float reads back as the same float; str() of an int is exact.
    return repr(value) if isinstance(value, float) else str(value)


def _delivery_fields(record: DeliveryRecord) -> dict[EncodableT, EncodableT]:
    fields: dict[EncodableT, EncodableT] = {}
    for name, value in attrs.asdict(record, recurse=False).items():
        if name == "body":
            fields[name] = value
        elif name == "headers":
            # ASCII escapes keep the lone surrogates of header bytes that are
            # not UTF-8, which Redis could not take as text.
            fields[name] = json.dumps(value)
        elif name in ("body_truncated", "duplicate"):
            fields[name] = "1" if value else "0"
        elif name == "verified":
            # Left out when None, as in records written before the field existed.
            if value is not None:
                fields[name] = "1" if value else "0"
        else:
            fields[name] = _field_text(value)
    return fields


# Hash fields of a delivery record, read for a listing that leaves the bodies out.
_FIELDS_WITHOUT_BODY = [
    field.name for field in attrs.fields(DeliveryRecord) if field.name != "body"
]


def _delivery(raw: _Reply) -> DeliveryRecord:
    body = raw.get(b"body", b"")
    fields: dict[str, Any] = {
        _text(name): _text(value) for name, value in raw.items() if name != b"body"
    }
    fields["body"] = body if isinstance(body, bytes) else body.encode()
    fields["headers"] = json.loads(fields["headers"])
    fields["body_truncated"] = fields["body_truncated"] == "1"
    if "verified" in fields:
        fields["verified"] = fields["verified"] == "1"
    # Records written before the field existed have none: not a duplicate.
    fields["duplicate"] = fields.get("duplicate") == "1"
    return _converter.structure(fields, DeliveryRecord)
