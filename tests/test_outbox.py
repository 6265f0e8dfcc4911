"""The outbox delivering to a OneBot v11 stand-in: retries, order, pacing, dead letters."""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest

from core import Settings, WebhookApp
from core.records import OutboxMessage
from core.settings import OutboxSettings, ServerSettings
from core.sqlite import SQLiteStorage
from tests.standins import ScriptedResponse
from tests.standins.onebot import OneBotStandIn

pytestmark = pytest.mark.anyio

TOKEN = "outbox-test-token"
FAST_RETRIES = OutboxSettings(base_delay=0.01, max_delay=0.05, max_attempts=12)


def make_app(
    tmp_path: Path, api_url: str, *, outbox: OutboxSettings = FAST_RETRIES, **channel: Any
) -> WebhookApp:
    options: dict[str, Any] = {
        "kind": "onebot_v11",
        "api_url": api_url,
        "access_token": TOKEN,
        "timeout": 0.5,
        "min_interval": 0.0,
        "rate_per_minute": 0,
    }
    options.update(channel)
    settings = Settings(outbox=outbox, channels={"onebot_v11": options})
    return WebhookApp([], data_dir=tmp_path, settings=settings)


async def wait_for_idle(app: WebhookApp, seconds: float = 30.0) -> None:
    assert app.outbox is not None
    with anyio.fail_after(seconds):
        await app.outbox.wait_idle()


async def test_group_and_private_delivery(tmp_path: Path) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        app = make_app(tmp_path, server.url)
        async with app.running():
            assert app.outbox is not None
            await app.outbox.put("onebot_v11-group_123456", "群消息")
            await app.outbox.put("onebot_v11-private_42", "私聊消息")
            await wait_for_idle(app)
    delivered = {(m.target, m.target_id): m.texts for m in server.messages}
    assert delivered == {("group", 123456): ["群消息"], ("private", 42): ["私聊消息"]}


async def test_failures_then_success_deliver_once_in_order(tmp_path: Path) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        server.script.extend(
            [
                ScriptedResponse(http_status=500),
                ScriptedResponse(http_status=502),
                ScriptedResponse(retcode=1200),
                ScriptedResponse(http_status=503),
            ]
        )
        app = make_app(tmp_path, server.url)
        async with app.running():
            assert app.outbox is not None
            for index in range(5):
                await app.outbox.put("onebot_v11-group_1", f"message {index}")
            await wait_for_idle(app)
            retried = app.outbox.retried
    texts = [text for m in server.messages for text in m.texts]
    assert texts == [f"message {index}" for index in range(5)]
    assert retried == 4


async def test_connection_refused_then_success(tmp_path: Path) -> None:
    server = OneBotStandIn(token=TOKEN)
    await server.start()
    url = server.url
    await server.close()
    patient = OutboxSettings(base_delay=0.01, max_delay=0.05, max_attempts=10_000)
    app = make_app(tmp_path, url, outbox=patient)
    async with app.running():
        assert app.outbox is not None
        await app.outbox.put("onebot_v11-group_7", "after the restart")
        await anyio.sleep(0.2)
        failures_while_down = app.outbox.retried
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        restarted = OneBotStandIn(token=TOKEN)
        async with _serve_on(restarted, port):
            await wait_for_idle(app)
    assert failures_while_down >= 1
    assert [t for m in restarted.messages for t in m.texts] == ["after the restart"]


def _serve_on(server: OneBotStandIn, port: int) -> Any:
    """Start ``server`` on a fixed port (the one the channel was configured with)."""
    from contextlib import asynccontextmanager

    from aiohttp import web

    @asynccontextmanager
    async def serve() -> Any:
        app = web.Application()
        app.add_routes(server.routes())
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            yield server
        finally:
            await runner.cleanup()

    return serve()


async def test_timeout_is_retried_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        server.script.append(ScriptedResponse(delay=1.0))
        app = make_app(tmp_path, server.url, timeout=0.2)
        with caplog.at_level(logging.WARNING, "plughook.outbox"):
            async with app.running():
                assert app.outbox is not None
                await app.outbox.put("onebot_v11-group_9", "slow platform")
                await wait_for_idle(app)
                duplicates = app.outbox.possible_duplicates
    assert duplicates == 1
    assert any("possible duplicate" in r.getMessage() for r in caplog.records)


