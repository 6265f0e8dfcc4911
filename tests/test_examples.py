"""The README's first-run path: ``plughook serve`` with the example config and every example script.

Each script sends a realistic signed request with curl to a real server
process, for each adapter, and the server's console output must show the
Chinese notification a new user is promised.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SECRETS = {"GITHUB_WEBHOOK_SECRET": "dev-github-secret", "PLUGHOOK_API_TOKEN": "dev-api-token"}
# Script → text the console must show for it (the status script answers in JSON only).
EXPECTED = {
    "alert.sh": "🟠 告警 | 错误",
    "github_push.sh": "📦 推送",
    "alertmanager.sh": "告警触发 | Alertmanager",
    "grafana.sh": "| Grafana",
    "upload.sh": "📎 收到文件：sample-report.txt",
    "long_process.sh": "✅ 任务「nightly report」已完成",
}
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "plughook serve exited during start-up"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"plughook serve on port {port} did not become healthy")


@pytest.fixture(params=["aiohttp", "litestar"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Run ``plughook serve --config examples/plughook.toml``; yield its URL and output file."""
    for tool in ("curl", "openssl"):
        assert shutil.which(tool), f"{tool} is needed by the example scripts; install it"
    port = free_port()
    output = tmp_path / "console.txt"
    env = {**os.environ, **SECRETS, "PYTHONUNBUFFERED": "1"}
    with output.open("w") as console:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters",
                "serve",
                "--config",
                str(EXAMPLES / "plughook.toml"),
                "--port",
                str(port),
                "--adapter",
                request.param,
            ],
            cwd=tmp_path,
            env=env,
            stdout=console,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_healthy(port, process)
        yield f"http://127.0.0.1:{port}", output
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run_script(
    name: str, url: str, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SECRETS, "PLUGHOOK_URL": url, **variables}
    return subprocess.run(
        ["bash", str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_for_text(output: Path, text: str, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in output.read_text(encoding="utf-8"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_script_notifies_console(server: tuple[str, Path], script: str) -> None:
    url, output = server
    result = run_script(script, url)
    assert result.returncode == 0, result.stderr
    assert wait_for_text(output, EXPECTED[script]), output.read_text(encoding="utf-8")


def test_github_script_sends_other_event(server: tuple[str, Path]) -> None:
    url, output = server
    payload = ROOT / "tests" / "fixtures" / "github" / "pull_request" / "opened.payload.json"
    result = run_script("github_push.sh", url, str(payload), GITHUB_EVENT="pull_request")
    assert result.returncode == 0, result.stderr
    assert wait_for_text(output, "🔀 PR #2 已创建"), output.read_text(encoding="utf-8")


def test_status_script_answers_running(server: tuple[str, Path]) -> None:
    url, _ = server
    result = run_script("status.sh", url)
    assert result.returncode == 0, result.stderr
    assert '"status":"running"' in result.stdout.replace(" ", "")


def test_readme_curl_alert(server: tuple[str, Path]) -> None:
    url, output = server
    body = '{"service": "api", "level": "critical", "message": "p99 latency above 2 s"}'
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{url}/api/plugin/monitor-alert/webhook/alert",
            "-H",
            "Authorization: Bearer dev-api-token",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert wait_for_text(output, "[console-ops] 🔴 告警 | 严重\n服务：api\n")
