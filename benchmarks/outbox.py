"""Outbox throughput: messages per second from ``put`` to confirmed delivery.

Measured through the console channel on the SQLite backend (the default) and
on Redis (a private redis-server on a Unix socket, when one is installed), and
through a minimal OneBot v11 server on loopback, with the flood limits off.
"""

from __future__ import annotations

import io
import shutil
import socket
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks.instances import start_redis
from core import Settings, WebhookApp
from core.channels import ConsoleChannel
from core.settings import OutboxSettings, StorageSettings

CHATS = 20


async def _onebot_server() -> tuple[web.AppRunner, str]:
    """Start a OneBot v11 HTTP server that accepts every message; return it and its URL."""

    async def send(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "ok", "retcode": 0, "data": {"message_id": 1}})

    app = web.Application()
    app.router.add_post("/send_group_msg", send)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    port = sock.getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def _drain_rate(app: WebhookApp, count: int) -> float:
    async with app.running():
        assert app.outbox is not None
        started = time.perf_counter()
        for number in range(count):
            await app.outbox.put(f"onebot_v11-group_{1000 + number % CHATS}", f"message {number}")
        await app.outbox.wait_idle()
        elapsed = time.perf_counter() - started
    return count / elapsed


async def bench_outbox(count: int) -> dict[str, Any]:
    """Return messages per second through the console and the OneBot channel."""
    outbox = OutboxSettings(concurrency=16)
    with tempfile.TemporaryDirectory(prefix="plughook-outbox-") as folder:
        console = WebhookApp(
            [],
            data_dir=f"{folder}/console",
            settings=Settings(outbox=outbox),
            default_channel=ConsoleChannel(stream=io.StringIO()),
        )
        console_rate = await _drain_rate(console, count)

        redis_rate = None
        if shutil.which("redis-server") is not None:
            with ExitStack() as stack:
                url = start_redis(Path(folder), stack)
                storage = StorageSettings(backend="redis", url=url, namespace="bench-outbox")
                on_redis = WebhookApp(
                    [],
                    data_dir=f"{folder}/redis",
                    settings=Settings(outbox=outbox, storage=storage),
                    default_channel=ConsoleChannel(stream=io.StringIO()),
                )
                redis_rate = await _drain_rate(on_redis, count)

        runner, url = await _onebot_server()
        try:
            channels = {"onebot_v11": {"api_url": url, "min_interval": 0.0, "rate_per_minute": 0}}
            settings = Settings(outbox=outbox, channels=channels)
            onebot = WebhookApp([], data_dir=f"{folder}/onebot", settings=settings)
            onebot_rate = await _drain_rate(onebot, count)
        finally:
            await runner.cleanup()
    return {
        "messages": count,
        "chats": CHATS,
        "console_per_s": console_rate,
        "console_redis_per_s": redis_rate,
        "onebot_per_s": onebot_rate,
    }
