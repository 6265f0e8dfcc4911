"""Tasks of an instance that died are marked interrupted by another instance on Redis."""

from __future__ import annotations

import time

import anyio
import pytest

from core import Settings, WebhookApp
from core.records import TaskRecord
from core.redis import RedisStorage
from core.settings import StorageSettings

pytest_plugins = ["tests.redis_server"]
pytestmark = pytest.mark.anyio


def redis_app(url: str, namespace: str) -> WebhookApp:
    storage = StorageSettings(
        backend="redis", url=url, namespace=namespace, heartbeat_interval=0.05
    )
    return WebhookApp([], settings=Settings(storage=storage))


async def test_dead_instance_tasks_become_interrupted(redis_url: str) -> None:
    namespace = f"heartbeat-{time.monotonic_ns()}"
    storage = RedisStorage(redis_url, namespace=namespace)
    await storage.open()
    now = time.time()
    await storage.tasks_write(
        [
            TaskRecord("ghost-task", "p", "work", "running", now, now, owner="ghost"),
        ]
    )
    await storage.close()

    app = redis_app(redis_url, namespace)
    async with app.running():
        with anyio.fail_after(5):
            while (record := await app.storage.task_get("ghost-task")) is not None and (
                record.state == "running"
            ):
                await anyio.sleep(0.02)
    assert record is not None
    assert record.state == "interrupted"


async def test_live_instance_tasks_stay_running(redis_url: str) -> None:
    namespace = f"heartbeat-{time.monotonic_ns()}"
    release = anyio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    first = redis_app(redis_url, namespace)
    second = redis_app(redis_url, namespace)
    async with first.running(), second.running():
        task_id = first.tasks.start("p", work)
        await first.writer.flush()
        await anyio.sleep(0.3)
        seen_by_second = await second.storage.task_get(task_id)
        release.set()
        await first.drain()
    assert seen_by_second is not None
    assert seen_by_second.state == "running"


async def test_maintenance_switch_reaches_other_instance(redis_url: str) -> None:
    namespace = f"maintenance-{time.monotonic_ns()}"
    first = redis_app(redis_url, namespace)
    second = redis_app(redis_url, namespace)
    async with first.running(), second.running():
        before = await second.in_maintenance()
        await first.set_maintenance(True)
        with anyio.fail_after(5):
            while not await second.in_maintenance():
                await anyio.sleep(0.1)
        after = await second.in_maintenance()
    assert before is False
    assert after is True
