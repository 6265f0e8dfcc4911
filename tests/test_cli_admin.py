"""The delivery-log, outbox and channel commands, run as real subprocesses."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import termios
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import wcwidth

from adapters.commands import short_local_time
from adapters.commands.deliveries import format_body, format_table
from adapters.commands.outbox import format_messages
from core import Settings, WebhookApp
from core.records import DeliveryRecord, OutboxMessage
from core.settings import ServerSettings, StorageSettings
from core.sqlite import SQLiteStorage
from tests.records import delivery_record
from tests.standins import ScriptedResponse
from tests.standins.onebot import OneBotStandIn

pytest_plugins = ["tests.redis_server"]
pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_ARGS = ("--plugin", "tests.cli_plugin", "--no-entry-points")
ERROR_PREFIX = "plughook: error: "
# Seconds the OneBot stand-in waits before it responds to the send that the
# commands look at. The app stops with a short grace period instead of waiting
# for the response.
HELD_SEND = 20.0


def write_config(folder: Path, text: str = "") -> Path:
    config = folder / "plughook.toml"
    config.write_text(f'data_dir = "{(folder / "data").as_posix()}"\nlog_level = "WARNING"\n{text}')
    return config


async def plughook(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m adapters ARGS`` without blocking the test's event loop."""
    completed = await anyio.run_process(
        [sys.executable, "-m", "adapters", *args], cwd=ROOT, check=False
    )
    return subprocess.CompletedProcess(
        completed.args, completed.returncode, completed.stdout.decode(), completed.stderr.decode()
    )


async def record_echo_delivery(
    folder: Path, body: bytes = b"first run", path: str = "/echo", content_type: str = ""
) -> str:
    """Send one request to the CLI test plugin in-process; return its delivery-record id."""
    from core import WebhookRequest
    from tests.cli_plugin import plugin

    app = WebhookApp([plugin], data_dir=folder / "data")
    async with app.running():
        request = WebhookRequest(
            "POST",
            "cli-test",
            path,
            body=body,
            headers={
                "Authorization": "Bearer hidden-token",
                "X-GitHub-Delivery": "gh-1",
                **({"Content-Type": content_type} if content_type else {}),
            },
        )
        await app.handle(request)
        await app.writer.flush()
        newest, *_ = await app.storage.deliveries_list(None, None, 10)
    return newest.id


async def add_messages(folder: Path, *messages: OutboxMessage) -> None:
    storage = SQLiteStorage(folder / "data" / "plughook.sqlite3")
    await storage.open()
    for message in messages:
        await storage.outbox_add(message)
    await storage.close()


async def test_deliveries_list_shows_record(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    result = await plughook("deliveries", "list", "--config", str(config), "--plugin", "cli-test")
    assert result.returncode == 0, result.stderr
    assert record_id in result.stdout
    assert "cli-test/echo" in result.stdout


def run_in_terminal(args: list[str], columns: int) -> tuple[int, str]:
    """Run ``python -m adapters ARGS`` with its output on a terminal ``columns`` wide.

    Returns the exit status and the output (stdout and stderr), read from a
    pseudo-terminal whose window size is set as a terminal emulator sets it.
    """
    leader, follower = pty.openpty()
    termios.tcsetwinsize(follower, (24, columns))
    # COLUMNS would take precedence over the window size.
    env = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters", *args],
        cwd=ROOT,
        env=env,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            # Linux raises EIO once the command has exited and closed the terminal.
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    status = process.wait(timeout=60)
    # The terminal turns each newline into a carriage return and a newline.
    return status, b"".join(chunks).decode().replace("\r\n", "\n")


async def test_deliveries_list_fits_80_column_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path, path="/guarded")
    args = ["deliveries", "list", "--config", str(config)]
    status, output = await anyio.to_thread.run_sync(run_in_terminal, args, 80)
    lines = output.splitlines()
    assert status == 0, output
    assert max(wcwidth.width(line) for line in lines) <= 80
    assert lines[1].startswith(f"{record_id}  ")
    assert lines[1].endswith("  cli-test/guarded")
    assert lines[2] == "    delivery gh-1"


async def test_deliveries_show_summary_fits_80_column_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path, path="/guarded")
    args = ["deliveries", "show", record_id, "--config", str(config)]
    status, output = await anyio.to_thread.run_sync(run_in_terminal, args, 80)
    header, row, *_ = output.splitlines()
    assert status == 0, output
    assert wcwidth.width(header) <= 80
    assert wcwidth.width(row) <= 80