async def test_permanent_error_dead_letters_then_retry(tmp_path: Path) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        server.script.append(ScriptedResponse(retcode=100))
        app = make_app(tmp_path, server.url)
        async with app.running():
            assert app.outbox is not None
            await app.outbox.put("onebot_v11-group_5", "rejected once")
            await wait_for_idle(app)
            dead = await app.storage.outbox_list("dead", 10)
            delivered_before_retry = len(server.messages)
            retried = await app.outbox.retry_dead(dead[0].id)
            await wait_for_idle(app)
    assert [m.attempts for m in dead] == [1]
    assert delivered_before_retry == 0
    assert retried == 1
    assert [t for m in server.messages for t in m.texts] == ["rejected once"]


async def test_dead_letter_log_names_retry_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        server.script.append(ScriptedResponse(retcode=100))
        app = make_app(tmp_path, server.url)
        with caplog.at_level(logging.ERROR, "plughook.outbox"):
            async with app.running():
                assert app.outbox is not None
                [message_id] = await app.outbox.put("onebot_v11-group_5", "rejected")
                await wait_for_idle(app)
    [line] = [r.getMessage() for r in outbox_records(caplog)]
    assert line.startswith(f"message {message_id} to onebot_v11-group_5 dead-lettered after 1 ")
    assert line.endswith(
        f"; once the cause is fixed, resend it with `plughook outbox retry {message_id}`"
    )


async def test_wrong_token_is_configuration_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with OneBotStandIn(token="the-right-token") as server:
        app = make_app(tmp_path, server.url)
        with caplog.at_level(logging.ERROR, "plughook"):
            async with app.running():
                assert app.outbox is not None
                await app.outbox.put("onebot_v11-group_5", "never shown")
                await wait_for_idle(app)
                dead = await app.storage.outbox_count("dead")
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert dead == 1
    assert "configuration error" in logged
    assert TOKEN not in logged


async def test_untrusted_text_arrives_literally(tmp_path: Path) -> None:
    text = "fix: [CQ:at,qq=all] &#91;escaped&#93; 🎉👨‍👩‍👧\nsecond line\r\nthird"
    async with OneBotStandIn(token=TOKEN) as server:
        app = make_app(tmp_path, server.url)
        async with app.running():
            assert app.outbox is not None
            await app.outbox.put("onebot_v11-group_3", text)
            await wait_for_idle(app)
    [received] = server.messages
    assert received.message == [{"type": "text", "data": {"text": text}}]


async def test_per_chat_interval_is_respected(tmp_path: Path) -> None:
    interval = 0.03
    async with OneBotStandIn(token=TOKEN) as server:
        app = make_app(tmp_path, server.url, min_interval=interval)
        async with app.running():
            assert app.outbox is not None
            for index in range(30):
                await app.outbox.put("onebot_v11-group_11", f"m{index:02d}")
            await wait_for_idle(app)
    times = [m.received_at for m in server.messages]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert [t for m in server.messages for t in m.texts] == [f"m{i:02d}" for i in range(30)]
    # Arrival times carry loopback jitter; the pace is kept over the whole run.
    assert times[-1] - times[0] >= 29 * interval * 0.95
    assert min(gaps) >= interval * 0.5


async def test_interval_counts_from_request_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval = 0.1
    async with OneBotStandIn(token=TOKEN) as server:
        app = make_app(tmp_path, server.url, min_interval=interval)
        reads = itertools.count()
        read_due = app.storage.outbox_due

        async def slow_every_other_read(*args: Any) -> list[OutboxMessage]:
            # A read that takes most of the interval, then a fast one.
            if next(reads) % 2 == 0:
                await anyio.sleep(interval * 0.6)
            return await read_due(*args)

        monkeypatch.setattr(app.storage, "outbox_due", slow_every_other_read)
        async with app.running():
            assert app.outbox is not None
            for index in range(8):
                await app.outbox.put("onebot_v11-group_13", f"m{index}")
            await wait_for_idle(app)
    times = [m.received_at for m in server.messages]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 8
    assert min(gaps) >= interval * 0.9


