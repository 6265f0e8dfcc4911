"""Several plughook instances on one Redis: outbox consumers and shared workers.

The instances here are storage handles or apps in one process. Each has its
own Redis connection pool, as separate processes would.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.lowlevel
import pytest

from core import Plugin, Settings, WebhookApp, WebhookRequest
from core.channels import Channel
from core.records import OutboxMessage
from core.redis import RedisStorage
from core.settings import ServerSettings, StorageSettings
from tests.standins import ScriptedResponse
from tests.standins.onebot import OneBotStandIn

pytest_plugins = ["tests.redis_server"]
pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.125
# Short, so that the claim of a silent consumer runs out within a test.
VISIBILITY = 0.2
# Stream entries as XRANGE returns them to a client without decode_responses.
# redis-py 8 types the reply for both modes and allows None, but XRANGE always
# replies with an array.
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


@pytest.fixture
async def instances(redis_url: str) -> AsyncIterator[list[RedisStorage]]:
    """Three storage handles on one namespace, as three app instances would have."""
    namespace = f"test-{uuid.uuid4().hex}"
    async with AsyncExitStack() as stack:
        handles = []
        for _ in range(3):
            storage = RedisStorage(redis_url, namespace=namespace, visibility_timeout=VISIBILITY)
            await storage.open()
            stack.push_async_callback(storage.close)
            handles.append(storage)
        yield handles


async def add(storage: RedisStorage, chat_key: str) -> OutboxMessage:
    message = OutboxMessage(uuid.uuid4().hex, chat_key, "hello", T0, next_attempt_at=T0)
    await storage.outbox_add(message)
    return message


def ids(messages: list[OutboxMessage]) -> list[str]:
    return [m.id for m in messages]


async def test_claimed_head_hidden_from_other_instance(instances: list[RedisStorage]) -> None:
    first, second, _ = instances
    a1 = await add(first, "console-a")
    b1 = await add(first, "console-b")
    assert ids(await first.outbox_due(T0, 10, frozenset())) == [a1.id, b1.id]
    assert await second.outbox_due(T0 + 1, 10, frozenset()) == []


async def test_claimed_head_is_pending_entry_of_its_consumer(
    instances: list[RedisStorage],
) -> None:
    first, _, _ = instances
    a1 = await add(first, "console-a")
    await first.outbox_due(T0, 10, frozenset())
    client = first._conn().client
    stream = f"{first.namespace}:outbox:stream:console-a"
    [entry] = await client.xpending_range(stream, "workers", "-", "+", 10)
    consumer, message_id = entry["consumer"], entry["message_id"]
    assert isinstance(consumer, bytes)
    assert isinstance(message_id, bytes)
    assert consumer.decode() == first.consumer
    [(_, fields)] = cast(StreamEntries, await client.xrange(stream, message_id, message_id))
    assert fields[b"id"].decode() == a1.id


async def test_silent_consumer_head_is_reclaimed(
    instances: list[RedisStorage], caplog: pytest.LogCaptureFixture
) -> None:
    first, second, _ = instances
    a1 = await add(first, "console-a")
    await first.outbox_due(T0, 10, frozenset())
    assert await second.outbox_due(T0 + VISIBILITY + 1, 10, frozenset()) == []
    await anyio.sleep(VISIBILITY + 0.05)
    with caplog.at_level(logging.WARNING, "plughook.outbox"):
        [again] = await second.outbox_due(T0 + VISIBILITY + 2, 10, frozenset())
    assert again.id == a1.id
    assert again.attempts == 1
    assert again.possible_duplicates == 1
    [line] = [r.getMessage() for r in caplog.records]
    assert f"message {a1.id} to console-a was read by consumer {first.consumer}" in line


async def test_late_update_keeps_claim_taken_over(instances: list[RedisStorage]) -> None:
    first, second, third = instances
    await add(first, "console-a")
    [stale] = await first.outbox_due(T0, 10, frozenset())
    await anyio.sleep(VISIBILITY + 0.05)
    [taken_over] = await second.outbox_due(T0 + VISIBILITY + 1, 10, frozenset())
    assert taken_over.id == stale.id
    stale.attempts = 1
    await first.outbox_update(stale)
    assert await third.outbox_due(T0 + VISIBILITY + 1, 10, frozenset()) == []


async def test_remove_acknowledges_and_deletes_entry(instances: list[RedisStorage]) -> None:
    first, _, _ = instances
    a1 = await add(first, "console-a")
    a2 = await add(first, "console-a")
    await first.outbox_due(T0, 10, frozenset())
    await first.outbox_remove(a1.id)
    stream = f"{first.namespace}:outbox:stream:console-a"
    entries = cast(StreamEntries, await first._conn().client.xrange(stream))
    assert [fields[b"id"].decode() for _, fields in entries] == [a2.id]
    assert await first._conn().client.xpending(stream, "workers") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_empty_stream_is_deleted(instances: list[RedisStorage]) -> None:
    first, _, _ = instances
    a1 = await add(first, "console-a")
    await first.outbox_due(T0, 10, frozenset())
    await first.outbox_remove(a1.id)
    assert await first._conn().client.exists(f"{first.namespace}:outbox:stream:console-a") == 0


async def test_update_releases_claim(instances: list[RedisStorage]) -> None:
    first, second, _ = instances
    a1 = await add(first, "console-a")
    [claimed] = await first.outbox_due(T0, 10, frozenset())
    claimed.attempts = 1
    claimed.next_attempt_at = T0 + 5
    await first.outbox_update(claimed)
    assert await second.outbox_next_due() == T0 + 5
    assert ids(await second.outbox_due(T0 + 5, 10, frozenset())) == [a1.id]


async def test_next_due_counts_claim(instances: list[RedisStorage]) -> None:
    first, _, _ = instances
    await add(first, "console-a")
    await first.outbox_due(T0, 10, frozenset())
    assert await first.outbox_next_due() == T0 + VISIBILITY


async def test_revived_message_waits_for_claimed_head(instances: list[RedisStorage]) -> None:
    first, second, _ = instances
    a0 = await add(first, "console-a")
    a1 = await add(first, "console-a")
    a0.state = "dead"
    await first.outbox_update(a0)
    assert ids(await first.outbox_due(T0, 10, frozenset())) == [a1.id]

    # Back in the queue, a0 waits behind a1, which is still in flight.
    a0.state = "pending"
    await second.outbox_update(a0)
    assert await second.outbox_due(T0 + 1, 10, frozenset()) == []
    await first.outbox_remove(a1.id)
    assert ids(await second.outbox_due(T0 + 1, 10, frozenset())) == [a0.id]


async def test_concurrent_due_claims_each_head_once(instances: list[RedisStorage]) -> None:
    heads = [await add(instances[0], f"console-{index}") for index in range(20)]
    for head in heads:
        await add(instances[0], head.chat_key)
    claimed_ids: list[str] = []

    async def take(storage: RedisStorage) -> None:
        claimed_ids.extend(ids(await storage.outbox_due(T0, 3, frozenset())))

    async with anyio.create_task_group() as group:
        for index in range(12):
            group.start_soon(take, instances[index % len(instances)])
    assert len(claimed_ids) == len(set(claimed_ids))
    assert sorted(claimed_ids) == sorted(ids(heads))


class SharedRecorder:
    """Every message any instance sent, in the order the sends finished."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []


