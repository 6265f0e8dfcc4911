"""Deliveries per second for one plughook instance on SQLite, and one or two on Redis.

``python -m benchmarks.instances [--duration 5] [--connections 32]`` starts
real ``plughook serve`` processes with the bundled monitor-alert plugin and
the console channel (output discarded), a private ``redis-server`` on a Unix
socket for the Redis cases, and sends generic alerts round-robin to the
instances from an aiohttp client in this process. Every delivery is verified
(bearer token), recorded in the delivery log and queued as a chat message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.machine import describe_machine

TOKEN = "benchmark-token"
ALERT = json.dumps({"service": "api", "level": "critical", "message": "p99 above 2 s"}).encode()
PATH = "/api/plugin/monitor-alert/webhook/alert"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(folder: Path, stack: ExitStack) -> str:
    """Start redis-server on a Unix socket in ``folder``; return its ``unix://`` URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        msg = "redis-server is not installed (Debian package redis-server)"
        raise SystemExit(msg)
    path = folder / "redis.sock"
    process = subprocess.Popen(
        [
            executable,
            "--port",
            "0",
            "--unixsocket",
            str(path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    stack.callback(_stop, process)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            msg = "redis-server did not create its socket"
            raise SystemExit(msg)
        time.sleep(0.05)
    return f"unix://{path}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_config(folder: Path, storage: str) -> Path:
    config = folder / "plughook.toml"
    config.write_text(
        f'data_dir = "{folder / "data"}"\nlog_level = "WARNING"\n{storage}\n'
        f'[plugins.monitor-alert]\nAPI_TOKEN = "{TOKEN}"\nALERT_CHAT = "console-ops"\n'
    )
    return config


def start_instances(config: Path, count: int, stack: ExitStack) -> list[int]:
    ports = []
    for _ in range(count):
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--plugin",
                "plugins.monitor_alert",
                "--no-entry-points",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(_stop, process)
        ports.append(port)
    return ports


async def wait_ready(session: aiohttp.ClientSession, ports: list[int]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for port in ports:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as reply:
                    if reply.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                msg = f"plughook serve on port {port} did not start"
                raise SystemExit(msg)
            await asyncio.sleep(0.1)


async def load(ports: list[int], duration: float, connections: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    sent = 0
    failed = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await wait_ready(session, ports)

        async def worker(index: int) -> None:
            nonlocal sent, failed
            url = f"http://127.0.0.1:{ports[index % len(ports)]}{PATH}"
            while time.perf_counter() < stop:
                async with session.post(url, data=ALERT, headers=headers) as reply:
                    await reply.read()
                    if reply.status == 200:
                        sent += 1
                    else:
                        failed += 1

        started = time.perf_counter()
        stop = started + duration
        await asyncio.gather(*(worker(index) for index in range(connections)))
        elapsed = time.perf_counter() - started
    return {"deliveries_per_s": sent / elapsed, "deliveries": sent, "failed": failed}


def measure(case: str, duration: float, connections: int) -> dict[str, float]:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="plughook-inst-") as folder:
        root = Path(folder)
        if case == "sqlite-1":
            config = write_config(root, "")
            count = 1
        else:
            url = start_redis(root, stack)
            config = write_config(
                root, f'[storage]\nbackend = "redis"\nurl = "{url}"\nnamespace = "bench"'
            )
            count = 2 if case == "redis-2" else 1
        ports = start_instances(config, count, stack)
        return asyncio.run(load(ports, duration, connections))


def main() -> None:
    parser = argparse.ArgumentParser(description="Compare one and two instances on Redis.")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per case")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--output", type=Path, default=None, help="result file (JSON)")
    args = parser.parse_args()
    cases = {}
    for case in ("sqlite-1", "redis-1", "redis-2"):
        cases[case] = measure(case, args.duration, args.connections)
        print(f"{case:9} {cases[case]['deliveries_per_s']:8.0f} deliveries/s", file=sys.stderr)
    result: dict[str, Any] = {
        "machine": describe_machine(),
        "duration": args.duration,
        "connections": args.connections,
        "cases": cases,
    }
    output = args.output or Path(__file__).resolve().parent / "results" / (
        f"{time.strftime('%Y-%m-%d')}-{socket.gethostname()}-instances.json"
    )
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(cases, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