async def test_retry_log_includes_chat_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    interval = 0.5
    async with OneBotStandIn(token=TOKEN) as server:
        server.script.append(ScriptedResponse(http_status=502))
        app = make_app(tmp_path, server.url, min_interval=interval)
        with caplog.at_level(logging.WARNING, "plughook.outbox"):
            async with app.running():
                assert app.outbox is not None
                started = time.monotonic()
                await app.outbox.put("onebot_v11-group_12", "after a 502")
                await wait_for_idle(app)
    [retry_line] = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    waited = float(retry_line.split("retrying in ")[1].split(" s")[0])
    [delivered] = server.messages
    assert waited >= interval - 0.1
    assert delivered.received_at - started >= interval * 0.9
    assert delivered.texts == ["after a 502"]


def outbox_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "plughook.outbox"]


async def test_retry_is_not_held_back_by_later_messages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    outbox = OutboxSettings(base_delay=0.5, max_delay=0.5, max_attempts=2)
    app = make_app(tmp_path, f"http://127.0.0.1:{closed_port}", outbox=outbox)
    with caplog.at_level(logging.WARNING, "plughook.outbox"):
        async with app.running():
            assert app.outbox is not None
            for index in range(3):
                await app.outbox.put("onebot_v11-group_14", f"m{index}")
            # wait_for_idle would wake the worker, so this waits for the log.
            with anyio.fail_after(10):
                while len(outbox_records(caplog)) < 2:
                    await anyio.sleep(0.02)
    # The first message's two attempts: a retry warning, then the dead letter.
    first, second = outbox_records(caplog)[:2]
    waited = float(first.getMessage().split("retrying in ")[1].split(" s")[0])
    # The second attempt comes at the time its log line gives, not at the worker's
    # next idle poll (every 2 s).
    assert second.created - first.created < waited + 0.5


async def test_chat_paced_while_another_chat_hangs(tmp_path: Path) -> None:
    interval = 0.25
    async with OneBotStandIn(token=TOKEN) as server:
        # The stand-in responds to the first request, to group 15, only after 2 s.
        server.script.append(ScriptedResponse(delay=2.0))
        app = make_app(tmp_path, server.url, min_interval=interval, timeout=5.0)
        async with app.running():
            assert app.outbox is not None
            await app.outbox.put("onebot_v11-group_15", "hanging")
            await app.outbox.put("onebot_v11-group_16", "first")
            await anyio.sleep(0.02)
            # Queued while the hanging send is in flight, each wakes the worker.
            await app.outbox.put("onebot_v11-group_15", "behind the hanging one")
            await app.outbox.put("onebot_v11-group_16", "second")
            await wait_for_arrival(server, "second")
    arrived = {text: m.received_at for m in server.messages for text in m.texts}
    # Due 0.25 s after the first; the worker's idle poll comes every 2 s.
    assert arrived["second"] - arrived["first"] < 1.0


async def wait_for_arrival(server: OneBotStandIn, text: str) -> None:
    """Wait until ``server`` received ``text``, without waking the outbox worker."""
    with anyio.fail_after(10):
        while all(text not in m.texts for m in server.messages):
            await anyio.sleep(0.02)


async def test_long_text_is_split_in_order(tmp_path: Path) -> None:
    lines = [f"line {index} 🎉" for index in range(40)]
    async with OneBotStandIn(token=TOKEN) as server:
        app = make_app(tmp_path, server.url, max_length=100)
        async with app.running():
            assert app.outbox is not None
            ids = await app.outbox.put("onebot_v11-group_12", "\n".join(lines))
            await wait_for_idle(app)
    texts = [t for m in server.messages for t in m.texts]
    assert len(ids) == len(texts)
    assert all(len(text) <= 100 for text in texts)
    assert texts[0].startswith(f"(1/{len(texts)}) ")