class InstanceChannel(Channel):
    """Records into a ``SharedRecorder`` after yielding, so sends of instances interleave."""

    def __init__(self, recorder: SharedRecorder, instance: str) -> None:
        self.name = f"recording-{instance}"
        self._recorder = recorder
        self._instance = instance

    async def send(self, message: OutboxMessage) -> None:
        await anyio.sleep(0.001)
        self._recorder.sent.append((self._instance, message.chat_key, message.text))


jobs = Plugin("redis-jobs", version="0.1")


async def count_to(limit: int) -> int:
    await anyio.lowlevel.checkpoint()
    return limit


@jobs.mount_webhook("/start", methods=["POST"])
async def start(request: WebhookRequest) -> Any:
    return {"task_id": jobs.tasks.start(count_to, int(await request.text()))}


def make_app(redis_url: str, namespace: str, channel: Channel, folder: Path) -> WebhookApp:
    return WebhookApp(
        [jobs],
        store=RedisStorage(redis_url, namespace=namespace),
        default_channel=channel,
        data_dir=folder,
    )


async def test_two_apps_deliver_each_message_once_in_order(redis_url: str, tmp_path: Path) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    recorder = SharedRecorder()
    first = make_app(redis_url, namespace, InstanceChannel(recorder, "first"), tmp_path)
    second = make_app(redis_url, namespace, InstanceChannel(recorder, "second"), tmp_path)
    async with first.running(), second.running():
        assert first.outbox is not None
        assert second.outbox is not None
        for index in range(40):
            app = first if index % 2 else second
            assert app.outbox is not None
            await app.outbox.put(f"console-{index % 4}", f"{index:02d}")
        await first.drain()
        await second.drain()

    assert {instance for instance, _, _ in recorder.sent} == {"first", "second"}
    texts = sorted(text for _, _, text in recorder.sent)
    assert texts == [f"{index:02d}" for index in range(40)]
    for chat in range(4):
        in_chat = [text for _, chat_key, text in recorder.sent if chat_key == f"console-{chat}"]
        assert in_chat == sorted(in_chat), f"console-{chat} out of order"


