"""A private redis-server for tests, listening only on a Unix socket in a temporary folder.

Use ``pytest_plugins = ["tests.redis_server"]`` in a test module for the
``redis_url`` fixture, or ``run_redis_server()`` directly. Without
``redis-server`` on PATH the fixture skips, unless ``PLUGHOOK_REQUIRE_REDIS``
is set (CI sets it): then it fails, so CI never skips the Redis tests silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

REQUIRE_ENV = "PLUGHOOK_REQUIRE_REDIS"
# A fresh redis-server without persistence usually replies to PING within
# milliseconds, so this leaves ample slack for a loaded CI machine.
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class RedisServerError(RuntimeError):
    """Raised when redis-server exits or stays silent during start-up."""


@contextmanager
def run_redis_server(executable: str = "redis-server") -> Iterator[str]:
    """Start ``executable`` on a Unix socket, yield its ``unix://`` URL, stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="plughook-redis-") as folder:
        socket = Path(folder) / "redis.sock"
        log = Path(folder) / "redis.log"
        command = [
            executable,
            "--port", "0",
            "--unixsocket", str(socket),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", folder,
            "--logfile", str(log),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            _wait_for_ping(process, socket, log)
            yield f"unix://{socket}"
        finally:
            _stop(process)


def _wait_for_ping(process: subprocess.Popen[bytes], socket: Path, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    client = redis.Redis(unix_socket_path=str(socket), socket_timeout=1.0)
    try:
        while True:
            if process.poll() is not None:
                msg = f"redis-server exited with code {process.returncode}: {_tail(log)}"
                raise RedisServerError(msg)
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            if time.monotonic() > deadline:
                msg = f"redis-server did not answer PING within {STARTUP_TIMEOUT} s: {_tail(log)}"
                raise RedisServerError(msg)
            time.sleep(0.01)
    finally:
        client.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no log written"
    return " | ".join(lines[-5:]) or "empty log"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The ``unix://`` URL of a redis-server started for this test session."""
    executable = shutil.which("redis-server")
    if executable is None:
        reason = "redis-server is not on PATH; install Debian's redis-server package"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so Redis tests must run)")
        pytest.skip(reason)
    with run_redis_server(executable) as url:
        yield url