async def test_ten_thousand_messages_with_failures(tmp_path: Path) -> None:
    chats = 50
    per_chat = 200
    outbox = OutboxSettings(base_delay=0.005, max_delay=0.02, max_attempts=50, concurrency=32)
    async with OneBotStandIn(token=TOKEN, failure_ratio=0.3, seed=7) as server:
        app = make_app(tmp_path, server.url, outbox=outbox)
        started = time.perf_counter()
        async with app.running():
            assert app.outbox is not None
            for index in range(per_chat):
                for chat in range(chats):
                    await app.outbox.put(f"onebot_v11-group_{1000 + chat}", f"{chat}:{index}")
            await wait_for_idle(app, seconds=300)
            retried = app.outbox.retried
            dead = await app.storage.outbox_count("dead")
        elapsed = time.perf_counter() - started
    received: dict[int, list[int]] = defaultdict(list)
    for message in server.messages:
        for text in message.texts:
            chat_text, index_text = text.split(":")
            received[int(chat_text)].append(int(index_text))
    print(
        f"\n10,000 messages, 50 chats, 30% failures: {elapsed:.1f} s, "
        f"{server.request_count} requests, {retried} retries, {dead} dead"
    )
    assert dead == 0
    assert sum(len(indexes) for indexes in received.values()) == chats * per_chat
    assert all(indexes == list(range(per_chat)) for indexes in received.values())


async def test_coalesce_joins_waiting_messages(tmp_path: Path) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        app = make_app(tmp_path, server.url, min_interval=0.3, coalesce=True)
        async with app.running():
            assert app.outbox is not None
            for index in range(5):
                await app.outbox.put("onebot_v11-group_21", f"m{index}")
            await wait_for_idle(app)
            delivered = app.outbox.delivered
    texts = [t for m in server.messages for t in m.texts]
    parts = [part for text in texts for part in text.split("\n\n")]
    # Which messages share a send depends on when the worker wakes; the order
    # and the count of sends do not.
    assert parts == ["m0", "m1", "m2", "m3", "m4"]
    assert len(texts) <= 2
    assert delivered == 5


async def test_coalesce_respects_max_length(tmp_path: Path) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        app = make_app(tmp_path, server.url, min_interval=0.2, coalesce=True, max_length=10)
        async with app.running():
            assert app.outbox is not None
            for index in range(4):
                await app.outbox.put("onebot_v11-group_22", f"msg{index}")
            await wait_for_idle(app)
    texts = [t for m in server.messages for t in m.texts]
    parts = [part for text in texts for part in text.split("\n\n")]
    assert parts == ["msg0", "msg1", "msg2", "msg3"]
    assert all(len(text) <= 10 for text in texts)
    assert any("\n\n" in text for text in texts)


async def wait_for_requests(server: OneBotStandIn, count: int) -> None:
    with anyio.fail_after(10):
        while server.request_count < count:
            await anyio.sleep(0.005)


async def stored_messages(tmp_path: Path) -> list[OutboxMessage]:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    try:
        return await storage.outbox_list(None, 100)
    finally:
        await storage.close()


async def restart_and_drain(tmp_path: Path, server: OneBotStandIn) -> None:
    """Start the app again on the same data and wait until its outbox is empty."""
    restarted = make_app(tmp_path, server.url)
    async with restarted.running():
        await wait_for_idle(restarted)


async def test_shutdown_lets_send_in_flight_finish(tmp_path: Path) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        server.script.append(ScriptedResponse(delay=0.3))
        app = make_app(tmp_path, server.url, timeout=2.0)
        async with app.running():
            assert app.outbox is not None
            await app.outbox.put("onebot_v11-group_5", "sent during shutdown")
            await wait_for_requests(server, 1)
        await restart_and_drain(tmp_path, server)
    assert [text for m in server.messages for text in m.texts] == ["sent during shutdown"]


async def test_shutdown_starts_no_new_send(tmp_path: Path) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        server.script.append(ScriptedResponse(delay=0.3))
        app = make_app(tmp_path, server.url, timeout=2.0)
        async with app.running():
            assert app.outbox is not None
            await app.outbox.put("onebot_v11-group_5", "first")
            await app.outbox.put("onebot_v11-group_5", "second")
            await wait_for_requests(server, 1)
        first_run = [text for m in server.messages for text in m.texts]
        await restart_and_drain(tmp_path, server)
    assert first_run == ["first"]
    assert [text for m in server.messages for text in m.texts] == ["first", "second"]


