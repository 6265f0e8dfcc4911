"""In-process benchmarks of the core: dispatch cost and route lookup.

Run with ``python -m benchmarks.core [--seconds 2]``. Every figure is the
median of several timed rounds in one process.
"""

from __future__ import annotations

import argparse
import functools
import json
import socket
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from benchmarks.machine import describe_machine
from benchmarks.outbox import bench_outbox
from core import Plugin, WebhookApp, WebhookRequest
from core.routing import Router
from core.store import MemoryStorage

ROUNDS = 5
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def make_plugins(count: int) -> list[Plugin]:
    """Build plugins with ``count`` trivial endpoints in total, 100 per plugin."""
    plugins = []
    per_plugin = min(count, 100)
    for index in range(max(count // per_plugin, 1)):
        plugin = Plugin(f"p{index}", version="1")
        for number in range(per_plugin):

            async def handler() -> dict[str, bool]:
                return {"ok": True}

            plugin.mount_webhook(f"/e{number}", respond_within=None)(handler)
        plugins.append(plugin)
    return plugins


def trivial_plugin() -> Plugin:
    plugin = Plugin("bench", version="1")

    @plugin.mount_webhook("/inline", methods=["POST"], respond_within=None)
    async def inline() -> dict[str, bool]:
        return {"ok": True}

    @plugin.mount_webhook("/deadline", methods=["POST"])
    async def deadline() -> dict[str, bool]:
        return {"ok": True}

    return plugin


def _ignore_early_response(response: Any) -> None:
    """Stand in for an adapter's early 202, which none of these handlers ever needs."""


async def time_rounds(function: Callable[[], Awaitable[Any]], seconds: float) -> tuple[float, int]:
    """Return the median microseconds per call over ``ROUNDS`` rounds, and the call count."""
    per_round = seconds / ROUNDS
    results = []
    total = 0
    for _ in range(ROUNDS):
        calls = 0
        started = time.perf_counter()
        deadline = started + per_round
        while time.perf_counter() < deadline:
            for _ in range(200):
                await function()
            calls += 200
        elapsed = time.perf_counter() - started
        results.append(elapsed / calls * 1e6)
        total += calls
    return statistics.median(results), total


async def bench_dispatch(seconds: float) -> dict[str, Any]:
    app = WebhookApp([trivial_plugin()], store=MemoryStorage())
    figures: dict[str, Any] = {}
    async with app.running():
        # "timer" calls the default endpoint the way both adapters do, with a
        # callback for an early 202. Without one ("deadline"), as the test
        # client and replays call it, the handler runs in a task of its own.
        cases = (
            ("inline", "/inline", None),
            ("deadline", "/deadline", None),
            ("timer", "/deadline", _ignore_early_response),
        )
        for name, path, respond_early in cases:

            async def call(path: str = path, respond_early: Any = respond_early) -> Any:
                request = WebhookRequest("POST", "bench", path)
                return await app.handle(request, respond_early=respond_early)

            micros, calls = await time_rounds(call, seconds)
            figures[name] = {
                "us_per_request": micros,
                "requests_per_s": 1e6 / micros,
                "calls": calls,
            }
            await app.writer.flush()
    return figures


async def bench_lookup(seconds: float) -> dict[str, Any]:
    """Time one route lookup in tables of 10 and 10,000 endpoints, without an await around it."""
    figures: dict[str, Any] = {}
    for count in (10, 10_000):
        router = Router(make_plugins(count))
        plugin = f"p{max(count // 100, 1) - 1}"
        path = f"/e{min(count, 100) - 1}"
        number = 100_000
        timer = timeit.Timer(functools.partial(router.lookup, plugin, path))
        rounds = timer.repeat(repeat=ROUNDS, number=number)
        figures[str(count)] = {"us_per_lookup": statistics.median(rounds) / number * 1e6}
    ratio = figures["10000"]["us_per_lookup"] / figures["10"]["us_per_lookup"]
    figures["ratio_10000_vs_10"] = ratio
    return figures


async def bench_verification(seconds: float) -> dict[str, Any]:
    """Time GitHub signature verification of a 2 KiB and a 1 MiB body."""
    from core.signatures import sign_github, verify_github

    figures: dict[str, Any] = {}
    secrets = ["benchmark-secret"]
    for label, size in (("2KiB", 2048), ("1MiB", 1024 * 1024)):
        body = b"x" * size
        headers = {"X-Hub-Signature-256": sign_github(body, secrets[0])}

        async def verify(body: bytes = body, headers: dict[str, str] = headers) -> None:
            verify_github(body, headers, secrets)

        micros, _ = await time_rounds(verify, seconds if size < 65536 else seconds / 4)
        figures[label] = {"us_per_verification": micros}
    return figures


async def bench_github(seconds: float) -> dict[str, Any]:
    """Time the benchmark GitHub endpoint: verify the signature, parse JSON, answer."""
    from benchmarks.payload import BODY, HEADERS, SECRET
    from benchmarks.servers import bench_plugin

    app = WebhookApp([bench_plugin()], {"bench": {"WEBHOOK_SECRET": SECRET}}, store=MemoryStorage())
    headers = list(HEADERS.items())
    async with app.running():

        async def call() -> Any:
            request = WebhookRequest("POST", "bench", "/github", headers=headers, body=BODY)
            return await app.handle(request, respond_early=_ignore_early_response)

        micros, calls = await time_rounds(call, seconds)
        await app.writer.flush()
    return {"us_per_request": micros, "requests_per_s": 1e6 / micros, "calls": calls}


def bench_upload(megabytes: int) -> dict[str, Any]:
    """Measure RSS growth of a child process streaming a multipart upload to disk."""
    command = [sys.executable, "-m", "benchmarks.upload_child", str(megabytes)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


async def run(seconds: float, upload_megabytes: int, messages: int) -> dict[str, Any]:
    dispatch = await bench_dispatch(seconds)
    dispatch["github"] = await bench_github(seconds)
    return {
        "machine": describe_machine(),
        "dispatch": dispatch,
        "lookup": await bench_lookup(seconds),
        "verification": await bench_verification(seconds),
        "upload": bench_upload(upload_megabytes),
        "outbox": await bench_outbox(messages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark in-process dispatch and lookup.")
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="time per measured case in seconds (default 2)"
    )
    parser.add_argument(
        "--upload-mib",
        type=int,
        default=200,
        help="size of the streamed upload in MiB (default 200)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=2000,
        help="messages sent through the outbox per channel (default 2000)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="result file (default benchmarks/results/<date>-<host>-core.json)",
    )
    args = parser.parse_args()
    result = anyio.run(run, args.seconds, args.upload_mib, args.messages)
    print(json.dumps(result, indent=2))
    output = args.output or RESULTS_DIR / (
        f"{time.strftime('%Y-%m-%d')}-{socket.gethostname()}-core.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