async def test_task_record_visible_to_other_app(redis_url: str, tmp_path: Path) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    recorder = SharedRecorder()
    first = make_app(redis_url, namespace, InstanceChannel(recorder, "first"), tmp_path)
    second = make_app(redis_url, namespace, InstanceChannel(recorder, "second"), tmp_path)
    async with first.running(), second.running():
        request = WebhookRequest("POST", "redis-jobs", "/start", body=b"7")
        response = await first.handle(request)
        await first.drain()
        task_id = json.loads(response.body)["task_id"]
        record = await second.tasks.get(task_id)
    assert record is not None
    assert record.state == "completed"
    assert record.result == "7"


def test_app_names_its_consumer_after_instance(redis_url: str, tmp_path: Path) -> None:
    storage = StorageSettings(backend="redis", url=redis_url, visibility_timeout=7.0)
    app = WebhookApp([jobs], settings=Settings(storage=storage), data_dir=tmp_path)
    assert isinstance(app.storage, RedisStorage)
    assert app.storage.consumer == app.instance_id
    assert app.storage.visibility_timeout == 7.0


class SlowChannel(Channel):
    """Takes ``delay`` seconds per send; ``started`` is set when the first send begins."""

    def __init__(self, recorder: SharedRecorder, delay: float) -> None:
        self.name = "slow"
        self.started = anyio.Event()
        self._recorder = recorder
        self._delay = delay

    async def send(self, message: OutboxMessage) -> None:
        self.started.set()
        await anyio.sleep(self._delay)
        self._recorder.sent.append(("slow", message.chat_key, message.text))


async def test_cut_off_send_goes_to_other_instance(redis_url: str, tmp_path: Path) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    recorder = SharedRecorder()
    slow = SlowChannel(recorder, delay=30.0)
    stopping = WebhookApp(
        [jobs],
        store=RedisStorage(redis_url, namespace=namespace),
        default_channel=slow,
        data_dir=tmp_path / "stopping",
        settings=Settings(server=ServerSettings(grace_period=0.1)),
    )
    other = make_app(redis_url, namespace, InstanceChannel(recorder, "other"), tmp_path / "other")
    sending = anyio.Event()
    stop = anyio.Event()

    async def run_stopping() -> None:
        async with stopping.running():
            assert stopping.outbox is not None
            await stopping.outbox.put("console-a", "cut off")
            await slow.started.wait()
            sending.set()
            await stop.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(run_stopping)
        await sending.wait()
        async with other.running():
            stop.set()
            # Far below the default visibility timeout of 60 s.
            with anyio.fail_after(10):
                while not recorder.sent:
                    await anyio.sleep(0.01)
            assert other.outbox is not None
            await other.drain()
    assert recorder.sent == [("other", "console-a", "cut off")]


async def test_send_failing_at_shutdown_is_left_to_others(
    redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with OneBotStandIn(token="redis-token") as server:
        server.script.append(ScriptedResponse(delay=3.0))
        channel = {
            "kind": "onebot_v11",
            "api_url": server.url,
            "access_token": "redis-token",
            "timeout": 1.0,
        }
        app = WebhookApp(
            [],
            store=RedisStorage(redis_url, namespace=f"test-{uuid.uuid4().hex}"),
            data_dir=tmp_path,
            settings=Settings(channels={"onebot_v11": channel}),
        )
        with caplog.at_level(logging.WARNING, "plughook.outbox"):
            async with app.running():
                assert app.outbox is not None
                [message_id] = await app.outbox.put("onebot_v11-group_5", "slow at shutdown")
                with anyio.fail_after(10):
                    while server.request_count < 1:
                        await anyio.sleep(0.01)
    [line] = [r.getMessage() for r in caplog.records if r.name == "plughook.outbox"]
    assert line.startswith(
        f"message {message_id} to onebot_v11-group_5 failed on attempt 1 during shutdown, so it "
        "stays queued for another instance or the next start"
    )