def app_with_slow_send(tmp_path: Path, server: OneBotStandIn, outbox: OutboxSettings) -> WebhookApp:
    """Return an app whose first send to the stand-in outlives its 0.1 s shutdown grace period."""
    server.script.append(ScriptedResponse(delay=1.0))
    options: dict[str, Any] = {
        "kind": "onebot_v11",
        "api_url": server.url,
        "access_token": TOKEN,
        "timeout": 5.0,
    }
    settings = Settings(
        outbox=outbox,
        channels={"onebot_v11": options},
        server=ServerSettings(grace_period=0.1),
    )
    return WebhookApp([], data_dir=tmp_path, settings=settings)


async def test_shutdown_past_grace_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        app = app_with_slow_send(tmp_path, server, FAST_RETRIES)
        with caplog.at_level(logging.WARNING, "plughook.outbox"):
            async with app.running():
                assert app.outbox is not None
                await app.outbox.put("onebot_v11-group_5", "slow")
                await wait_for_requests(server, 1)
        [stored] = await stored_messages(tmp_path)
        [shutdown_line] = [
            r.getMessage() for r in caplog.records if "will be sent again" in r.getMessage()
        ]
        caplog.clear()
        with caplog.at_level(logging.WARNING, "plughook.outbox"):
            await restart_and_drain(tmp_path, server)
        delivered_lines = [r.getMessage() for r in caplog.records if "delivered" in r.getMessage()]
    # The stand-in had received the cancelled request, so the message shows twice.
    assert [text for m in server.messages for text in m.texts] == ["slow", "slow"]
    assert f"onebot_v11-group_5 (message {stored.id})" in shutdown_line
    assert stored.attempts == 1
    assert stored.possible_duplicates == 1
    assert stored.last_error == "send cancelled at shutdown; the chat may have the message"
    assert delivered_lines == [
        f"message {stored.id} to onebot_v11-group_5 delivered; 1 earlier attempt(s) may have "
        "reached the chat too, so it may show more than once"
    ]


async def test_cut_off_last_attempt_is_tried_again(tmp_path: Path) -> None:
    one_attempt = OutboxSettings(base_delay=0.01, max_delay=0.05, max_attempts=1)
    async with OneBotStandIn(token=TOKEN) as server:
        app = app_with_slow_send(tmp_path, server, one_attempt)
        async with app.running():
            assert app.outbox is not None
            await app.outbox.put("onebot_v11-group_5", "cut off")
            await wait_for_requests(server, 1)
        [after_shutdown] = await stored_messages(tmp_path)

        server.script.append(ScriptedResponse(http_status=500))
        restarted = make_app(tmp_path, server.url, outbox=one_attempt)
        async with restarted.running():
            assert restarted.outbox is not None
            with anyio.fail_after(10):
                while restarted.outbox.dead_lettered < 1:
                    await anyio.sleep(0.005)
        [after_failure] = await stored_messages(tmp_path)
    # The cut-off send used the only attempt, yet the message stays pending:
    # the channel never failed. The failed attempt after the restart ends it.
    assert after_shutdown.attempts == 1
    assert after_shutdown.state == "pending"
    assert after_failure.attempts == 2
    assert after_failure.state == "dead"


async def test_send_failing_at_shutdown_is_not_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with OneBotStandIn(token=TOKEN) as server:
        server.script.append(ScriptedResponse(delay=3.0))
        app = make_app(tmp_path, server.url, timeout=1.0)
        with caplog.at_level(logging.WARNING, "plughook.outbox"):
            async with app.running():
                assert app.outbox is not None
                [message_id] = await app.outbox.put("onebot_v11-group_5", "slow at shutdown")
                await wait_for_requests(server, 1)
        lines = [r.getMessage() for r in outbox_records(caplog)]
        [stored] = await stored_messages(tmp_path)
        await restart_and_drain(tmp_path, server)
    assert lines == [
        f"message {message_id} to onebot_v11-group_5 failed on attempt 1 during shutdown, so it "
        "stays queued and is sent after the next start (possible duplicate: the platform may "
        "have shown it): onebot_v11 channel 'onebot_v11': no response within 1 s; the message "
        "may have been delivered"
    ]
    assert stored.attempts == 1
    # The stand-in had received the timed-out request, so the message shows twice.
    assert [text for m in server.messages for text in m.texts] == [
        "slow at shutdown",
        "slow at shutdown",
    ]
