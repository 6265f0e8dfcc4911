"""The ``plughook`` command line, run as a user runs it: ``python -m adapters`` in a subprocess.

The plugin is ``tests/cli_plugin.py``, loaded with ``--plugin tests.cli_plugin``
and ``--no-entry-points``, so these tests do not depend on the bundled plugins
except where the example config is checked against them.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_ARGS = ("--plugin", "tests.cli_plugin", "--no-entry-points")
BUNDLED_PLUGIN_ARGS = (
    "--plugin",
    "plugins.github_notifier",
    "--plugin",
    "plugins.monitor_alert",
    "--plugin",
    "plugins.file_upload",
    "--plugin",
    "plugins.long_process",
    "--plugin",
    "plugins.status",
    "--no-entry-points",
)
# Seconds a command may take; start-up imports take about one.
COMMAND_TIMEOUT = 60
ERROR_PREFIX = "plughook: error: "
# Only servers this test started on loopback are contacted, never through a proxy.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_WEBHOOK_SECRET")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m adapters ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "adapters", *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def write_config(directory: Path, text: str = "", name: str = "plughook.toml") -> Path:
    """Write a config whose data_dir is inside ``directory``, plus ``text``."""
    path = directory / name
    data_dir = (directory / "data").as_posix()
    path.write_text(f'data_dir = "{data_dir}"\nlog_level = "INFO"\n{text}', encoding="utf-8")
    return path


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, Any]:
    """Send one request to a server this test started; return status and JSON body."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with OPENER.open(request, timeout=COMMAND_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Check exit status 2 and a single ``plughook: error:`` line containing ``fragments``."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# Serving.


