"""Helpers for tests that run real ``plughook serve`` processes on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import anyio

__all__ = ["ROOT", "free_port", "start_serve", "wait_healthy"]

ROOT = Path(__file__).resolve().parent.parent
# Seconds a server may take to respond to /healthz; start-up imports take about one.
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_serve(config: Path, port: int, log: Path, plugin: str) -> subprocess.Popen[bytes]:
    """Start ``plughook serve`` with ``config`` and only the plugin module ``plugin``.

    Its output is appended to ``log``.
    """
    with log.open("ab") as output:
        return subprocess.Popen(
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
                plugin,
                "--no-entry-points",
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def wait_healthy(session: aiohttp.ClientSession, port: int) -> None:
    """Wait until the server on ``port`` responds to ``GET /healthz`` with 200."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await anyio.sleep(0.1)
    msg = f"plughook serve on port {port} did not answer /healthz within {STARTUP_TIMEOUT} s"
    raise AssertionError(msg)
