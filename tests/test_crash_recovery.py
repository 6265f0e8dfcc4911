"""kill -9 of a real ``plughook serve`` with messages pending: nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import anyio
import pytest

from tests.processes import free_port, start_serve, wait_healthy
from tests.standins import ScriptedResponse
from tests.standins.onebot import OneBotStandIn

pytestmark = pytest.mark.anyio

MESSAGES = 1000


def write_config(folder: Path, api_url: str) -> Path:
    config = folder / "plughook.toml"
    config.write_text(
        f'data_dir = "{folder / "data"}"\n'
        'log_level = "WARNING"\n'
        "[outbox]\nbase_delay = 0.05\nmax_delay = 0.2\nmax_attempts = 1000\nconcurrency = 8\n"
        "[channels.onebot_v11]\n"
        'kind = "onebot_v11"\n'
        f'api_url = "{api_url}"\n'
        'access_token = "crash-token"\n'
        "timeout = 2.0\nmin_interval = 0.0\nrate_per_minute = 0\n"
    )
    return config


@contextmanager
def serve(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = start_serve(config, port, log, "tests.burst_plugin")
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def test_kill_nine_loses_no_message(tmp_path: Path) -> None:
    # Every send takes 20 ms, so the burst is still draining when the server dies.
    slow = ScriptedResponse(delay=0.02)
    async with OneBotStandIn(token="crash-token", failure_ratio=1.0, failure=slow) as standin:
        config = write_config(tmp_path, standin.url)
        port = free_port()
        log = tmp_path / "serve.log"
        async with aiohttp.ClientSession() as session:
            with serve(config, port, log) as first:
                await wait_healthy(session, port)
                url = f"http://127.0.0.1:{port}/api/plugin/burst/webhook/burst"
                async with session.post(url, params={"count": str(MESSAGES)}) as response:
                    assert response.status == 200
                with anyio.fail_after(60):
                    while len(standin.messages) < 100:
                        await anyio.sleep(0.01)
                os.kill(first.pid, signal.SIGKILL)
                first.wait(timeout=10)
            delivered_before_kill = len(standin.messages)

            with serve(config, port, log) as second:
                await wait_healthy(session, port)
                with anyio.fail_after(120):
                    while len({t for m in standin.messages for t in m.texts}) < MESSAGES:
                        await anyio.sleep(0.05)
                second.send_signal(signal.SIGTERM)
                exit_status = second.wait(timeout=30)

    texts = [text for m in standin.messages for text in m.texts]
    counts = Counter(texts)
    duplicates = sum(count - 1 for count in counts.values())
    print(
        f"\nkill -9 after {delivered_before_kill} of {MESSAGES} messages: "
        f"{len(counts)} distinct delivered, {duplicates} duplicates"
    )
    assert delivered_before_kill < MESSAGES
    assert set(counts) == {f"m:{number}" for number in range(MESSAGES)}
    # At most the sends in flight when the process died (outbox concurrency 8).
    assert duplicates <= 8
    assert exit_status == 0
    first_seen: dict[int, list[int]] = {}
    for message in standin.messages:
        for text in message.texts:
            number = int(text.split(":")[1])
            numbers = first_seen.setdefault(message.target_id, [])
            if number not in numbers:
                numbers.append(number)
    assert all(numbers == sorted(numbers) for numbers in first_seen.values())