class ServeProcess:
    """A running ``plughook serve``; stdout is read for the banner, stderr goes to a file."""

    def __init__(
        self, args: Sequence[str], stderr_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adapters", "serve", *args],
            cwd=ROOT,
            env=env or _env(),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def read_banner(self, endpoint_count: int) -> list[str]:
        """Return the banner lines: the address line, ``endpoints:`` and one per endpoint."""
        assert self.process.stdout is not None
        lines = []
        for _ in range(2 + endpoint_count):
            line = self.process.stdout.readline()
            assert line, f"serve exited early:\n{self.stderr()}"
            lines.append(line.rstrip("\n"))
        return lines

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        """Wait until ``text`` appears in the server's stderr."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.stderr()}"
            time.sleep(0.02)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=COMMAND_TIMEOUT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


@contextmanager
def serving(
    args: Sequence[str], stderr_path: Path, env: dict[str, str] | None = None
) -> Iterator[ServeProcess]:
    server = ServeProcess(args, stderr_path, env)
    try:
        yield server
    finally:
        server.close()


def startup_log(
    tmp_path: Path, args: Sequence[str], endpoint_count: int, env: dict[str, str] | None = None
) -> str:
    """Start ``plughook serve ARGS`` on a free port, stop it once started; return its stderr."""
    with serving([*args, "--port", "0"], tmp_path / "stderr.txt", env) as server:
        server.read_banner(endpoint_count=endpoint_count)
        server.wait_for_log("plughook instance")
        server.stop()
        return server.stderr()


def base_url_of(banner: list[str]) -> str:
    """Return the listening address from the first banner line."""
    match = re.search(r" on (http://127\.0\.0\.1:\d+) ", banner[0])
    assert match, banner
    return match.group(1)


def wait_healthy(base_url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http("GET", f"{base_url}/healthz") == (200, {"status": "ok"}):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "server never reported healthy"
        time.sleep(0.05)


@pytest.mark.parametrize("adapter", ["aiohttp", "litestar"])
def test_serve_answers_then_stops_gracefully(adapter: str, tmp_path: Path) -> None:
    # The file names the other adapter and port 1: the flags must win.
    other = "litestar" if adapter == "aiohttp" else "aiohttp"
    config = write_config(
        tmp_path,
        f'[server]\nadapter = "{other}"\nport = 1\n[plugins.cli-test]\nGREETING = "hi there"\n',
    )
    args = ["--config", str(config), "--adapter", adapter, "--port", "0", *PLUGIN_ARGS]

    with serving(args, tmp_path / "stderr.txt") as server:
        banner = server.read_banner(endpoint_count=2)
        assert banner[0].startswith(f"plughook: serving with {adapter} on ")
        base_url = base_url_of(banner)
        echo_url = f"{base_url}/api/plugin/cli-test/webhook/echo"
        assert banner[1] == "endpoints:"
        assert banner[2].split() == ["POST", echo_url, "(cli-test)"]
        wait_healthy(base_url)

        echo = http("POST", echo_url, b"ping")
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            slow_url = f"{base_url}/api/plugin/cli-test/webhook/slow?seconds=1"
            slow = pool.submit(http, "POST", slow_url)
            server.wait_for_log("slow request started")
            status = server.stop(signal.SIGTERM)
            in_flight = slow.result(timeout=COMMAND_TIMEOUT)
        stderr = server.stderr()

    assert echo == (200, {"greeting": "hi there", "body": "ping"})
    assert in_flight == (200, {"slept": 1.0})
    assert status == 0
    assert "received SIGTERM; shutting down" in stderr
    assert (
        "shutting down: no new connections; requests and handlers in flight, background "
        "tasks and chat messages being sent each get up to 10.0 s to finish"
    ) in stderr
    assert "plughook app stopped" in stderr
    assert "Traceback" not in stderr
    assert (tmp_path / "data" / "plughook.sqlite3").exists()


def test_serve_stops_on_sigint(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    args = ["--config", str(config), "--port", "0", *PLUGIN_ARGS]

    with serving(args, tmp_path / "stderr.txt") as server:
        base_url = base_url_of(server.read_banner(endpoint_count=2))
        wait_healthy(base_url)
        status = server.stop(signal.SIGINT)
        stderr = server.stderr()

    assert status == 0
    assert "received SIGINT; shutting down" in stderr
    assert "Traceback" not in stderr


def test_serve_log_line_format(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    args = ["--config", str(config), "--port", "0", *PLUGIN_ARGS]

    with serving(args, tmp_path / "stderr.txt") as server:
        server.read_banner(endpoint_count=2)
        server.stop()
        lines = server.stderr().splitlines()

    started = [line for line in lines if "plughook instance" in line and "started" in line]
    assert len(started) == 1
    pattern = (
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO plughook: "
        r"plughook instance [0-9a-f]{12} started .*"
    )
    assert re.fullmatch(pattern, started[0])


# Endpoint listing.


def test_endpoints_use_public_url(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[server]\npublic_url = "https://bot.example.com/hooks"\n')

    result = run_cli("endpoints", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "POST  https://bot.example.com/hooks/api/plugin/cli-test/webhook/echo  (cli-test)",
        "POST  https://bot.example.com/hooks/api/plugin/cli-test/webhook/guarded  (cli-test)",
        "POST  https://bot.example.com/hooks/api/plugin/cli-test/webhook/slow  (cli-test)",
    ]


def test_endpoints_without_config_use_defaults(tmp_path: Path) -> None:
    result = run_cli("endpoints", *PLUGIN_ARGS, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:8021/api/plugin/cli-test/webhook/echo" in result.stdout


def test_endpoints_read_config_in_working_directory(tmp_path: Path) -> None:
    write_config(tmp_path, '[server]\nhost = "0.0.0.0"\nport = 9000\n')

    result = run_cli("endpoints", *PLUGIN_ARGS, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:9000/api/plugin/cli-test/webhook/echo" in result.stdout


def test_endpoints_take_serve_port(tmp_path: Path) -> None:
    result = run_cli("endpoints", "--port", "8099", *PLUGIN_ARGS, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:8099/api/plugin/cli-test/webhook/echo" in result.stdout


def test_endpoints_leave_out_disabled_plugins(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'disabled_plugins = ["file-upload", "long-process"]\n')

    result = run_cli("endpoints", "--config", str(config), *BUNDLED_PLUGIN_ARGS)

    assert result.returncode == 0, result.stderr
    listed_plugins = {line.rsplit("(", 1)[1].rstrip(")") for line in result.stdout.splitlines()}
    assert listed_plugins == {"github-notifier", "monitor-alert", "status"}


def test_check_config_names_unknown_disabled_plugin(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'disabled_plugins = ["file_upload"]\n')

    result = run_cli("check-config", "--config", str(config), *BUNDLED_PLUGIN_ARGS)

    assert result.returncode == 1
    assert "disabled_plugins[0]: no plugin named 'file_upload' is loaded" in result.stdout
    assert "did you mean 'file-upload'?" in result.stdout


def test_check_config_counts_enabled_plugins(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'disabled_plugins = ["file-upload", "long-process"]\n')

    result = run_cli("check-config", "--config", str(config), *BUNDLED_PLUGIN_ARGS)

    assert result.returncode == 0, result.stdout
    assert result.stdout.endswith("OK, settings and 3 plugin configs are valid\n")


def test_entry_point_plugins_loaded_by_default() -> None:
    names = {entry.name for entry in importlib.metadata.entry_points(group="plughook.plugins")}
    # `pip install -e .` registers the bundled plugins, as the README and CI do.
    assert names, "plughook is not installed: run pip install -e '.[dev]' first"

    result = run_cli("endpoints", "--plugin", "tests.cli_plugin")

    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"\(([^)]+)\)$", result.stdout, flags=re.MULTILINE))
    assert listed == names | {"cli-test"}


# Config checking.


def test_check_config_warns_of_unset_secret(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 0, result.stdout
    assert "endpoint cli-test/guarded returns 503 until plugins.cli-test.TOKEN is set" in (
        result.stderr
    )


STATUS_WARNING = "endpoint status/status returns 503 to POST until plugins.status.API_TOKEN is set"


def test_check_config_warns_of_unset_status_token(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")

    result = run_cli(
        "check-config", "--config", str(config), "--plugin", "plugins.status", "--no-entry-points"
    )

    assert result.returncode == 0, result.stdout
    assert STATUS_WARNING in result.stderr


def test_check_config_quiet_about_set_status_token(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.status]\nAPI_TOKEN = "switch-token"\n')

    result = run_cli(
        "check-config", "--config", str(config), "--plugin", "plugins.status", "--no-entry-points"
    )

    assert result.returncode == 0, result.stdout
    assert "returns 503" not in result.stderr


def test_serve_warns_and_names_unset_status_token(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    args = ["--config", str(config), "--port", "0", "--plugin", "plugins.status"]

    with serving([*args, "--no-entry-points"], tmp_path / "stderr.txt") as server:
        base_url = base_url_of(server.read_banner(endpoint_count=1))
        wait_healthy(base_url)
        url = f"{base_url}/api/plugin/status/webhook/status"
        switch = http("POST", url, b'{"status": "maintenance"}')
        report = http("GET", url)
        server.stop()
        stderr = server.stderr()

    assert STATUS_WARNING in stderr
    assert switch == (503, {"error": "token is not configured: set plugins.status.API_TOKEN"})
    assert report[0] == 200


GITHUB_ARGS = ("--plugin", "plugins.github_notifier", "--no-entry-points")


MAINTENANCE_CONFIG = """
[plugins.github-notifier]
WEBHOOK_SECRET = "maintenance-test-secret"
NOTIFICATION_CHAT = "console-ops"
"""


def post_signed_push(base_url: str) -> int:
    """POST a push signed with the secret of ``MAINTENANCE_CONFIG``; return the status."""
    body = json.dumps({"ref": "refs/heads/main", "commits": []}).encode()
    digest = hmac.new(b"maintenance-test-secret", body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{base_url}/api/plugin/github-notifier/webhook/github",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": f"sha256={digest}",
        },
    )
    try:
        with OPENER.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for_status(base_url: str, expected: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (status := post_signed_push(base_url)) != expected:
        assert time.monotonic() < deadline, f"push answered {status}, not {expected}"
        time.sleep(0.1)


def test_maintenance_command_switches_running_server(tmp_path: Path) -> None:
    config = write_config(tmp_path, MAINTENANCE_CONFIG)
    args = ["--config", str(config), "--port", "0", *GITHUB_ARGS]
    with serving(args, tmp_path / "first.txt") as server:
        base_url = base_url_of(server.read_banner(endpoint_count=1))
        wait_healthy(base_url)
        switched = run_cli("maintenance", "on", "--config", str(config), *GITHUB_ARGS)
        # No webhook request in between: the server re-reads the mode by itself.
        server.wait_for_log("maintenance mode is now on, switched by another process")
        health = http("GET", f"{base_url}/healthz")
        rejected = post_signed_push(base_url)
        server.stop()
    assert switched.stdout == "maintenance mode is on\n"
    assert health == (200, {"status": "ok", "maintenance": True})
    assert rejected == 503


def test_maintenance_command_shows_mode_without_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path, MAINTENANCE_CONFIG)
    args = ["--config", str(config), "--port", "0", *GITHUB_ARGS]
    with serving(args, tmp_path / "first.txt") as server:
        server.read_banner(endpoint_count=1)
        server.stop()
    run_cli("maintenance", "on", "--config", str(config), *GITHUB_ARGS)
    shown_mode = run_cli("maintenance", "--config", str(config), *GITHUB_ARGS)
    assert shown_mode.stdout == "maintenance mode is on\n"
    assert shown_mode.stderr == ""


def test_maintenance_kept_across_restart_is_logged(tmp_path: Path) -> None:
    config = write_config(tmp_path, MAINTENANCE_CONFIG)
    args = ["--config", str(config), "--port", "0", *GITHUB_ARGS]
    with serving(args, tmp_path / "first.txt") as server:
        server.read_banner(endpoint_count=1)
        server.stop()
    run_cli("maintenance", "on", "--config", str(config), *GITHUB_ARGS)
    shown_mode = run_cli("maintenance", "--config", str(config), *GITHUB_ARGS)
    with serving(args, tmp_path / "second.txt") as server:
        base_url = base_url_of(server.read_banner(endpoint_count=1))
        rejected = post_signed_push(base_url)
        switched_off = run_cli("maintenance", "off", "--config", str(config), *GITHUB_ARGS)
        wait_for_status(base_url, 200)
        server.stop()
        stderr = server.stderr()
    assert shown_mode.stdout == "maintenance mode is on\n"
    assert rejected == 503
    assert "maintenance mode is on, as stored before this start" in stderr
    assert switched_off.stdout == "maintenance mode is off\n"


def test_maintenance_command_without_data_names_folder(tmp_path: Path) -> None:
    config = write_config(tmp_path, MAINTENANCE_CONFIG)
    result = run_cli("maintenance", "on", "--config", str(config), *GITHUB_ARGS)
    assert result.returncode == 2
    assert f"no plughook data in {tmp_path / 'data'}" in result.stderr


CHAT_WARNING = (
    "plugin github-notifier sends no chat messages until "
    "plugins.github-notifier.NOTIFICATION_CHAT is set"
)


def test_check_config_warns_of_empty_chat_setting(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.github-notifier]\nWEBHOOK_SECRET = "s"\n')

    result = run_cli("check-config", "--config", str(config), *GITHUB_ARGS)

    assert result.returncode == 0, result.stdout
    assert CHAT_WARNING in result.stderr


def test_check_config_quiet_about_set_chat_setting(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[plugins.github-notifier]\nWEBHOOK_SECRET = "s"\nNOTIFICATION_CHAT = "console-ops"\n',
    )

    result = run_cli("check-config", "--config", str(config), *GITHUB_ARGS)

    assert result.returncode == 0, result.stdout
    assert "sends no chat messages" not in result.stderr


def test_serve_warns_of_empty_chat_setting(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.github-notifier]\nWEBHOOK_SECRET = "s"\n')
    stderr = startup_log(tmp_path, ["--config", str(config), *GITHUB_ARGS], endpoint_count=1)

    assert CHAT_WARNING in stderr


ENV_SETTINGS = """
[plugins.github-notifier]
WEBHOOK_SECRET = "${GITHUB_WEBHOOK_SECRET}"
NOTIFICATION_CHAT = "${PLUGHOOK_TEST_CHAT}"
"""
EMPTY_SECRET_WARNING = (
    "endpoint github-notifier/github returns 503 until plugins.github-notifier.WEBHOOK_SECRET "
    "is set (it reads ${GITHUB_WEBHOOK_SECRET}, which is empty)"
)
EMPTY_CHAT_WARNING = (
    "plugin github-notifier sends no chat messages until plugins.github-notifier."
    "NOTIFICATION_CHAT is set (it reads ${PLUGHOOK_TEST_CHAT}, which is empty)"
)


def test_check_config_no_warning_for_missing_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path, ENV_SETTINGS)
    env = {k: v for k, v in _env().items() if k != "PLUGHOOK_TEST_CHAT"}

    result = run_cli("check-config", "--config", str(config), *GITHUB_ARGS, env=env)

    assert result.returncode == 1, result.stdout
    assert "GITHUB_WEBHOOK_SECRET is not set" in result.stdout
    assert "PLUGHOOK_TEST_CHAT is not set" in result.stdout
    assert "returns 503" not in result.stderr
    assert "sends no chat messages" not in result.stderr


def test_check_config_names_empty_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path, ENV_SETTINGS)
    env = _env(GITHUB_WEBHOOK_SECRET="", PLUGHOOK_TEST_CHAT="")

    result = run_cli("check-config", "--config", str(config), *GITHUB_ARGS, env=env)

    assert result.returncode == 0, result.stdout
    assert EMPTY_SECRET_WARNING in result.stderr
    assert EMPTY_CHAT_WARNING in result.stderr


def test_serve_names_empty_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path, ENV_SETTINGS)
    env = _env(GITHUB_WEBHOOK_SECRET="", PLUGHOOK_TEST_CHAT="")
    args = ["--config", str(config), *GITHUB_ARGS]

    stderr = startup_log(tmp_path, args, endpoint_count=1, env=env)

    assert EMPTY_SECRET_WARNING in stderr
    assert EMPTY_CHAT_WARNING in stderr


BARE_REFERENCE_WARNING = (
    'plugins.cli-test.TOKEN takes "$CLI_TEST_TOKEN" as literal text, not as the environment '
    'variable CLI_TEST_TOKEN; write "${CLI_TEST_TOKEN}" to read the variable'
)


def test_check_config_warns_of_variable_without_braces(tmp_path: Path) -> None:
    text = '[plugins.cli-test]\nTOKEN = "$CLI_TEST_TOKEN"\nGREETING = "$hello"\n'
    config = write_config(tmp_path, text)

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 0, result.stdout
    assert BARE_REFERENCE_WARNING in result.stderr
    assert "$hello" not in result.stderr


def test_check_config_skips_disabled_table_without_braces(tmp_path: Path) -> None:
    text = 'disabled_plugins = ["cli-test"]\n[plugins.cli-test]\nTOKEN = "$CLI_TEST_TOKEN"\n'
    config = write_config(tmp_path, text)

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 0, result.stdout
    assert "CLI_TEST_TOKEN" not in result.stderr


def test_serve_warns_of_variable_without_braces(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.cli-test]\nTOKEN = "$CLI_TEST_TOKEN"\n')
    stderr = startup_log(tmp_path, ["--config", str(config), *PLUGIN_ARGS], endpoint_count=3)

    assert BARE_REFERENCE_WARNING in stderr


def test_check_config_lists_problems_with_keys(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[server]\nadapter = "tornado"\n[plugins.cli-test]\nGREETING = 5\nCOLOUR = "red"\n',
    )

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 1
    assert f"{config}: server.adapter: unknown adapter 'tornado'" in result.stdout
    assert f"{config}: plugins.cli-test.GREETING: expected str, got int" in result.stdout
    assert f"{config}: plugins.cli-test.COLOUR: unknown setting" in result.stdout
    assert result.stdout.splitlines()[-1] == "3 problems found"
    assert "Traceback" not in result.stderr


MIXED_PROBLEMS = """
[server]
port = "8021"
[storage]
backend = "mysql"
[channels.onebot_v11]
api_url = "http://127.0.0.1:9"
[channels.http]
kind = "http"
[plugins.github-notifier]
WEBHOOK_SECRET = "s"
NOTIFICATION_CHAT = "onebotv11-group_1"
BRANCH = "main"
"""


def test_check_config_lists_every_kind_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, MIXED_PROBLEMS)

    result = run_cli("check-config", "--config", str(config), *GITHUB_ARGS)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{config}: server.port: expected int, got str" in lines
    assert any(line.startswith(f"{config}: storage.backend: unknown backend") for line in lines)
    assert any(line.startswith(f"{config}: plugins.github-notifier.BRANCH: ") for line in lines)
    assert any(line.startswith(f"{config}: channels.http.url: ") for line in lines)
    assert (
        f"{config}: plugins.github-notifier.NOTIFICATION_CHAT: chat key 'onebotv11-group_1' "
        "names platform 'onebotv11', which has no [channels.onebotv11] table; "
        "did you mean 'onebot_v11'?"
    ) in lines
    assert lines[-1] == "5 problems found"
    assert "Traceback" not in result.stderr


def test_serve_lists_every_kind_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, MIXED_PROBLEMS)

    result = run_cli("serve", "--config", str(config), "--port", "0", *GITHUB_ARGS)

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert f"{ERROR_PREFIX}{config}: server.port: expected int, got str" in lines
    assert any("NOTIFICATION_CHAT: chat key 'onebotv11-group_1'" in line for line in lines)
    assert len(lines) == 5, result.stderr


CHANNEL_FROM_UNSET_VARIABLE = """
default_channel = "ops"
[channels.ops]
kind = "http"
url = "${PLUGHOOK_TEST_URL}"
[plugins.github-notifier]
WEBHOOK_SECRET = "s"
NOTIFICATION_CHAT = "ops-alerts"
"""


def test_check_config_leaves_out_knock_on_problems(tmp_path: Path) -> None:
    config = write_config(tmp_path, CHANNEL_FROM_UNSET_VARIABLE)
    env = {k: v for k, v in _env().items() if k != "PLUGHOOK_TEST_URL"}

    result = run_cli("check-config", "--config", str(config), *GITHUB_ARGS, env=env)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{config}: channels.ops.url: environment variable PLUGHOOK_TEST_URL is not set",
        "1 problem found",
    ]
    assert "no [channels.ops] table" not in result.stderr


def test_check_config_names_missing_channel_url(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[channels.http]\nkind = "http"\n')

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{config}: channels.http.url: required setting is missing",
        "1 problem found",
    ]


def test_check_config_suggests_names_for_typos(tmp_path: Path) -> None:
    text = '[plugins.github-notifier]\nBRANCH = "main"\n[plugin.status]\nAPI_TOKEN = "t"\n'
    config = write_config(tmp_path, text)

    result = run_cli("check-config", "--config", str(config), *GITHUB_ARGS)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{config}: plugin: unknown setting; did you mean 'plugins'?" in lines
    assert (
        f"{config}: plugins.github-notifier.BRANCH: unknown setting; did you mean 'BRANCHES'?"
    ) in lines


def test_check_config_names_place_of_misplaced_settings(tmp_path: Path) -> None:
    text = 'port = 8021\n[server]\nhost = "127.0.0.1"\ndisabled_plugins = ["cli-test"]\n'
    config = write_config(tmp_path, text)

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        f"{config}: port: unknown setting; port is a setting of the [server] table, so put it "
        "under [server]"
    ) in lines
    assert (
        f"{config}: server.disabled_plugins: unknown setting; disabled_plugins is a top-level "
        "setting, so put it at the top of the file, before the first table"
    ) in lines
    assert lines[-1] == "2 problems found"


def test_check_config_suggests_channel_kind(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[channels.onebot]\napi_url = "http://127.0.0.1:9"\n')

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 1
    [line, count] = result.stdout.splitlines()
    assert line.startswith(
        f"{config}: channels.onebot.kind: unknown channel kind 'onebot'; did you mean 'onebot_v11'?"
    )
    assert 'add kind = "onebot_v11"' in line
    assert count == "1 problem found"


def test_check_config_ok(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.cli-test]\nGREETING = "hey"\n')

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == [f"{config}: OK, settings and 1 plugin configs are valid"]


def test_check_config_missing_env_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.cli-test]\nTOKEN = "${CLI_TEST_TOKEN}"\n')

    result = run_cli("check-config", "--config", str(config), *PLUGIN_ARGS)

    assert result.returncode == 1
    assert (
        f"{config}: plugins.cli-test.TOKEN: environment variable CLI_TEST_TOKEN is not set"
        in result.stdout
    )


def test_example_config_valid_for_bundled_plugins() -> None:
    env = _env(GITHUB_WEBHOOK_SECRET="example-secret")

    result = run_cli(
        "check-config", "--config", "plughook.example.toml", *BUNDLED_PLUGIN_ARGS, env=env
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 plugin configs are valid" in result.stdout


def test_example_config_needs_github_secret() -> None:
    result = run_cli("check-config", "--config", "plughook.example.toml", *BUNDLED_PLUGIN_ARGS)

    assert result.returncode == 1
    assert (
        "plugins.github-notifier.WEBHOOK_SECRET: environment variable GITHUB_WEBHOOK_SECRET "
        "is not set" in result.stdout
    )


def test_version_prints_installed_version() -> None:
    result = run_cli("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"plughook {importlib.metadata.version('plughook')}\n"


def test_help_lists_version_option() -> None:
    result = run_cli("--help")

    assert result.returncode == 0, result.stderr
    assert "--version" in result.stdout
    assert "print the installed plughook version and exit" in result.stdout


def test_version_without_installed_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    # A source checkout that pip never installed has no metadata to read.
    monkeypatch.setattr(importlib.metadata, "version", not_installed)

    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == (
        "plughook: version unknown, because the plughook package is not installed\n"
    )


# Errors: one line, status 2, no traceback.


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"

    result = run_cli("serve", "--config", str(missing), *PLUGIN_ARGS)

    assert_one_error_line(result, f"config file '{missing}' not found", "--config")


def test_malformed_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server\nport = 1\n")

    result = run_cli("endpoints", "--config", str(config), *PLUGIN_ARGS)

    assert_one_error_line(result, f"config file '{config}' is not valid TOML", "line 3")


def test_unknown_adapter_flag(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    result = run_cli("serve", "--config", str(config), "--adapter", "tornado", *PLUGIN_ARGS)

    assert_one_error_line(result, "--adapter", "'tornado'", "aiohttp, litestar")


def test_unknown_adapter_in_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[server]\nadapter = "tornado"\n')

    result = run_cli("serve", "--config", str(config), *PLUGIN_ARGS)

    assert_one_error_line(result, "server.adapter", "'tornado'", "aiohttp, litestar")


def test_plugin_module_import_fails(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    result = run_cli(
        "serve", "--config", str(config), "--plugin", "tests.no_such_plugin", "--no-entry-points"
    )

    assert_one_error_line(result, "'tests.no_such_plugin'", "ModuleNotFoundError", "--plugin")


def test_plugin_module_without_plugin(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    result = run_cli(
        "endpoints", "--config", str(config), "--plugin", "tests.servers", "--no-entry-points"
    )

    assert_one_error_line(result, "'tests.servers'", "'plugin'")


def test_port_out_of_range(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    result = run_cli("serve", "--config", str(config), "--port", "70000", *PLUGIN_ARGS)

    assert_one_error_line(result, "--port", "70000", "0-65535")


def test_busy_port(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]

        result = run_cli("serve", "--config", str(config), "--port", str(port), *PLUGIN_ARGS)

    assert_one_error_line(result, f"127.0.0.1:{port}", "in use", "--port")


def test_debug_shows_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    result = run_cli(
        "serve",
        "--config",
        str(config),
        "--plugin",
        "tests.no_such_plugin",
        "--no-entry-points",
        "--debug",
    )

    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(ERROR_PREFIX)
