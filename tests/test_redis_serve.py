"""Two real ``plughook serve`` processes on one Redis behave as one service.

5,000 deliveries, 10% of them repeated ids, are split between two instances
while a OneBot stand-in fails 20% of sends; one instance is killed with
SIGKILL halfway, and its traffic moves to the other, as a load balancer would.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
import anyio
import pytest

from tests.processes import free_port, start_serve, wait_healthy
from tests.standins.onebot import OneBotStandIn

pytest_plugins = ["tests.redis_server"]
pytestmark = pytest.mark.anyio

PLUGIN = "tests.burst_plugin"
DELIVERIES = 5000
DUPLICATE_SHARE = 0.10
GROUPS = 20
CONCURRENCY = 32
# Seconds a delivery claimed by the killed instance blocks its redelivery.
CLAIM_TIMEOUT = 3.0
# Seconds before the outbox messages the killed instance had read go to the other.
VISIBILITY_TIMEOUT = 3.0


def write_config(folder: Path, redis_url: str, api_url: str) -> Path:
    config = folder / "plughook.toml"
    config.write_text(
        f'data_dir = "{folder / "data"}"\nlog_level = "WARNING"\n'
        "[storage]\n"
        f'backend = "redis"\nurl = "{redis_url}"\nnamespace = "serve-{time.monotonic_ns()}"\n'
        f"heartbeat_interval = 0.5\nvisibility_timeout = {VISIBILITY_TIMEOUT}\n"
        f"[deliveries]\nclaim_timeout = {CLAIM_TIMEOUT}\n"
        "[outbox]\nbase_delay = 0.02\nmax_delay = 0.2\nmax_attempts = 1000\nconcurrency = 16\n"
        "[channels.onebot_v11]\n"
        f'api_url = "{api_url}"\naccess_token = "multi-token"\n'
        "timeout = 2.0\nmin_interval = 0.0\nrate_per_minute = 0\n"
    )
    return config


class Sender:
    """Sends deliveries like GitHub with a load balancer in front: retries until answered."""

    def __init__(self, session: aiohttp.ClientSession, ports: list[int]) -> None:
        self.session = session
        self.ports = ports
        self.answers: Counter[str] = Counter()
        self.retries = 0

    async def send(self, delivery_id: str, group: int, preferred: int) -> None:
        attempt = 0
        while True:
            port = self.ports[(preferred + attempt) % len(self.ports)]
            url = f"http://127.0.0.1:{port}/api/plugin/burst/webhook/event"
            try:
                async with self.session.post(
                    url, params={"group": str(group)}, headers={"X-Delivery": delivery_id}
                ) as response:
                    body = await response.json()
                    if response.status == 200:
                        self.answers[body["status"]] += 1
                        return
            except aiohttp.ClientError:
                pass
            # A refused connection, a reset or a 409 for a claim of the dead
            # instance: try again, on the other instance if there is one.
            attempt += 1
            self.retries += 1
            await anyio.sleep(0.2)


async def test_two_instances_share_redis(tmp_path: Path, redis_url: str) -> None:
    rng = random.Random(5)
    unique = [f"d{number}" for number in range(int(DELIVERIES * (1 - DUPLICATE_SHARE)))]
    repeats = [rng.choice(unique) for _ in range(DELIVERIES - len(unique))]
    plan = unique + repeats
    rng.shuffle(plan)
    group_of = {delivery_id: 1000 + rng.randrange(GROUPS) for delivery_id in unique}

    async with OneBotStandIn(token="multi-token", failure_ratio=0.2, seed=11) as standin:
        config = write_config(tmp_path, redis_url, standin.url)
        ports = [free_port(), free_port()]
        log = tmp_path / "serve.log"
        processes = [start_serve(config, port, log, PLUGIN) for port in ports]
        try:
            async with aiohttp.ClientSession() as session:
                for port in ports:
                    await wait_healthy(session, port)
                sender = Sender(session, ports)
                limiter = anyio.Semaphore(CONCURRENCY)
                started = time.perf_counter()

                async def deliver(index: int, delivery_id: str) -> None:
                    async with limiter:
                        await sender.send(delivery_id, group_of[delivery_id], index % 2)

                async with anyio.create_task_group() as group:
                    for index, delivery_id in enumerate(plan):
                        if index == DELIVERIES // 2:
                            os.kill(processes[0].pid, signal.SIGKILL)
                            processes[0].wait(timeout=10)
                            sender.ports = [ports[1]]
                        await limiter.acquire()
                        limiter.release()
                        group.start_soon(deliver, index, delivery_id)

                with anyio.fail_after(180):
                    while len({t for m in standin.messages for t in m.texts}) < len(unique):
                        await anyio.sleep(0.1)
                elapsed = time.perf_counter() - started
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=30)

    texts = Counter(text for m in standin.messages for text in m.texts)
    extra = sum(count - 1 for count in texts.values())
    print(
        f"\n{DELIVERIES} deliveries in {elapsed:.1f} s: {sender.answers['sent']} sent, "
        f"{sender.answers['duplicate']} duplicates, {sender.retries} sender retries, "
        f"{len(texts)} distinct messages, {extra} delivered twice, "
        f"{standin.request_count} OneBot requests"
    )
    assert set(texts) == {f"event:{delivery_id}" for delivery_id in unique}
    assert sender.answers["sent"] + sender.answers["duplicate"] == DELIVERIES
    # Only sends in flight when the instance died may repeat: its outbox
    # concurrency plus its handlers in flight.
    assert extra <= 16 + CONCURRENCY