async def test_deliveries_list_filters_by_status(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await record_echo_delivery(tmp_path)
    result = await plughook(
        "deliveries", "list", "--config", str(config), "--status", "5xx", "--plugin", "cli-test"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no deliveries recorded for plugin 'cli-test' with status 5xx"


async def test_deliveries_list_unknown_plugin_names_known(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await record_echo_delivery(tmp_path)
    result = await plughook("deliveries", "list", "--config", str(config), "--plugin", "cli-tset")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "no deliveries recorded for plugin 'cli-tset'; plugins with recent deliveries: cli-test"
    )


async def test_deliveries_list_module_as_plugin_gets_hint(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await record_echo_delivery(tmp_path)
    result = await plughook(
        "deliveries", "list", "--config", str(config), "--plugin", "tests.cli_plugin"
    )
    assert result.returncode == 0, result.stderr
    assert "(--plugin takes a plugin name here, not a module)" in result.stdout


async def test_deliveries_show_redacts_token(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    result = await plughook("deliveries", "show", record_id, "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 0, result.stderr
    assert "Authorization: [redacted]" in result.stdout
    assert "hidden-token" not in result.stdout
    assert "first run" in result.stdout


LONG_BODY = b'{"lines": [' + b", ".join(b'"line %d"' % n for n in range(1000)) + b"]}"


async def show_long_body(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Record a delivery with ``LONG_BODY`` and run ``deliveries show`` on it with ``options``."""
    config = write_config(folder)
    record_id = await record_echo_delivery(folder, LONG_BODY)
    return await plughook(
        "deliveries", "show", record_id, *options, "--config", str(config), *PLUGIN_ARGS
    )


async def test_deliveries_show_cuts_a_long_body(tmp_path: Path) -> None:
    result = await show_long_body(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "more characters; --full prints all)" in result.stdout
    assert '"line 999"' not in result.stdout


async def test_deliveries_show_full_prints_whole_body(tmp_path: Path) -> None:
    result = await show_long_body(tmp_path, "--full")
    assert result.returncode == 0, result.stderr
    assert '"line 999"' in result.stdout
    assert "more characters" not in result.stdout


async def test_deliveries_show_body_writes_exact_bytes(tmp_path: Path) -> None:
    result = await show_long_body(tmp_path, "--body")
    assert result.returncode == 0, result.stderr
    assert result.stdout.encode() == LONG_BODY


async def test_deliveries_replay_records_new_attempt(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    result = await plughook(
        "deliveries", "replay", record_id, "--config", str(config), *PLUGIN_ARGS
    )
    listing = await plughook("deliveries", "list", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"replayed {record_id}: status 200" in result.stdout
    assert f"replay of {record_id}" in listing.stdout


async def listed_replay_id(config: Path, record_id: str) -> str:
    """Return the id of the one record that `deliveries list` shows as a replay of ``record_id``."""
    listing = await plughook("deliveries", "list", "--config", str(config))
    [replay_row] = [
        line for line in listing.stdout.splitlines() if f"replay of {record_id}" in line
    ]
    return replay_row.split()[0]


async def test_deliveries_replay_twice_needs_again(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    replay = ("deliveries", "replay", record_id, "--config", str(config), *PLUGIN_ARGS)
    first = await plughook(*replay)
    second = await plughook(*replay)
    forced = await plughook(*replay, "--again")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 5
    assert f"delivery record {record_id!r} was replayed before, as " in second.stderr
    assert second.stderr.rstrip().endswith(
        f"plughook deliveries replay {record_id} --again --config {config} "
        "--plugin tests.cli_plugin --no-entry-points"
    )
    assert forced.returncode == 0, forced.stderr


async def test_deliveries_replay_of_replay_needs_again(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    common = ("--config", str(config), *PLUGIN_ARGS)
    await plughook("deliveries", "replay", record_id, *common)
    replay_id = await listed_replay_id(config, record_id)
    result = await plughook("deliveries", "replay", replay_id, *common)
    assert result.returncode == 5
    assert f"delivery record {replay_id!r} is a replay of {record_id!r}" in result.stderr


async def test_deliveries_list_marks_replayed_under_status_filter(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    # The guarded endpoint's token is not configured, so the request was rejected (503).
    record_id = await record_echo_delivery(tmp_path, path="/guarded")
    await replay_unverified(config, record_id)
    listing = await plughook("deliveries", "list", "--status", "5xx", "--config", str(config))
    [row] = [line for line in listing.stdout.splitlines() if line.startswith(record_id)]
    assert "503 (replayed)" in row


async def test_deliveries_show_names_replays(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    await plughook("deliveries", "replay", record_id, "--config", str(config), *PLUGIN_ARGS)
    replay_id = await listed_replay_id(config, record_id)
    show_result = await plughook("deliveries", "show", record_id, "--config", str(config))
    assert f"replayed as: {replay_id}" in show_result.stdout.splitlines()


async def replay_unverified(config: Path, record_id: str) -> subprocess.CompletedProcess[str]:
    return await plughook(
        "deliveries",
        "replay",
        record_id,
        "--allow-unverified",
        "--config",
        str(config),
        *PLUGIN_ARGS,
    )


async def test_deliveries_replay_rejected_is_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    # The guarded endpoint's token is not configured, so the request was rejected (503).
    record_id = await record_echo_delivery(tmp_path, path="/guarded")
    result = await plughook(
        "deliveries", "replay", record_id, "--config", str(config), *PLUGIN_ARGS
    )
    listing = await plughook("deliveries", "list", "--config", str(config))
    assert result.returncode == 4
    assert "did not pass its endpoint's verification (answered 503)" in result.stderr
    suggested = (
        f"plughook deliveries replay {record_id} --allow-unverified --config {config} "
        "--plugin tests.cli_plugin --no-entry-points"
    )
    assert result.stderr.rstrip().endswith(suggested)
    assert "replay of" not in listing.stdout


async def test_deliveries_replay_unverified_when_allowed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path, b"trusted", path="/guarded")
    result = await replay_unverified(config, record_id)
    assert result.returncode == 0, result.stderr
    assert f"replayed {record_id}: status 200" in result.stdout
    assert '"body": "trusted"' in result.stdout


async def test_deliveries_show_replay_verification(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path, path="/guarded")
    await replay_unverified(config, record_id)
    storage = SQLiteStorage(tmp_path / "data" / "plughook.sqlite3")
    await storage.open()
    [replay] = [r for r in await storage.deliveries_list(None, None, 10) if r.replay_of]
    await storage.close()
    result = await plughook("deliveries", "show", replay.id, "--config", str(config))
    assert result.returncode == 0, result.stderr
    expected = f"not passed (replay needs --allow-unverified), in the original delivery {record_id}"
    assert expected in result.stdout


async def test_deliveries_show_failed_verification(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path, path="/guarded")
    result = await plughook("deliveries", "show", record_id, "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "verification: not passed (replay needs --allow-unverified)" in result.stdout


STATUS_TOKEN = "status-cli-token"
STATUS_CONFIG = f'[plugins.status]\nAPI_TOKEN = "{STATUS_TOKEN}"\n'


async def record_status_switch(folder: Path, token: str) -> str:
    """Switch the bundled status plugin to maintenance with ``token``; return the record id."""
    from core import WebhookRequest
    from plugins.status import plugin

    app = WebhookApp([plugin], {"status": {"API_TOKEN": STATUS_TOKEN}}, data_dir=folder / "data")
    async with app.running():
        request = WebhookRequest(
            "POST",
            "status",
            "/status",
            body=b'{"status": "maintenance"}',
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        await app.handle(request)
        await app.writer.flush()
        [record] = await app.storage.deliveries_list(None, None, 10)
    return record.id


async def test_deliveries_replay_of_accepted_status_switch(tmp_path: Path) -> None:
    config = write_config(tmp_path, STATUS_CONFIG)
    record_id = await record_status_switch(tmp_path, STATUS_TOKEN)
    result = await plughook("deliveries", "replay", record_id, "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"replayed {record_id}: status 200" in result.stdout
    assert '"status": "maintenance"' in result.stdout


async def test_deliveries_replay_of_rejected_status_switch_is_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, STATUS_CONFIG)
    record_id = await record_status_switch(tmp_path, "not-the-token")
    result = await plughook("deliveries", "replay", record_id, "--config", str(config))
    assert result.returncode == 4
    assert "did not pass its endpoint's verification (answered 401)" in result.stderr


async def test_deliveries_replay_without_verifier_secret(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, '[plugins.status]\nAPI_TOKEN = "${PLUGHOOK_UNSET_STATUS_TOKEN}"\n'
    )
    record_id = await record_status_switch(tmp_path, STATUS_TOKEN)
    result = await plughook("deliveries", "replay", record_id, "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"replayed {record_id}: status 200" in result.stdout
    assert (
        "plugins.status.API_TOKEN is empty because ${PLUGHOOK_UNSET_STATUS_TOKEN} is not set; "
        "this command skips verification, which needs it"
    ) in result.stderr


async def test_deliveries_replay_needs_other_plugin_settings(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.cli-test]\nGREETING = "${PLUGHOOK_UNSET_GREETING}"\n')
    record_id = await record_echo_delivery(tmp_path)
    result = await plughook(
        "deliveries", "replay", record_id, "--config", str(config), *PLUGIN_ARGS
    )
    assert result.returncode == 2
    assert (
        "plugins.cli-test.GREETING: environment variable PLUGHOOK_UNSET_GREETING is not set"
        in result.stderr
    )


async def test_deliveries_replay_unknown_id_exits_3(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await record_echo_delivery(tmp_path)
    result = await plughook("deliveries", "replay", "nope", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 3
    assert (
        result.stderr
        == f"{ERROR_PREFIX}no delivery record 'nope'; see `plughook deliveries list`\n"
    )


async def test_deliveries_replay_help_lists_exit_statuses() -> None:
    result = await plughook("deliveries", "replay", "--help")
    text = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stderr
    assert "3 when no record has the given id" in text
    assert "4 when the record did not pass verification" in text
    assert "5 when it was replayed before or is itself a replay and --again was not given" in text


async def test_deliveries_replay_without_plugin_module_is_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    result = await plughook("deliveries", "replay", record_id, "--config", str(config))
    assert result.returncode == 2
    assert "which no loaded plugin serves" in result.stderr
    assert "--plugin MODULE" in result.stderr


async def test_deliveries_show_unknown_id_is_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await record_echo_delivery(tmp_path)
    result = await plughook("deliveries", "show", "nope", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 3
    assert result.stderr.startswith(ERROR_PREFIX + "no delivery record 'nope'")
    assert "Traceback" not in result.stderr


async def test_outbox_list_retry_and_purge(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    old = time.time() - 10 * 86400
    dead = OutboxMessage(
        "dead-1",
        "console-ops",
        "failed twice",
        old,
        state="dead",
        attempts=12,
        last_error="HTTP 500",
        possible_duplicates=2,
    )
    stale = OutboxMessage("dead-2", "console-ops", "very old", old, state="dead")
    pending = OutboxMessage("pending-1", "console-ops", "waiting", time.time())
    await add_messages(tmp_path, dead, stale, pending)
    common = ("--config", str(config), *PLUGIN_ARGS)

    listed = await plughook("outbox", "list", "--state", "dead", *common)
    retried = await plughook("outbox", "retry", "dead-1", *common)
    purged = await plughook("outbox", "purge", "--dead", "--older-than", "7d", *common)
    remaining = await plughook("outbox", "list", *common)

    assert "dead-1" in listed.stdout
    assert "last error: HTTP 500" in listed.stdout
    assert "possible duplicates: 2 (attempts that may have reached the chat)" in listed.stdout
    assert "pending-1" not in listed.stdout
    assert retried.stdout.strip() == "1 dead message moved back to pending"
    assert purged.stdout.strip() == "1 dead message deleted"
    assert "dead-2" not in remaining.stdout
    assert re.search(r"^dead-1 +pending ", remaining.stdout, re.MULTILINE)


async def test_outbox_retry_unknown_id_exits_3(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_messages(tmp_path)
    result = await plughook("outbox", "retry", "missing", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 3
    assert "no dead message 'missing'" in result.stderr


async def test_outbox_retry_of_ambiguous_pending_prefix(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = OutboxMessage("3c3c0000000000000000", "console-ops", "one", time.time())
    second = OutboxMessage("3c3c1111111111111111", "console-ops", "two", time.time())
    await add_messages(tmp_path, first, second)
    result = await plughook("outbox", "retry", "3c3c", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 2
    assert "2 pending messages have ids starting with '3c3c'" in result.stderr


@pytest.mark.parametrize("action", ["show", "retry"])
async def test_outbox_help_lists_exit_statuses(action: str) -> None:
    result = await plughook("outbox", action, "--help")
    text = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stderr
    assert "Exit status 3 when no message has the given id" in text
    assert "2 when several messages have ids starting with it" in text


async def test_outbox_retry_takes_id_prefix(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = OutboxMessage("0a1b2c3d4e5f60718293", "console-ops", "one", 1.0, state="dead")
    second = OutboxMessage("0a1b9999999999999999", "console-ops", "two", 2.0, state="dead")
    await add_messages(tmp_path, first, second)
    common = ("--config", str(config), *PLUGIN_ARGS)
    ambiguous = await plughook("outbox", "retry", "0a1b", *common)
    retried = await plughook("outbox", "retry", "0a1b2c", *common)
    pending = await plughook("outbox", "list", "--state", "pending", *common)
    assert ambiguous.returncode == 2
    assert "2 dead messages have ids starting with '0a1b'" in ambiguous.stderr
    assert retried.stdout.strip() == "1 dead message moved back to pending"
    assert "0a1b2c3d4e5f " in pending.stdout
    assert "0a1b99999999" not in pending.stdout


async def test_outbox_retry_of_pending_message_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    waiting = OutboxMessage("5e5e5e5e5e5e5e5e", "console-ops", "queued", time.time())
    waiting.next_attempt_at = time.time() + 30
    await add_messages(tmp_path, waiting)
    result = await plughook("outbox", "retry", "5e5e", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 2
    assert "message 5e5e5e5e5e5e is pending, not dead" in result.stderr
    assert re.search(r"next attempt: in (29|30) s\)", result.stderr)


async def test_outbox_retry_of_queued_message_says_after_earlier(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    head = OutboxMessage("1a1a1a1a1a1a1a1a", "console-ops", "first", time.time())
    queued = OutboxMessage("2b2b2b2b2b2b2b2b", "console-ops", "second", time.time())
    await add_messages(tmp_path, head, queued)
    result = await plughook("outbox", "retry", "2b2b", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 2
    assert "(next attempt: after earlier)" in result.stderr


async def test_outbox_purge_counts_kept_newer_messages(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    recent = [
        OutboxMessage(f"dead-{n}", "console-ops", "recent", time.time(), state="dead")
        for n in range(3)
    ]
    await add_messages(tmp_path, *recent)
    result = await plughook("outbox", "purge", "--dead", "--config", str(config), *PLUGIN_ARGS)
    assert result.stdout.strip() == (
        "0 dead messages deleted; 3 created within the last 7d kept "
        "(--older-than sets the age, such as 1h)"
    )


async def test_outbox_list_says_when_limit_hides_messages(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_messages(
        tmp_path, *(OutboxMessage(f"m-{n}", "console-ops", "x", 1.0 + n) for n in range(5))
    )
    common = ("--config", str(config), *PLUGIN_ARGS)
    limited = await plughook("outbox", "list", "--limit", "2", *common)
    everything = await plughook("outbox", "list", *common)
    assert limited.stdout.splitlines()[-1] == "showing 2 of 5 messages; --limit N shows more"
    assert "showing" not in everything.stdout


async def test_outbox_show_prints_whole_message(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = "📦 推送\n仓库：example/app\n" + "提交说明 " * 30 + "\x1b[2J"
    message = OutboxMessage(
        "7c7c7c7c7c7c7c7c", "console-ops", text, 1.0, plugin="github-notifier", state="dead"
    )
    message.last_error = "HTTP 502 from the gateway"
    await add_messages(tmp_path, message)
    result = await plughook("outbox", "show", "7c7c", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "message: 7c7c7c7c7c7c7c7c",
        "state: dead",
        "chat: console-ops",
        "plugin: github-notifier",
    ]
    assert "last error: HTTP 502 from the gateway" in lines
    assert lines[-3:] == ["  📦 推送", "  仓库：example/app", "  " + "提交说明 " * 30 + "\\x1b[2J"]


@asynccontextmanager
async def message_in_flight(
    folder: Path, storage: StorageSettings | None = None
) -> AsyncIterator[str]:
    """Run an app whose send of one message waits at a OneBot stand-in; yield the message id."""
    async with OneBotStandIn(token="cli-token") as standin:
        standin.script.append(ScriptedResponse(delay=HELD_SEND))
        channel: dict[str, Any] = {
            "kind": "onebot_v11",
            "api_url": standin.url,
            "access_token": "cli-token",
            "timeout": HELD_SEND + 10,
        }
        settings = Settings(
            storage=storage or StorageSettings(),
            channels={"onebot_v11": channel},
            server=ServerSettings(grace_period=0.1),
        )
        app = WebhookApp([], data_dir=folder / "data", settings=settings)
        async with app.running():
            assert app.outbox is not None
            [message_id] = await app.outbox.put("onebot_v11-group_42", "deploy finished")
            with anyio.fail_after(10):
                while standin.request_count < 1:
                    await anyio.sleep(0.01)
            yield message_id


def listed_row(
    stdout: str, message_id: str, columns: tuple[str, ...] = ("STATE", "NEXT ATTEMPT")
) -> dict[str, str]:
    """Return the ``columns`` cells of ``message_id`` in `outbox list` output."""
    header, *rows = stdout.splitlines()
    [row] = [line for line in rows if line.startswith(message_id[:12])]
    cells = {}
    for column in columns:
        start = header.index(column)
        cells[column] = row[start:].split("  ")[0]
    return cells


async def test_outbox_commands_mark_message_being_sent(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    common = ("--config", str(config), *PLUGIN_ARGS)
    async with message_in_flight(tmp_path) as message_id:
        listed = await plughook("outbox", "list", *common)
        shown = await plughook("outbox", "show", message_id[:12], *common)
        retried = await plughook("outbox", "retry", message_id[:12], *common)
    assert listed.returncode == 0, listed.stderr
    assert listed_row(listed.stdout, message_id) == {"STATE": "sending", "NEXT ATTEMPT": "-"}
    assert shown.stdout.splitlines()[1] == "state: sending"
    assert "next attempt:" not in shown.stdout
    assert retried.returncode == 2
    assert f"message {message_id[:12]} is being sent now, not dead" in retried.stderr


async def test_outbox_list_on_redis_marks_sending(tmp_path: Path, redis_url: str) -> None:
    namespace = f"cli-{time.monotonic_ns()}"
    config = write_config(
        tmp_path, f'[storage]\nbackend = "redis"\nurl = "{redis_url}"\nnamespace = "{namespace}"\n'
    )
    common = ("--config", str(config), *PLUGIN_ARGS)
    storage = StorageSettings(backend="redis", url=redis_url, namespace=namespace)
    async with message_in_flight(tmp_path, storage) as message_id:
        listed = await plughook("outbox", "list", *common)
        shown = await plughook("outbox", "show", message_id[:12], *common)
    assert listed.returncode == 0, listed.stderr
    assert listed_row(listed.stdout, message_id) == {"STATE": "sending", "NEXT ATTEMPT": "-"}
    assert shown.stdout.splitlines()[1] == "state: sending"


async def list_after_cut_off_send(
    folder: Path, config: Path, storage: StorageSettings | None = None
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Stop an app while its send waits; return the message id and `outbox list` after it."""
    async with message_in_flight(folder, storage) as message_id:
        pass
    listed = await plughook("outbox", "list", "--config", str(config), *PLUGIN_ARGS)
    return message_id, listed


async def test_outbox_list_counts_cut_off_send(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    message_id, listed = await list_after_cut_off_send(tmp_path, config)
    assert listed.returncode == 0, listed.stderr
    assert listed_row(listed.stdout, message_id, ("STATE", "ATTEMPTS")) == {
        "STATE": "pending",
        "ATTEMPTS": "1",
    }
    assert "possible duplicates: 1 (attempts that may have reached the chat)" in listed.stdout


async def test_outbox_list_on_redis_counts_cut_off_send(tmp_path: Path, redis_url: str) -> None:
    namespace = f"cli-{time.monotonic_ns()}"
    config = write_config(
        tmp_path, f'[storage]\nbackend = "redis"\nurl = "{redis_url}"\nnamespace = "{namespace}"\n'
    )
    storage = StorageSettings(backend="redis", url=redis_url, namespace=namespace)
    message_id, listed = await list_after_cut_off_send(tmp_path, config, storage)
    assert listed.returncode == 0, listed.stderr
    assert listed_row(listed.stdout, message_id, ("STATE", "ATTEMPTS")) == {
        "STATE": "pending",
        "ATTEMPTS": "1",
    }
    assert "possible duplicates: 1 (attempts that may have reached the chat)" in listed.stdout


async def test_outbox_list_after_failed_send_is_pending(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with OneBotStandIn(token="cli-token") as standin:
        standin.script.append(ScriptedResponse(http_status=429, headers={"Retry-After": "600"}))
        channel = {"kind": "onebot_v11", "api_url": standin.url, "access_token": "cli-token"}
        app = WebhookApp(
            [], data_dir=tmp_path / "data", settings=Settings(channels={"onebot_v11": channel})
        )
        async with app.running():
            assert app.outbox is not None
            [message_id] = await app.outbox.put("onebot_v11-group_42", "rate limited")
            with anyio.fail_after(10):
                while app.outbox.retried < 1:
                    await anyio.sleep(0.01)
            listed = await plughook("outbox", "list", "--config", str(config), *PLUGIN_ARGS)
    assert listed.returncode == 0, listed.stderr
    cells = listed_row(listed.stdout, message_id)
    assert cells == {"STATE": "pending", "NEXT ATTEMPT": "in 10 min"}


async def test_outbox_list_help_describes_table() -> None:
    result = await plughook("outbox", "list", "--help")
    text = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stderr
    assert "List queued messages in queue order, one line each" in text
    assert "the CREATED heading names the UTC offset" in text
    assert "each text goes on a line below its row" in text


async def test_outbox_show_unknown_id_exits_3(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_messages(tmp_path)
    result = await plughook("outbox", "show", "nope", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 3
    assert "no message 'nope' in the outbox" in result.stderr


async def test_outbox_show_ambiguous_prefix_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = OutboxMessage("4d4d0000000000000000", "console-ops", "one", 1.0)
    second = OutboxMessage("4d4d1111111111111111", "console-ops", "two", 2.0, state="dead")
    await add_messages(tmp_path, first, second)
    result = await plughook("outbox", "show", "4d4d", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 2
    assert "2 messages have ids starting with '4d4d'" in result.stderr


async def test_outbox_ambiguous_prefix_lists_matches(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    long_text = "disk usage above 90 percent on every database host"
    messages = [
        OutboxMessage(f"c{index}c{index}0000000000000000", "console-ops", long_text, float(index))
        for index in range(7)
    ]
    messages[0].state = "dead"
    await add_messages(tmp_path, *messages)
    result = await plughook("outbox", "show", "c", "--config", str(config), *PLUGIN_ARGS)
    lines = result.stderr.splitlines()
    assert result.returncode == 2
    assert lines[0] == (
        f"{ERROR_PREFIX}7 messages have ids starting with 'c'; give more characters of the id:"
    )
    assert (
        lines[1] == f"{ERROR_PREFIX}  c0c000000000  dead     console-ops  disk usage above 90 per…"
    )
    assert (
        lines[2] == f"{ERROR_PREFIX}  c1c100000000  pending  console-ops  disk usage above 90 per…"
    )
    assert lines[-1] == f"{ERROR_PREFIX}  and 2 more"
    assert len(lines) == 7


async def test_outbox_ambiguous_prefix_shows_distinct_ids(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = OutboxMessage("7e7e7e7e7e7e7e7e0000", "console-ops", "one", 1.0, state="dead")
    second = OutboxMessage("7e7e7e7e7e7e7e7e1111", "console-ops", "two", 2.0, state="dead")
    await add_messages(tmp_path, first, second)
    result = await plughook("outbox", "retry", "7e7e", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 2
    assert f"{ERROR_PREFIX}  7e7e7e7e7e7e7e7e0  dead  console-ops  one" in result.stderr
    assert f"{ERROR_PREFIX}  7e7e7e7e7e7e7e7e1  dead  console-ops  two" in result.stderr


async def test_outbox_purge_rejects_bad_age(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = await plughook(
        "outbox", "purge", "--dead", "--older-than", "week", "--config", str(config)
    )
    assert result.returncode == 2
    assert "invalid age 'week'" in result.stderr


async def test_channels_test_delivers_to_onebot(tmp_path: Path) -> None:
    async with OneBotStandIn(token="cli-token") as standin:
        config = write_config(
            tmp_path,
            f'[channels.onebot_v11]\napi_url = "{standin.url}"\naccess_token = "cli-token"\n',
        )
        result = await plughook(
            "channels",
            "test",
            "onebot_v11-group_42",
            "你好 [CQ:at,qq=all]",
            "--config",
            str(config),
            *PLUGIN_ARGS,
        )
    assert result.returncode == 0, result.stderr
    assert "delivered to onebot_v11-group_42 through channel onebot_v11" in result.stdout
    assert [m.texts for m in standin.messages] == [["你好 [CQ:at,qq=all]"]]


async def test_channels_test_reports_wrong_token(tmp_path: Path) -> None:
    async with OneBotStandIn(token="right-token") as standin:
        config = write_config(
            tmp_path,
            f'[channels.onebot_v11]\napi_url = "{standin.url}"\naccess_token = "wrong-token"\n',
        )
        result = await plughook(
            "channels", "test", "onebot_v11-group_42", "hi", "--config", str(config), *PLUGIN_ARGS
        )
    assert result.returncode == 1
    assert "configuration error" in result.stdout
    assert "wrong-token" not in result.stdout + result.stderr


async def test_channels_test_rejects_bad_chat_key(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = await plughook("channels", "test", "nodash", "hi", "--config", str(config))
    assert result.returncode == 2
    assert "invalid chat key 'nodash'" in result.stderr


async def test_check_config_rejects_unknown_plugin_table(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.cli-tset]\nGREETING = "hi"\n')
    result = await plughook("check-config", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 1
    assert "plugins.cli-tset: no plugin named 'cli-tset' is loaded" in result.stdout
    assert "(loaded plugins: cli-test)" in result.stdout
    assert "no such plugin is loaded" not in result.stderr


async def test_outbox_command_ignores_other_plugin_tables(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.not-loaded]\nGREETING = "hi"\n')
    await add_messages(tmp_path, OutboxMessage("m-1", "console-ops", "queued", 1.0))
    result = await plughook("outbox", "list", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


async def test_serve_rejects_unknown_plugin_table(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[plugins.nope]\n")
    result = await plughook("serve", "--config", str(config), "--port", "0", *PLUGIN_ARGS)
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2
    assert last_line.startswith(ERROR_PREFIX)
    assert "plugins.nope: no plugin named 'nope' is loaded" in last_line
    assert "Traceback" not in result.stderr


async def test_listing_works_without_plugin_secrets(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.cli-test]\nTOKEN = "${PLUGHOOK_UNSET_FOR_TEST}"\n')
    await add_messages(tmp_path)
    listing = await plughook("outbox", "list", "--config", str(config), *PLUGIN_ARGS)
    check = await plughook("check-config", "--config", str(config), *PLUGIN_ARGS)
    assert listing.returncode == 0, listing.stderr
    assert check.returncode == 1
    assert "environment variable PLUGHOOK_UNSET_FOR_TEST is not set" in check.stdout


CHANNEL_SECRETS_FROM_UNSET_VARIABLES = """
[channels.onebot_v11]
api_url = "http://127.0.0.1:9"
access_token = "${PLUGHOOK_UNSET_ONEBOT_TOKEN}"
[channels.telegram]
token = "${PLUGHOOK_UNSET_TELEGRAM_TOKEN}"
"""


@pytest.mark.parametrize(
    ("command", "output"),
    [
        (("deliveries", "list"), "cli-test/echo"),
        (("deliveries", "show", "gh-1", *PLUGIN_ARGS), "cli-test/echo"),
        (("outbox", "list", *PLUGIN_ARGS), "d00d00000000"),
        (("outbox", "show", "d00d", *PLUGIN_ARGS), "message: d00d0000000000000000"),
        (("outbox", "retry", "d00d", *PLUGIN_ARGS), "1 dead message moved back to pending"),
        (("outbox", "purge", "--dead", "--older-than", "0s"), "1 dead message deleted"),
        (("endpoints", *PLUGIN_ARGS), "cli-test/webhook/echo"),
    ],
)
async def test_admin_command_works_without_channel_secrets(
    tmp_path: Path, command: tuple[str, ...], output: str
) -> None:
    config = write_config(tmp_path, CHANNEL_SECRETS_FROM_UNSET_VARIABLES)
    await record_echo_delivery(tmp_path)
    dead = OutboxMessage("d00d0000000000000000", "onebot_v11-group_1", "failed", 1.0, state="dead")
    await add_messages(tmp_path, dead)
    result = await plughook(*command, "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert output in result.stdout


async def test_outbox_retry_ignores_invalid_plugin_settings(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins.cli-test]\nCOLOUR = "red"\n')
    await add_messages(tmp_path, OutboxMessage("abcd0000", "console-ops", "x", 1.0, state="dead"))
    result = await plughook("outbox", "retry", "abcd", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 dead message moved back to pending"


async def test_channels_test_needs_channel_secrets(tmp_path: Path) -> None:
    config = write_config(tmp_path, CHANNEL_SECRETS_FROM_UNSET_VARIABLES)
    result = await plughook(
        "channels", "test", "console-ops", "hi", "--config", str(config), *PLUGIN_ARGS
    )
    assert result.returncode == 2
    assert "PLUGHOOK_UNSET_ONEBOT_TOKEN is not set" in result.stderr
    assert "PLUGHOOK_UNSET_TELEGRAM_TOKEN is not set" in result.stderr


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (("deliveries", "list"), "delivery log"),
        (("deliveries", "show", "r1"), "delivery log"),
        (("deliveries", "replay", "r1"), "delivery log"),
        (("outbox", "list"), "plughook data"),
        (("outbox", "retry", "m1"), "plughook data"),
        (("outbox", "purge", "--dead"), "plughook data"),
    ],
)
async def test_command_on_missing_data_names_the_folder(
    tmp_path: Path, command: tuple[str, ...], missing: str
) -> None:
    config = write_config(tmp_path)
    result = await plughook(*command, "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{ERROR_PREFIX}no {missing} in {tmp_path / 'data'}")
    assert not (tmp_path / "data").exists()


async def test_deliveries_need_the_log_file(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_messages(tmp_path)
    (tmp_path / "data" / "plughook-deliveries.sqlite3").unlink()
    result = await plughook("deliveries", "list", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{ERROR_PREFIX}no delivery log in {tmp_path / 'data'}")


@pytest.mark.parametrize("command", [("deliveries", "list"), ("outbox", "list")])
@pytest.mark.parametrize("limit", ["0", "-1", "many"])
async def test_list_limit_must_be_positive(
    tmp_path: Path, command: tuple[str, ...], limit: str
) -> None:
    result = await plughook(*command, "--limit", limit)
    assert result.returncode == 2
    assert f"expected a whole number of 1 or more, not '{limit}'" in result.stderr


async def test_plugin_name_given_as_module_gets_hint(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_messages(tmp_path)
    result = await plughook("outbox", "list", "--config", str(config), "--plugin", "cli-test")
    assert result.returncode == 2
    assert "--plugin 'cli-test' is not a Python module name" in result.stderr


def test_multipart_body_lines_end_without_escapes() -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n'
    assert format_body(body).splitlines() == [
        "  --b",
        '  Content-Disposition: form-data; name="a"',
        "  ",
        "  1",
        "  --b--",
    ]


def test_form_body_shows_decoded_fields() -> None:
    payload = '{"ref": "refs/heads/main", "head_commit": {"message": "修复登录"}}'
    body = urllib.parse.urlencode({"payload": payload, "note": "a b"}).encode()
    shown = format_body(body, content_type="application/x-www-form-urlencoded; charset=utf-8")
    assert shown.splitlines() == [
        "  payload (JSON):",
        "  {",
        '    "ref": "refs/heads/main",',
        '    "head_commit": {',
        '      "message": "修复登录"',
        "    }",
        "  }",
        "  note = a b",
    ]


def test_form_body_without_content_type_stays_raw() -> None:
    assert format_body(b"a=1&b=%E4%BD%A0") == "  a=1&b=%E4%BD%A0"


def test_cut_multibyte_body_shows_as_text() -> None:
    body = "长文本".encode()[:-1]
    assert format_body(body) == "  长文"


async def test_missing_relative_data_dir_names_the_working_directory(tmp_path: Path) -> None:
    completed = await anyio.run_process(
        [sys.executable, "-m", "adapters", "deliveries", "list", "--no-entry-points"],
        cwd=tmp_path,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    stderr = completed.stderr.decode()
    assert completed.returncode == 2
    assert f"read from the working directory {tmp_path}" in stderr
    assert os.listdir(tmp_path) == []


def listed(record_id: str, path: str, delivery_id: str) -> DeliveryRecord:
    return delivery_record(
        record_id,
        delivery_id=delivery_id,
        received_at=1_700_000_000.0,
        path=path,
        duration_ms=12.25,
    )


def test_delivery_table_columns_line_up() -> None:
    header, short, long = format_table(
        [listed("ab-r1", "/a", "d-1"), listed("abcdef123456-r20000", "/a/longer/path", "")]
    )
    assert short.index("p/a") == header.index("ENDPOINT")
    assert long.index("p/a/longer/path") == header.index("ENDPOINT")
    assert short.index("d-1") == header.index("DELIVERY ID")
    assert long.rstrip().endswith("  -")
    assert short.index("12.2 ms") + len("12.2 ms") == header.index("TIME") + len("TIME")


def test_delivery_table_narrow_puts_id_below() -> None:
    guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    replay = listed("ab-r2", "/github", guid)
    replay.replay_of = "ab-r1"
    lines = format_table([listed("ab-r1", "/github", guid), replay, listed("ab-r3", "/a", "")], 110)
    header, first, first_id, second, second_id, third = lines
    assert "DELIVERY ID" not in header
    assert first.startswith("ab-r1 ")
    assert second.startswith("ab-r2 ")
    assert first_id == f"    delivery {guid}"
    assert second_id == f"    delivery {guid}  (replay of ab-r1)"
    assert third.startswith("ab-r3 ")
    assert max(wcwidth.width(line) for line in lines) <= 110


def test_delivery_table_wide_keeps_id_column() -> None:
    header, line = format_table([listed("ab-r1", "/a", "d-1")], 200)
    assert line.index("d-1") == header.index("DELIVERY ID")


def test_delivery_table_marks_duplicate() -> None:
    duplicate = listed("ab-r1", "/a", "d")
    duplicate.duplicate = True
    header, line = format_table([duplicate])
    assert line[header.index("STATUS") :].startswith("200 (duplicate)")


def test_delivery_table_shows_verification() -> None:
    verified, rejected, unchecked = (listed(f"ab-r{n}", "/a", "d") for n in (1, 2, 3))
    verified.verified = True
    rejected.verified = False
    header, *lines = format_table([verified, rejected, unchecked])
    column = header.index("VERIFIED")
    assert [line[column : column + 3].strip() for line in lines] == ["yes", "no", "-"]


GUIDS = (
    "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "f1ce8084-9e88-4037-8146-93141a2e0e9f",
    "36dd2800-2e7a-4cf0-8982-42daafdf00ca",
)


def github_deliveries() -> list[DeliveryRecord]:
    """Return records as a busy server keeps them: long record ids, GUIDs, a 401 and a replay."""
    records = [
        delivery_record(
            f"3d7cbc4a08f0-r1200{n}",
            delivery_id=guid,
            received_at=1_700_000_000.0 + n,
            plugin="github-notifier",
            path="/github",
            duration_ms=1234.5,
        )
        for n, guid in enumerate(GUIDS)
    ]
    records[1].status = 401
    records[1].verified = False
    replay = delivery_record(
        "8e3a4ca2673a-r7",
        delivery_id=GUIDS[0],
        plugin="github-notifier",
        path="/github",
        replay_of=records[0].id,
    )
    return [replay, *records]


def record_blocks(lines: list[str]) -> list[list[str]]:
    """Split table lines (after the header) into each row with the indented lines below it."""
    blocks: list[list[str]] = []
    for line in lines[1:]:
        if line.startswith("    "):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def cells_of(line: str) -> list[str]:
    """Split an aligned table line into its cells, which are two or more spaces apart."""
    return re.split(r" {2,}", line.strip())


TERMINAL_WIDTHS = [100, 90, 80, 70, 60]


@pytest.mark.parametrize("width", TERMINAL_WIDTHS)
def test_delivery_table_fits_terminal_width(width: int) -> None:
    lines = format_table(github_deliveries(), width)
    assert max(wcwidth.width(line) for line in lines) <= width


@pytest.mark.parametrize("width", TERMINAL_WIDTHS)
def test_delivery_table_keeps_what_picks_a_record(width: int) -> None:
    records = github_deliveries()
    blocks = record_blocks(format_table(records, width))
    assert len(blocks) == len(records)
    for record, (row, *below) in zip(records, blocks, strict=True):
        cells = cells_of(row)
        assert cells[0] == record.id
        assert cells[1].endswith(short_local_time(record.received_at))
        assert str(record.status) in cells
        assert "github-notifier/github" in "\n".join([row, *below])
        assert any(line.startswith(f"    delivery {record.delivery_id}") for line in below)


def test_delivery_table_on_80_columns_keeps_verified() -> None:
    header, *_ = format_table(github_deliveries(), 80)
    received = f"RECEIVED ({time.strftime('%z')})"
    assert cells_of(header) == ["RECORD ID", received, "STATUS", "VERIFIED", "ENDPOINT"]


def test_delivery_table_on_60_columns_puts_endpoint_below() -> None:
    header, row, endpoint, delivery, *_ = format_table(github_deliveries(), 60)
    assert cells_of(header) == ["RECORD ID", f"RECEIVED ({time.strftime('%z')})", "STATUS"]
    assert row.startswith("8e3a4ca2673a-r7  ")
    assert endpoint == "    endpoint github-notifier/github"
    assert delivery == f"    delivery {GUIDS[0]}"


def test_delivery_table_narrow_puts_replay_on_own_line() -> None:
    _, _, delivery, replay, *_ = format_table(github_deliveries(), 70)
    assert delivery == f"    delivery {GUIDS[0]}"
    assert replay == "    replay of 3d7cbc4a08f0-r12000"


def queued(message_id: str, chat_key: str, text: str, error: str = "") -> OutboxMessage:
    message = OutboxMessage(message_id, chat_key, text, 1_700_000_000.0, state="dead")
    message.attempts = 3
    message.last_error = error
    return message


def test_outbox_table_columns_line_up() -> None:
    header, first, error, second = format_messages(
        [
            queued("m-1", "ops-a", "line one\nline two", error="HTTP 500"),
            queued("m-22", "ops-release-managers", "short"),
        ]
    )
    assert first.index("ops-a") == header.index("CHAT")
    assert second.index("ops-release-managers") == header.index("CHAT")
    assert first.index("line one ⏎ line two") == header.index("TEXT")
    assert second.index("short") == header.index("TEXT")
    assert error == "    last error: HTTP 500"


def test_outbox_table_shows_next_attempt_of_pending() -> None:
    pending = queued("m-1", "ops-a", "retrying")
    pending.state = "pending"
    pending.next_attempt_at = 1_700_000_090.0
    header, pending_line, dead_line = format_messages(
        [pending, queued("m-2", "ops-b", "dead")], now=1_700_000_078.5
    )
    column = header.index("NEXT ATTEMPT")
    assert pending_line[column:].startswith("in 12 s ")
    assert dead_line[column:].startswith("- ")


@pytest.mark.parametrize(
    ("wait", "shown"),
    [
        (-3.0, "due"),
        (0.2, "in 1 s"),
        (67.0, "in 67 s"),
        (121.0, "in 3 min"),
        (7200.0, "in 2 h"),
    ],
)
def test_outbox_table_next_attempt_wording(wait: float, shown: str) -> None:
    pending = queued("m-1", "ops-a", "retrying")
    pending.state = "pending"
    pending.next_attempt_at = 1_700_000_000.0 + wait
    header, line = format_messages([pending], now=1_700_000_000.0)
    assert line[header.index("NEXT ATTEMPT") :].startswith(f"{shown} ")


def test_outbox_table_shows_message_waiting_in_chat() -> None:
    first, second = queued("m-1", "ops-a", "first"), queued("m-2", "ops-a", "second")
    for seq, message in enumerate((first, second), start=1):
        message.state = "pending"
        message.seq = seq
    header, second_line, first_line = format_messages([second, first], now=1_700_000_000.0)
    column = header.index("NEXT ATTEMPT")
    assert second_line[column:].startswith("after earlier ")
    assert first_line[column:].startswith("due ")


def test_outbox_table_shows_sending_message() -> None:
    sending = queued("m-1", "ops-a", "in flight")
    sending.state = "pending"
    sending.next_attempt_at = 1_699_999_990.0
    sending.claimed_until = 1_700_000_060.0
    header, line = format_messages([sending], now=1_700_000_000.0)
    assert line[header.index("STATE") :].startswith("sending ")
    assert line[header.index("NEXT ATTEMPT") :].startswith("- ")


def test_outbox_table_ended_claim_is_due() -> None:
    released = queued("m-1", "ops-a", "claim ended")
    released.state = "pending"
    released.next_attempt_at = 1_699_999_990.0
    released.claimed_until = 1_699_999_999.0
    header, line = format_messages([released], now=1_700_000_000.0)
    assert line[header.index("STATE") :].startswith("pending ")
    assert line[header.index("NEXT ATTEMPT") :].startswith("due ")


def test_outbox_table_cuts_chinese_text_to_forty_columns() -> None:
    header, line = format_messages([queued("m-1", "ops-a", "构建失败：" + "测试" * 40)])
    shown = line[header.index("TEXT") :]
    assert shown == "构建失败：" + "测试" * 7 + "…"
    assert wcwidth.width(shown) == 39


def test_outbox_table_fits_terminal_width() -> None:
    long_text = "构建失败：" + "测试" * 100
    messages = [queued("m-1", "ops-a", long_text, error="HTTP 500 " + "x" * 200)]
    for width in (100, 140):
        _, line, error = format_messages(messages, width=width)
        assert wcwidth.width(line) in (width - 1, width)
        assert wcwidth.width(error) <= width


def narrow_table(width: int) -> list[str]:
    message = queued("m-1", "onebot_v11-group_123456789", "构建失败 " * 20, error="HTTP 500")
    message.attempts = 12
    return format_messages([message], width=width)


def test_outbox_table_moves_text_below_on_narrow_terminal() -> None:
    header, line, text, error = narrow_table(100)
    assert "TEXT" not in header
    assert "CREATED" in header
    assert text.startswith("    构建失败 ")
    assert error == "    last error: HTTP 500"
    assert max(wcwidth.width(each) for each in (header, line, text, error)) <= 100


def test_outbox_table_drops_created_on_80_columns() -> None:
    lines = narrow_table(80)
    assert "CREATED" not in lines[0]
    assert max(wcwidth.width(each) for each in lines) <= 80


def test_outbox_table_escapes_controls() -> None:
    header, line, error = format_messages(
        [queued("m-1", "ops-a", "push \x1b[2J by x", error="HTTP 500 \x1b]0;t\x07")]
    )
    assert line[header.index("TEXT") :] == "push \\x1b[2J by x"
    assert error == "    last error: HTTP 500 \\x1b]0;t\\x07"


async def test_deliveries_show_decodes_form_body(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    body = urllib.parse.urlencode({"payload": '{"ref": "refs/heads/主分支"}'}).encode()
    form = "application/x-www-form-urlencoded"
    record_id = await record_echo_delivery(tmp_path, body, content_type=form)
    result = await plughook("deliveries", "show", record_id, "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 0, result.stderr
    assert "  payload (JSON):" in result.stdout
    assert '    "ref": "refs/heads/主分支"' in result.stdout


async def test_deliveries_show_finds_delivery_id(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    result = await plughook("deliveries", "show", "gh-1", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith(f"{record_id} ")


async def test_deliveries_replay_finds_delivery_id(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path)
    result = await plughook("deliveries", "replay", "gh-1", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 0, result.stderr
    assert f"replayed {record_id}: status 200" in result.stdout


async def test_delivery_id_of_several_records_is_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = await record_echo_delivery(tmp_path)
    second = await record_echo_delivery(tmp_path, b"second run")
    result = await plughook("deliveries", "show", "gh-1", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 2
    assert "2 delivery records have delivery id 'gh-1'" in result.stderr
    assert f"{first} (200)" in result.stderr
    assert f"{second} (200)" in result.stderr


async def test_delivery_id_list_marks_replays(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    common = ("--config", str(config), *PLUGIN_ARGS)
    original = await record_echo_delivery(tmp_path)
    replayed = await plughook("deliveries", "replay", original, *common)
    result = await plughook("deliveries", "show", "gh-1", *common)
    assert replayed.returncode == 0, replayed.stderr
    assert f"(200, replay of {original})" in result.stderr


async def test_deliveries_show_escapes_controls_in_body(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record_id = await record_echo_delivery(tmp_path, b"clear \x1b[2J\x1b]0;title\x07 done")
    result = await plughook("deliveries", "show", record_id, "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "  clear \\x1b[2J\\x1b]0;title\\x07 done" in result.stdout


async def test_plugin_module_failing_on_import_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = await plughook(
        "check-config", "--config", str(config), "--plugin", "tests.failing_plugin"
    )
    assert result.returncode == 2
    assert "plugin module 'tests.failing_plugin' failed while loading: ValueError" in result.stderr
    assert "importable" not in result.stderr


async def test_missing_plugin_module_says_importable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = await plughook("check-config", "--config", str(config), "--plugin", "tests.absent")
    assert result.returncode == 2
    assert "cannot import plugin module 'tests.absent': ModuleNotFoundError" in result.stderr


async def test_outbox_show_empty_id_is_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_messages(tmp_path, OutboxMessage("m-1", "console-ops", "queued", 1.0))
    result = await plughook("outbox", "show", "", "--config", str(config), *PLUGIN_ARGS)
    assert result.returncode == 2
    assert "the message id is empty" in result.stderr
