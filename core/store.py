"""Storage backend interface, the in-memory backend, and the per-plugin store view."""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Sequence
from typing import ClassVar, Literal

import attrs

from .records import DeliveryRecord, OutboxMessage, OutboxState, TaskRecord

__all__ = ["ClaimResult", "MemoryStorage", "PluginStore", "Storage"]

ClaimResult = Literal["claimed", "duplicate", "in_progress"]

# A claimed delivery id whose handler never finished (crash) blocks
# redelivery for at most this long.
IN_PROGRESS_TTL = 600.0


class Storage(abc.ABC):
    """Everything plughook keeps durably; SQLite, memory and Redis implement it."""

    shared: ClassVar[bool] = False
    """Whether other instances use the same storage (Redis), so they take over its work."""

    async def open(self) -> None:
        """Connect and create tables; called once when the app starts."""

    async def close(self) -> None:
        """Release connections; called once when the app stops."""

    # Plugin key-value store.
    @abc.abstractmethod
    async def kv_get(
        self, plugin: str, chat_key: str, user_key: str, store_key: str
    ) -> str | None: ...

    @abc.abstractmethod
    async def kv_set(
        self, plugin: str, chat_key: str, user_key: str, store_key: str, value: str
    ) -> None: ...

    @abc.abstractmethod
    async def kv_delete(
        self, plugin: str, chat_key: str, user_key: str, store_key: str
    ) -> bool: ...

    # Task records.
    @abc.abstractmethod
    async def tasks_write(self, records: Sequence[TaskRecord]) -> None: ...

    @abc.abstractmethod
    async def task_get(self, task_id: str) -> TaskRecord | None: ...

    @abc.abstractmethod
    async def tasks_interrupt(self, owners: Sequence[str] | None, now: float) -> int:
        """Mark ``running`` tasks of ``owners`` (all owners when None) as ``interrupted``."""

    # Liveness of instances sharing the storage.
    async def heartbeat(self, owner: str, ttl: float) -> None:
        """Record that instance ``owner`` is alive for the next ``ttl`` seconds.

        Storage used by one process needs no heartbeat, so the default does nothing.
        """

    async def dead_task_owners(self) -> list[str]:
        """Return owners of running tasks whose heartbeat expired (none by default)."""
        return []

    # Outbox.
    @abc.abstractmethod
    async def outbox_add(self, message: OutboxMessage) -> None:
        """Commit ``message`` durably, assigning its ``seq``."""

    @abc.abstractmethod
    async def outbox_due(
        self, now: float, limit: int, busy_chats: frozenset[str]
    ) -> list[OutboxMessage]:
        """Claim and return the oldest pending message of each due chat not in ``busy_chats``.

        The claim sets the message's ``claimed_until``, which ``outbox list``
        reads to show it as sending. It ends with ``outbox_update`` or
        ``outbox_remove``, or at ``claimed_until`` when the worker's process
        died before either.
        """

    @abc.abstractmethod
    async def outbox_chat_pending(self, chat_key: str, limit: int) -> list[OutboxMessage]:
        """Return the oldest pending messages of one chat, head first, at most ``limit``."""

    @abc.abstractmethod
    async def outbox_next_due(self, busy_chats: frozenset[str] = frozenset()) -> float | None:
        """Return the earliest ``next_attempt_at`` among the chats' first pending messages.

        A message behind its chat's first pending message waits for it, so its
        own time does not count. Nor do the chats in ``busy_chats``, whose first
        message is being sent: the end of that send wakes the worker.
        """

    @abc.abstractmethod
    async def outbox_update(self, message: OutboxMessage) -> None:
        """Store a message's attempts, next attempt, state and last error.

        A dead message made pending again gets a new ``seq`` and joins the end
        of its chat's queue. The update ends the caller's claim on the message.
        """

    @abc.abstractmethod
    async def outbox_remove(self, message_id: str) -> None: ...

    @abc.abstractmethod
    async def outbox_get(self, message_id: str) -> OutboxMessage | None: ...

    @abc.abstractmethod
    async def outbox_list(self, state: OutboxState | None, limit: int) -> list[OutboxMessage]: ...

    @abc.abstractmethod
    async def outbox_count(self, state: OutboxState) -> int: ...

    # Duplicate detection of deliveries.
    @abc.abstractmethod
    async def dedupe_claim(
        self, key: str, now: float, claim_for: float = IN_PROGRESS_TTL
    ) -> ClaimResult:
        """Claim ``key`` for processing unless it succeeded before or is being processed.

        A claim whose processing never settles (the instance died) lapses after
        ``claim_for`` seconds, so a redelivery is processed then.
        """

    @abc.abstractmethod
    async def dedupe_complete(self, key: str, now: float, window: float) -> None:
        """Remember ``key`` as done for ``window`` seconds."""

    @abc.abstractmethod
    async def dedupe_release(self, key: str) -> None:
        """Forget a claim whose processing failed, so a redelivery is processed."""

    # Delivery log.
    @abc.abstractmethod
    async def deliveries_write(self, records: Sequence[DeliveryRecord]) -> None: ...

    async def deliveries_sync(self) -> None:
        """Flush written records to the disk where ``deliveries_write`` left that for later.

        The default does nothing, because only the SQLite storage defers flushes.
        """

    @abc.abstractmethod
    async def deliveries_list(
        self, plugin: str | None, status_class: int | None, limit: int, *, with_bodies: bool = True
    ) -> list[DeliveryRecord]:
        """Return the newest records first; ``status_class`` 4 selects 4xx and so on.

        With ``with_bodies=False`` each record's ``body`` is empty and bodies
        are not read. ``body_truncated`` keeps its stored value.
        """

    @abc.abstractmethod
    async def delivery_get(self, record_id: str) -> DeliveryRecord | None: ...

    @abc.abstractmethod
    async def deliveries_prune(self, older_than: float, keep: int) -> int:
        """Delete records received before ``older_than`` and all but the newest ``keep``."""


