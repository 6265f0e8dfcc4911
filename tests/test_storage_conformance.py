"""One behaviour for every storage backend: memory, SQLite and Redis.

Each test runs once per backend. Times are passed explicitly, so nothing
sleeps. The Redis backend runs against a private redis-server on a Unix socket.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from core import Plugin, Settings, WebhookRequest, message
from core import redis as redis_module
from core.records import DeliveryRecord, OutboxMessage, TaskRecord
from core.redis import RedisStorage
from core.settings import StorageSettings
from core.sqlite import SQLiteStorage
from core.store import IN_PROGRESS_TTL, MemoryStorage, Storage
from core.testing import WebhookTestClient
from tests.records import delivery_record

pytest_plugins = ["tests.redis_server"]
pytestmark = pytest.mark.anyio

# A time with a fraction, so that a backend that rounds times fails.
T0 = 1_700_000_000.125


class Backend:
    """Handles to one backend, all of which share the same data."""

    def __init__(self, kind: str, folder: Path, redis_url: str) -> None:
        self.kind = kind
        self.folder = folder
        self.redis_url = redis_url
        self.namespace = f"test-{uuid.uuid4().hex}"
        self._memory = MemoryStorage()

    def handle(self) -> Storage:
        if self.kind == "memory":
            return self._memory
        if self.kind == "sqlite":
            return SQLiteStorage(self.folder / "plughook.sqlite3")
        return RedisStorage(self.redis_url, namespace=self.namespace)

    @asynccontextmanager
    async def opened(self, count: int) -> AsyncIterator[list[Storage]]:
        """Open ``count`` handles, as ``count`` app instances would."""
        async with AsyncExitStack() as stack:
            handles = []
            for _ in range(count):
                storage = self.handle()
                await storage.open()
                stack.push_async_callback(storage.close)
                handles.append(storage)
            yield handles


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    return Backend(request.param, tmp_path, redis_url)


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    async with backend.opened(1) as handles:
        yield handles[0]


def make_task(task_id: str, *, owner: str = "instance-a", state: Any = "running") -> TaskRecord:
    return TaskRecord(task_id, "plugin", "job", state, T0, T0, owner=owner)


def make_message(chat_key: str, *, at: float = T0, text: str = "hello") -> OutboxMessage:
    return OutboxMessage(uuid.uuid4().hex, chat_key, text, T0, "plugin", next_attempt_at=at)


async def add_messages(storage: Storage, *chat_keys: str) -> list[OutboxMessage]:
    messages = [make_message(chat_key) for chat_key in chat_keys]
    for item in messages:
        await storage.outbox_add(item)
    return messages


def make_delivery(
    record_id: str, received_at: float, *, plugin: str = "github", status: int = 200
) -> DeliveryRecord:
    return delivery_record(
        record_id,
        delivery_id=f"delivery-{record_id}",
        received_at=received_at,
        plugin=plugin,
        path="/github",
        headers=[("Content-Type", "application/json"), ("X-GitHub-Event", "push")],
        query="a=1",
        body=b'{"zen": "\xe2\x9c\x93"}\x00\xff',
        status=status,
        duration_ms=1.5,
    )


def ids(messages: list[OutboxMessage]) -> list[str]:
    return [m.id for m in messages]


# Plugin key-value store.
async def test_kv_get_returns_set_value(storage: Storage) -> None:
    await storage.kv_set("plugin", "chat", "user", "key", "value")
    assert await storage.kv_get("plugin", "chat", "user", "key") == "value"


async def test_kv_get_missing_is_none(storage: Storage) -> None:
    assert await storage.kv_get("plugin", "", "", "missing") is None


async def test_kv_set_overwrites(storage: Storage) -> None:
    await storage.kv_set("plugin", "", "", "key", "old")
    await storage.kv_set("plugin", "", "", "key", "new")
    assert await storage.kv_get("plugin", "", "", "key") == "new"


async def test_kv_delete_reports_existence(storage: Storage) -> None:
    await storage.kv_set("plugin", "", "", "key", "value")
    assert await storage.kv_delete("plugin", "", "", "key") is True
    assert await storage.kv_get("plugin", "", "", "key") is None
    assert await storage.kv_delete("plugin", "", "", "key") is False


async def test_kv_namespaced_by_plugin_chat_user(storage: Storage) -> None:
    scopes = [
        ("alpha", "", ""),
        ("beta", "", ""),
        ("alpha", "chat", ""),
        ("alpha", "chat", "user"),
        ("alpha", "", "user"),
        # Separator characters in a part must not make two scopes collide.
        ("alpha", "x:y", ""),
        ("alpha", "x", "y"),
        ("alpha", "x\x00y", ""),
    ]
    for index, scope in enumerate(scopes):
        await storage.kv_set(*scope, "key", f"value-{index}")
    for index, scope in enumerate(scopes):
        assert await storage.kv_get(*scope, "key") == f"value-{index}", scope


async def test_kv_delete_leaves_other_scopes(storage: Storage) -> None:
    await storage.kv_set("alpha", "chat", "", "key", "chat value")
    await storage.kv_set("alpha", "", "", "key", "plugin value")
    await storage.kv_delete("alpha", "chat", "", "key")
    assert await storage.kv_get("alpha", "", "", "key") == "plugin value"


# Task records.
async def test_task_get_returns_written_record(storage: Storage) -> None:
    record = make_task("t1")
    record.result = '{"ok": true}'
    await storage.tasks_write([record])
    assert await storage.task_get("t1") == record


async def test_task_get_unknown_is_none(storage: Storage) -> None:
    assert await storage.task_get("missing") is None


async def test_task_write_replaces_record(storage: Storage) -> None:
    await storage.tasks_write([make_task("t1")])
    failed = make_task("t1", state="failed")
    failed.error = "ValueError: bad"
    failed.updated_at = T0 + 2.5
    await storage.tasks_write([failed])
    assert await storage.task_get("t1") == failed


async def test_task_write_clears_previous_result(storage: Storage) -> None:
    first = make_task("t1", state="completed")
    first.result = "1"
    await storage.tasks_write([first])
    await storage.tasks_write([make_task("t1")])
    stored = await storage.task_get("t1")
    assert stored is not None
    assert stored.result is None


async def test_tasks_interrupt_every_owner(storage: Storage) -> None:
    await storage.tasks_write([make_task("a", owner="one"), make_task("b", owner="two")])
    assert await storage.tasks_interrupt(None, T0 + 10) == 2
    for task_id in ("a", "b"):
        stored = await storage.task_get(task_id)
        assert stored is not None
        assert stored.state == "interrupted"
        assert stored.updated_at == T0 + 10


async def test_tasks_interrupt_given_owners(storage: Storage) -> None:
    records = [make_task("a", owner="one"), make_task("b", owner="two"), make_task("c")]
    await storage.tasks_write(records)
    assert await storage.tasks_interrupt(["one", "instance-a"], T0 + 10) == 2
    other = await storage.task_get("b")
    assert other is not None
    assert other.state == "running"


async def test_tasks_interrupt_no_owners_changes_nothing(storage: Storage) -> None:
    await storage.tasks_write([make_task("a")])
    assert await storage.tasks_interrupt([], T0 + 10) == 0


async def test_tasks_interrupt_skips_finished(storage: Storage) -> None:
    done = make_task("done", state="completed")
    await storage.tasks_write([done, make_task("live")])
    assert await storage.tasks_interrupt(None, T0 + 10) == 1
    assert await storage.task_get("done") == done


async def test_tasks_interrupt_skips_task_finished_later(storage: Storage) -> None:
    await storage.tasks_write([make_task("t1")])
    await storage.tasks_write([make_task("t1", state="completed")])
    assert await storage.tasks_interrupt(None, T0 + 10) == 0


# Outbox.
async def test_outbox_add_assigns_increasing_seq(storage: Storage) -> None:
    messages = await add_messages(storage, "console-a", "console-b", "console-a")
    seqs = [m.seq for m in messages]
    assert seqs[0] > 0
    assert seqs == sorted(set(seqs))


async def test_outbox_get_returns_added_message(storage: Storage) -> None:
    [added] = await add_messages(storage, "console-a")
    assert await storage.outbox_get(added.id) == added


async def test_outbox_get_unknown_is_none(storage: Storage) -> None:
    assert await storage.outbox_get("missing") is None


async def test_outbox_chat_pending_lists_one_chat_in_order(storage: Storage) -> None:
    first, _other, second, third = await add_messages(storage, "c-a", "c-b", "c-a", "c-a")
    third.state = "dead"
    await storage.outbox_update(third)
    pending = await storage.outbox_chat_pending("c-a", 10)
    assert [m.id for m in pending] == [first.id, second.id]


async def test_outbox_chat_pending_honours_limit(storage: Storage) -> None:
    first, _, _ = await add_messages(storage, "c-a", "c-a", "c-a")
    pending = await storage.outbox_chat_pending("c-a", 1)
    assert [m.id for m in pending] == [first.id]


async def test_outbox_due_returns_head_of_each_chat(storage: Storage) -> None:
    a1, b1, _a2 = await add_messages(storage, "console-a", "console-b", "console-a")
    due = await storage.outbox_due(T0, 10, frozenset())
    assert ids(due) == [a1.id, b1.id]


async def test_outbox_due_skips_messages_not_due(storage: Storage) -> None:
    await storage.outbox_add(make_message("console-a", at=T0 + 5))
    assert await storage.outbox_due(T0, 10, frozenset()) == []


async def test_outbox_due_skips_busy_chats(storage: Storage) -> None:
    _a1, b1 = await add_messages(storage, "console-a", "console-b")
    due = await storage.outbox_due(T0, 10, frozenset({"console-a"}))
    assert ids(due) == [b1.id]


async def test_outbox_due_respects_limit(storage: Storage) -> None:
    await add_messages(storage, "console-a", "console-b", "console-c")
    due = await storage.outbox_due(T0, 2, frozenset())
    assert len(due) == 2
    assert len({m.chat_key for m in due}) == 2


async def test_outbox_due_zero_limit_is_empty(storage: Storage) -> None:
    await add_messages(storage, "console-a")
    assert await storage.outbox_due(T0, 0, frozenset()) == []


async def test_outbox_retry_holds_back_its_chat(storage: Storage) -> None:
    a1, a2, b1, b2 = await add_messages(storage, "console-a", "console-a", "console-b", "console-b")
    assert ids(await storage.outbox_due(T0, 10, frozenset())) == [a1.id, b1.id]

    a1.attempts = 1
    a1.next_attempt_at = T0 + 100
    await storage.outbox_update(a1)
    await storage.outbox_remove(b1.id)
    assert ids(await storage.outbox_due(T0 + 1, 10, frozenset())) == [b2.id]

    await storage.outbox_remove(b2.id)
    assert ids(await storage.outbox_due(T0 + 100, 10, frozenset())) == [a1.id]
    await storage.outbox_remove(a1.id)
    assert ids(await storage.outbox_due(T0 + 100, 10, frozenset())) == [a2.id]


async def test_outbox_remove_promotes_next_message(storage: Storage) -> None:
    a1, a2 = await add_messages(storage, "console-a", "console-a")
    await storage.outbox_due(T0, 10, frozenset())
    await storage.outbox_remove(a1.id)
    assert await storage.outbox_get(a1.id) is None
    assert ids(await storage.outbox_due(T0, 10, frozenset())) == [a2.id]


async def test_outbox_update_is_stored(storage: Storage) -> None:
    [added] = await add_messages(storage, "console-a")
    changed = attrs.evolve(
        added, attempts=2, next_attempt_at=T0 + 7.5, last_error="timed out", possible_duplicates=1
    )
    await storage.outbox_update(changed)
    assert await storage.outbox_get(added.id) == changed


async def test_outbox_update_unknown_is_ignored(storage: Storage) -> None:
    ghost = make_message("console-a")
    await storage.outbox_update(ghost)
    await storage.outbox_remove(ghost.id)
    assert await storage.outbox_get(ghost.id) is None
    assert await storage.outbox_count("pending") == 0


async def test_outbox_dead_message_does_not_block_chat(storage: Storage) -> None:
    a1, a2 = await add_messages(storage, "console-a", "console-a")
    await storage.outbox_due(T0, 10, frozenset())
    a1.state = "dead"
    await storage.outbox_update(a1)
    assert ids(await storage.outbox_due(T0, 10, frozenset())) == [a2.id]


async def revive(storage: Storage, message: OutboxMessage) -> None:
    """Dead-letter ``message`` and move it back to pending, as `outbox retry` does."""
    message.state = "dead"
    await storage.outbox_update(message)
    message.state = "pending"
    await storage.outbox_update(message)


async def test_outbox_revived_message_joins_end_of_chat_queue(storage: Storage) -> None:
    a1, a2 = await add_messages(storage, "console-a", "console-a")
    await revive(storage, a1)
    assert ids(await storage.outbox_chat_pending("console-a", 10)) == [a2.id, a1.id]


async def test_outbox_revived_message_gets_new_seq(storage: Storage) -> None:
    a1, b1 = await add_messages(storage, "console-a", "console-b")
    await revive(storage, a1)
    assert ids(await storage.outbox_list("pending", 10)) == [b1.id, a1.id]


async def test_outbox_revived_message_is_sent(storage: Storage) -> None:
    [a1] = await add_messages(storage, "console-a")
    await storage.outbox_due(T0, 10, frozenset())
    await revive(storage, a1)
    assert ids(await storage.outbox_due(T0, 10, frozenset())) == [a1.id]


async def test_outbox_list_by_state_in_seq_order(storage: Storage) -> None:
    a1, b1, a2 = await add_messages(storage, "console-a", "console-b", "console-a")
    a1.state = "dead"
    await storage.outbox_update(a1)
    assert ids(await storage.outbox_list("pending", 10)) == [b1.id, a2.id]
    assert ids(await storage.outbox_list("dead", 10)) == [a1.id]
    assert ids(await storage.outbox_list(None, 10)) == [a1.id, b1.id, a2.id]


async def test_outbox_list_respects_limit(storage: Storage) -> None:
    a1, b1, _a2 = await add_messages(storage, "console-a", "console-b", "console-a")
    assert ids(await storage.outbox_list(None, 2)) == [a1.id, b1.id]


async def test_outbox_count_by_state(storage: Storage) -> None:
    a1, _b1, _a2 = await add_messages(storage, "console-a", "console-b", "console-a")
    a1.state = "dead"
    await storage.outbox_update(a1)
    assert await storage.outbox_count("pending") == 2
    assert await storage.outbox_count("dead") == 1


async def test_outbox_due_marks_head_sending(storage: Storage) -> None:
    a1, a2 = await add_messages(storage, "console-a", "console-a")
    [due] = await storage.outbox_due(T0, 10, frozenset())
    listed = {m.id: m for m in await storage.outbox_list(None, 10)}
    assert due.is_sending(T0)
    assert listed[a1.id].is_sending(T0)
    assert not listed[a2.id].is_sending(T0)


async def test_outbox_claim_visible_to_other_handle(backend: Backend) -> None:
    async with backend.opened(2) as (worker, reader):
        [a1] = await add_messages(worker, "console-a")
        await worker.outbox_due(T0, 10, frozenset())
        claimed = await reader.outbox_get(a1.id)
    assert claimed is not None
    assert claimed.is_sending(T0 + 1)


async def test_outbox_due_claims_only_returned_heads(storage: Storage) -> None:
    await storage.outbox_add(make_message("console-busy"))
    await storage.outbox_add(make_message("console-later", at=T0 + 5))
    await add_messages(storage, "console-a", "console-b")
    due = await storage.outbox_due(T0, 1, frozenset({"console-busy"}))
    sending = [m.id for m in await storage.outbox_list(None, 10) if m.is_sending(T0)]
    assert sending == ids(due)


async def test_outbox_update_ends_claim(storage: Storage) -> None:
    [a1] = await add_messages(storage, "console-a")
    [claimed] = await storage.outbox_due(T0, 10, frozenset())
    claimed.attempts = 1
    claimed.next_attempt_at = T0 + 5
    await storage.outbox_update(claimed)
    stored = await storage.outbox_get(a1.id)
    assert stored is not None
    assert not stored.is_sending(T0)


async def test_outbox_revived_message_is_not_sending(storage: Storage) -> None:
    [a1] = await add_messages(storage, "console-a")
    [claimed] = await storage.outbox_due(T0, 10, frozenset())
    await revive(storage, claimed)
    stored = await storage.outbox_get(a1.id)
    assert stored is not None
    assert stored.state == "pending"
    assert not stored.is_sending(T0)


# A claim in memory ends with its process, so only the stores that outlive one are checked.
@pytest.mark.parametrize("backend", ["sqlite", "redis"], indirect=True)
async def test_outbox_claim_of_dead_process_ends(storage: Storage) -> None:
    [a1] = await add_messages(storage, "console-a")
    await storage.outbox_due(T0, 10, frozenset())
    stored = await storage.outbox_get(a1.id)
    assert stored is not None
    assert not stored.is_sending(T0 + 3600)


async def test_outbox_next_due_empty_is_none(storage: Storage) -> None:
    assert await storage.outbox_next_due() is None


async def test_outbox_next_due_is_earliest_head(storage: Storage) -> None:
    await storage.outbox_add(make_message("console-a", at=T0 + 5))
    await storage.outbox_add(make_message("console-b", at=T0 + 3))
    assert await storage.outbox_next_due() == T0 + 3


async def test_outbox_next_due_skips_messages_behind_head(storage: Storage) -> None:
    # The head was retried and waits; the message behind it is older but cannot go first.
    await storage.outbox_add(make_message("console-a", at=T0 + 5))
    await storage.outbox_add(make_message("console-a", at=T0))
    assert await storage.outbox_next_due() == T0 + 5


async def test_outbox_next_due_skips_busy_chats(storage: Storage) -> None:
    await storage.outbox_add(make_message("console-a", at=T0))
    await storage.outbox_add(make_message("console-b", at=T0 + 5))
    assert await storage.outbox_next_due(frozenset({"console-a"})) == T0 + 5
    assert await storage.outbox_next_due(frozenset({"console-a", "console-b"})) is None


async def test_outbox_next_due_ignores_dead(storage: Storage) -> None:
    dead = make_message("console-a", at=T0 + 1)
    await storage.outbox_add(dead)
    await storage.outbox_add(make_message("console-b", at=T0 + 3))
    dead.state = "dead"
    await storage.outbox_update(dead)
    assert await storage.outbox_next_due() == T0 + 3


# Duplicate detection.
async def test_dedupe_first_claim_is_claimed(storage: Storage) -> None:
    assert await storage.dedupe_claim("key", T0) == "claimed"


async def test_dedupe_claim_in_progress(storage: Storage) -> None:
    await storage.dedupe_claim("key", T0)
    assert await storage.dedupe_claim("key", T0 + 1) == "in_progress"


async def test_dedupe_duplicate_after_complete(storage: Storage) -> None:
    await storage.dedupe_claim("key", T0)
    await storage.dedupe_complete("key", T0 + 1, 3600)
    assert await storage.dedupe_claim("key", T0 + 2) == "duplicate"


async def test_dedupe_release_allows_new_claim(storage: Storage) -> None:
    await storage.dedupe_claim("key", T0)
    await storage.dedupe_release("key")
    assert await storage.dedupe_claim("key", T0 + 1) == "claimed"


async def test_dedupe_release_keeps_completed(storage: Storage) -> None:
    await storage.dedupe_claim("key", T0)
    await storage.dedupe_complete("key", T0, 3600)
    await storage.dedupe_release("key")
    assert await storage.dedupe_claim("key", T0 + 1) == "duplicate"


async def test_dedupe_stale_claim_expires(storage: Storage) -> None:
    await storage.dedupe_claim("key", T0)
    assert await storage.dedupe_claim("key", T0 + IN_PROGRESS_TTL - 1) == "in_progress"
    assert await storage.dedupe_claim("key", T0 + IN_PROGRESS_TTL + 1) == "claimed"


async def test_dedupe_window_expires(storage: Storage) -> None:
    await storage.dedupe_claim("key", T0)
    await storage.dedupe_complete("key", T0, 60)
    assert await storage.dedupe_claim("key", T0 + 59) == "duplicate"
    assert await storage.dedupe_claim("key", T0 + 61) == "claimed"


async def test_dedupe_keys_are_independent(storage: Storage) -> None:
    await storage.dedupe_claim("one", T0)
    assert await storage.dedupe_claim("two", T0) == "claimed"


async def test_dedupe_concurrent_claims_one_wins(backend: Backend) -> None:
    results: list[str] = []
    async with backend.opened(5) as handles:

        async def claim(handle: Storage) -> None:
            results.append(await handle.dedupe_claim("github\x00/hook\x00abc", T0))

        async with anyio.create_task_group() as group:
            for index in range(50):
                group.start_soon(claim, handles[index % len(handles)])
    assert results.count("claimed") == 1
    assert results.count("in_progress") == 49


# Delivery log.
async def test_delivery_get_returns_written_record(storage: Storage) -> None:
    record = make_delivery("r1", T0)
    record.body_truncated = True
    record.error_id = "e-1"
    record.replay_of = "r0"
    record.verified = True
    record.duplicate = True
    await storage.deliveries_write([record])
    assert await storage.delivery_get("r1") == record


def test_old_redis_record_reads_back() -> None:
    record = make_delivery("r1", T0)
    fields = {
        str(name): value
        for name, value in redis_module._delivery_fields(record).items()
        if name not in ("verified", "duplicate")
    }
    raw = {
        name.encode(): value if isinstance(value, bytes) else str(value).encode()
        for name, value in fields.items()
    }
    read = redis_module._delivery(raw)
    assert read.verified is None
    assert read.duplicate is False
    assert read == record


@pytest.mark.parametrize("verified", [True, False, None])
async def test_delivery_verified_reads_back(storage: Storage, verified: bool | None) -> None:
    record = make_delivery("r1", T0)
    record.verified = verified
    await storage.deliveries_write([record])
    stored = await storage.delivery_get("r1")
    assert stored is not None
    assert stored.verified is verified


@pytest.mark.parametrize(
    "value",
    ["推送 ✓", "bytes \udcff\udcfe that were not UTF-8", 'quote " and backslash \\'],
    ids=["non-ascii", "lone-surrogates", "json-escapes"],
)
async def test_delivery_header_values_read_back_unchanged(storage: Storage, value: str) -> None:
    record = make_delivery("r1", T0)
    record.headers = [("X-Note", value)]
    await storage.deliveries_write([record])
    stored = await storage.delivery_get("r1")
    assert stored is not None
    assert stored.headers == [("X-Note", value)]


async def test_deliveries_list_without_bodies(storage: Storage) -> None:
    record = make_delivery("r1", T0)
    record.verified = False
    await storage.deliveries_write([record])
    listed = await storage.deliveries_list(None, None, 10, with_bodies=False)
    assert listed == [attrs.evolve(record, body=b"")]


async def test_delivery_get_unknown_is_none(storage: Storage) -> None:
    assert await storage.delivery_get("missing") is None


async def test_deliveries_list_newest_first(storage: Storage) -> None:
    records = [make_delivery(f"r{i}", T0 + i) for i in range(3)]
    await storage.deliveries_write(records)
    listed = await storage.deliveries_list(None, None, 10)
    assert [r.id for r in listed] == ["r2", "r1", "r0"]


async def test_deliveries_list_filters_plugin(storage: Storage) -> None:
    await storage.deliveries_write(
        [
            make_delivery("r0", T0, plugin="github"),
            make_delivery("r1", T0 + 1, plugin="grafana"),
            make_delivery("r2", T0 + 2, plugin="github"),
        ]
    )
    listed = await storage.deliveries_list("github", None, 10)
    assert [r.id for r in listed] == ["r2", "r0"]


async def test_deliveries_list_filters_status_class(storage: Storage) -> None:
    await storage.deliveries_write(
        [
            make_delivery("r0", T0, status=200),
            make_delivery("r1", T0 + 1, status=401),
            make_delivery("r2", T0 + 2, status=404),
            make_delivery("r3", T0 + 3, status=500),
        ]
    )
    listed = await storage.deliveries_list(None, 4, 10)
    assert [r.id for r in listed] == ["r2", "r1"]


async def test_deliveries_list_respects_limit(storage: Storage) -> None:
    await storage.deliveries_write([make_delivery(f"r{i}", T0 + i) for i in range(5)])
    listed = await storage.deliveries_list(None, None, 2)
    assert [r.id for r in listed] == ["r4", "r3"]


async def test_deliveries_prune_by_age(storage: Storage) -> None:
    await storage.deliveries_write([make_delivery(f"r{i}", T0 + i) for i in range(4)])
    assert await storage.deliveries_prune(T0 + 2, 100) == 2
    listed = await storage.deliveries_list(None, None, 10)
    assert [r.id for r in listed] == ["r3", "r2"]


async def test_deliveries_prune_by_count(storage: Storage) -> None:
    await storage.deliveries_write([make_delivery(f"r{i}", T0 + i) for i in range(4)])
    assert await storage.deliveries_prune(0.0, 1) == 3
    assert await storage.delivery_get("r2") is None
    listed = await storage.deliveries_list(None, None, 10)
    assert [r.id for r in listed] == ["r3"]


# The app end to end on Redis.
demo = Plugin("redis-demo", version="0.1")
DEMO = "/api/plugin/redis-demo/webhook"


@demo.mount_webhook("/notify", methods=["POST"])
async def notify(request: WebhookRequest) -> Any:
    await message.send_text("console-ops", await request.text())
    return {"queued": True}


@demo.mount_webhook("/remember", methods=["POST"])
async def remember(request: WebhookRequest) -> Any:
    data = await request.json()
    await demo.store.set(store_key=data["key"], value=data["value"], chat_key="console-ops")
    return {"stored": data["key"]}


@demo.mount_webhook("/recall")
async def recall(request: WebhookRequest) -> Any:
    value = await demo.store.get(store_key=request.query["key"], chat_key="console-ops")
    return {"value": value}


async def test_redis_app_delivers_message(redis_url: str) -> None:
    store = RedisStorage(redis_url, namespace=f"test-{uuid.uuid4().hex}")
    async with WebhookTestClient([demo], store=store) as client:
        response = await client.post(f"{DEMO}/notify", content="deploy finished")
        await client.drain()
        sent = client.messages
        remaining = await client.app.storage.outbox_count("pending")
    assert response.status_code == 200
    assert [(m.chat_key, m.text) for m in sent] == [("console-ops", "deploy finished")]
    assert remaining == 0


async def test_redis_store_shared_between_apps(redis_url: str) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    storage_settings = StorageSettings(backend="redis", url=redis_url, namespace=namespace)
    settings = Settings(storage=storage_settings)
    second_store = RedisStorage(redis_url, namespace=namespace)
    async with (
        WebhookTestClient([demo], settings=settings) as first,
        WebhookTestClient([demo], store=second_store) as second,
    ):
        stored = await first.post(f"{DEMO}/remember", json={"key": "release", "value": "v1.2"})
        recalled = await second.get(f"{DEMO}/recall", params={"key": "release"})
        first_storage = first.app.storage
    assert isinstance(first_storage, RedisStorage)
    assert stored.status_code == 200
    assert recalled.json() == {"value": "v1.2"}