@attrs.define
class _DedupeEntry:
    done: bool
    expires_at: float


class MemoryStorage(Storage):
    """A backend in process memory, for tests; nothing survives the process."""

    def __init__(self) -> None:
        self.kv: dict[tuple[str, str, str, str], str] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.outbox: dict[str, OutboxMessage] = {}
        self.dedupe: dict[str, _DedupeEntry] = {}
        self.deliveries: dict[str, DeliveryRecord] = {}
        self._seq = itertools.count(1)

    async def kv_get(self, plugin: str, chat_key: str, user_key: str, store_key: str) -> str | None:
        return self.kv.get((plugin, chat_key, user_key, store_key))

    async def kv_set(
        self, plugin: str, chat_key: str, user_key: str, store_key: str, value: str
    ) -> None:
        self.kv[(plugin, chat_key, user_key, store_key)] = value

    async def kv_delete(self, plugin: str, chat_key: str, user_key: str, store_key: str) -> bool:
        return self.kv.pop((plugin, chat_key, user_key, store_key), None) is not None

    async def tasks_write(self, records: Sequence[TaskRecord]) -> None:
        for record in records:
            self.tasks[record.id] = attrs.evolve(record)

    async def task_get(self, task_id: str) -> TaskRecord | None:
        record = self.tasks.get(task_id)
        return attrs.evolve(record) if record else None

    async def tasks_interrupt(self, owners: Sequence[str] | None, now: float) -> int:
        count = 0
        for record in self.tasks.values():
            if record.state == "running" and (owners is None or record.owner in owners):
                record.state = "interrupted"
                record.updated_at = now
                count += 1
        return count

    async def outbox_add(self, message: OutboxMessage) -> None:
        message.seq = next(self._seq)
        self.outbox[message.id] = attrs.evolve(message, claimed_until=0.0)

    async def outbox_due(
        self, now: float, limit: int, busy_chats: frozenset[str]
    ) -> list[OutboxMessage]:
        heads: dict[str, OutboxMessage] = {}
        for message in sorted(self.outbox.values(), key=lambda m: m.seq):
            if message.state == "pending" and message.chat_key not in heads:
                heads[message.chat_key] = message
        due = [
            m for m in heads.values() if m.next_attempt_at <= now and m.chat_key not in busy_chats
        ][:limit]
        for message in due:
            # A claim in memory cannot outlive its process, so it has no end
            # time. It lasts until the message is updated or removed.
            message.claimed_until = math.inf
        return [attrs.evolve(m) for m in due]

    async def outbox_chat_pending(self, chat_key: str, limit: int) -> list[OutboxMessage]:
        found = [m for m in self.outbox.values() if m.chat_key == chat_key and m.state == "pending"]
        return [attrs.evolve(m) for m in sorted(found, key=lambda m: m.seq)[:limit]]

    async def outbox_next_due(self, busy_chats: frozenset[str] = frozenset()) -> float | None:
        heads: dict[str, OutboxMessage] = {}
        for message in self.outbox.values():
            head = heads.get(message.chat_key)
            if message.state == "pending" and (head is None or message.seq < head.seq):
                heads[message.chat_key] = message
        waiting = [head.next_attempt_at for key, head in heads.items() if key not in busy_chats]
        return min(waiting, default=None)

    async def outbox_update(self, message: OutboxMessage) -> None:
        stored = self.outbox.get(message.id)
        if stored is None:
            return
        seq = stored.seq
        if stored.state == "dead" and message.state == "pending":
            seq = next(self._seq)
        self.outbox[message.id] = attrs.evolve(message, seq=seq, claimed_until=0.0)

    async def outbox_remove(self, message_id: str) -> None:
        self.outbox.pop(message_id, None)

    async def outbox_get(self, message_id: str) -> OutboxMessage | None:
        message = self.outbox.get(message_id)
        return attrs.evolve(message) if message else None

    async def outbox_list(self, state: OutboxState | None, limit: int) -> list[OutboxMessage]:
        found = [m for m in self.outbox.values() if state is None or m.state == state]
        return [attrs.evolve(m) for m in sorted(found, key=lambda m: m.seq)[:limit]]

    async def outbox_count(self, state: OutboxState) -> int:
        return sum(1 for m in self.outbox.values() if m.state == state)

    async def dedupe_claim(
        self, key: str, now: float, claim_for: float = IN_PROGRESS_TTL
    ) -> ClaimResult:
        entry = self.dedupe.get(key)
        if entry is not None and entry.expires_at > now:
            return "duplicate" if entry.done else "in_progress"
        self.dedupe[key] = _DedupeEntry(False, now + claim_for)
        return "claimed"

    async def dedupe_complete(self, key: str, now: float, window: float) -> None:
        self.dedupe[key] = _DedupeEntry(True, now + window)

    async def dedupe_release(self, key: str) -> None:
        entry = self.dedupe.get(key)
        if entry is not None and not entry.done:
            del self.dedupe[key]

    async def deliveries_write(self, records: Sequence[DeliveryRecord]) -> None:
        for record in records:
            self.deliveries[record.id] = record

    async def deliveries_list(
        self, plugin: str | None, status_class: int | None, limit: int, *, with_bodies: bool = True
    ) -> list[DeliveryRecord]:
        found = [
            r
            for r in self.deliveries.values()
            if (plugin is None or r.plugin == plugin)
            and (status_class is None or r.status // 100 == status_class)
        ]
        found.sort(key=lambda r: r.received_at, reverse=True)
        if not with_bodies:
            return [attrs.evolve(r, body=b"") for r in found[:limit]]
        return found[:limit]

    async def delivery_get(self, record_id: str) -> DeliveryRecord | None:
        return self.deliveries.get(record_id)

    async def deliveries_prune(self, older_than: float, keep: int) -> int:
        ordered = sorted(self.deliveries.values(), key=lambda r: r.received_at, reverse=True)
        doomed = [r.id for i, r in enumerate(ordered) if i >= keep or r.received_at < older_than]
        for record_id in doomed:
            del self.deliveries[record_id]
        return len(doomed)


class PluginStore:
    """Key-value storage of one plugin; values are strings.

    Keys are namespaced by plugin name, and optionally by chat and user.
    """

    def __init__(self, storage: Storage, plugin: str) -> None:
        self._storage = storage
        self._plugin = plugin

    async def get(self, *, store_key: str, chat_key: str = "", user_key: str = "") -> str | None:
        """Return the stored value, or None when the key is not set."""
        return await self._storage.kv_get(self._plugin, chat_key, user_key, store_key)

    async def set(
        self, *, store_key: str, value: str, chat_key: str = "", user_key: str = ""
    ) -> None:
        """Store ``value`` durably before returning."""
        if not isinstance(value, str):
            msg = f"store values are strings, got {type(value).__name__} for key {store_key!r}"
            raise TypeError(msg)
        await self._storage.kv_set(self._plugin, chat_key, user_key, store_key, value)

    async def delete(self, *, store_key: str, chat_key: str = "", user_key: str = "") -> bool:
        """Delete the key; return whether it existed."""
        return await self._storage.kv_delete(self._plugin, chat_key, user_key, store_key)
