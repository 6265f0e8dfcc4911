"""Tests of the onebot_v11 channel against the OneBot v11 stand-in on loopback."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from core.channels import channel_kinds
from core.errors import ConfigError, DeliveryError
from core.onebot import OneBotV11Channel, OneBotV11Options
from core.records import OutboxMessage
from tests.standins import ScriptedResponse
from tests.standins.onebot import OneBotStandIn

TOKEN = "s3cr3t-token"
GROUP_KEY = "onebot_v11-group_123456"
PRIVATE_KEY = "onebot_v11-private_42"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def server() -> AsyncIterator[OneBotStandIn]:
    async with OneBotStandIn(token=TOKEN) as standin:
        yield standin


def build_channel(options: Mapping[str, Any]) -> OneBotV11Channel:
    channel = channel_kinds()["onebot_v11"]("qq", options)
    assert isinstance(channel, OneBotV11Channel)
    return channel


@contextlib.asynccontextmanager
async def started_channel(options: Mapping[str, Any]) -> AsyncIterator[OneBotV11Channel]:
    channel = build_channel(options)
    await channel.start()
    try:
        yield channel
    finally:
        await channel.close()


def options_for(server: OneBotStandIn, **overrides: Any) -> dict[str, Any]:
    return {"api_url": server.url, "access_token": TOKEN, "timeout": 2.0, **overrides}


def outbox_message(
    text: str = "hello", chat_key: str = GROUP_KEY, message_id: str = "m1"
) -> OutboxMessage:
    return OutboxMessage(id=message_id, chat_key=chat_key, text=text, created_at=0.0, plugin="test")


async def send_and_capture(
    server: OneBotStandIn, message: OutboxMessage, **overrides: Any
) -> DeliveryError:
    async with started_channel(options_for(server, **overrides)) as channel:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(message)
    return caught.value


# Delivery


@pytest.mark.anyio
async def test_send_group_message(server: OneBotStandIn) -> None:
    async with started_channel(options_for(server)) as channel:
        await channel.send(outbox_message("build passed"))

    assert len(server.messages) == 1
    received = server.messages[0]
    assert received.action == "send_group_msg"
    assert received.target_id == 123456
    assert received.message == [{"type": "text", "data": {"text": "build passed"}}]


@pytest.mark.anyio
async def test_send_private_message(server: OneBotStandIn) -> None:
    async with started_channel(options_for(server)) as channel:
        await channel.send(outbox_message("hi", chat_key=PRIVATE_KEY))

    received = server.messages[0]
    assert received.action == "send_private_msg"
    assert received.target == "private"
    assert received.target_id == 42


@pytest.mark.anyio
async def test_send_group_id_is_json_number(server: OneBotStandIn) -> None:
    async with started_channel(options_for(server)) as channel:
        await channel.send(outbox_message())

    body = json.loads(server.messages[0].body)
    assert body["group_id"] == 123456
    assert isinstance(body["group_id"], int)


@pytest.mark.anyio
async def test_send_api_url_with_trailing_slash(server: OneBotStandIn) -> None:
    async with started_channel(options_for(server, api_url=server.url + "/")) as channel:
        await channel.send(outbox_message())

    assert len(server.messages) == 1


@pytest.mark.anyio
async def test_send_without_token_to_open_server() -> None:
    async with (
        OneBotStandIn() as open_server,
        started_channel({"api_url": open_server.url}) as channel,
    ):
        await channel.send(outbox_message())

    assert len(open_server.messages) == 1


@pytest.mark.anyio
async def test_send_accepts_async_status(server: OneBotStandIn) -> None:
    server.script.append(ScriptedResponse(retcode=1))
    async with started_channel(options_for(server)) as channel:
        await channel.send(outbox_message())

    assert len(server.messages) == 1


@pytest.mark.anyio
async def test_send_before_start_raises() -> None:
    channel = build_channel({"api_url": "http://127.0.0.1:9"})
    with pytest.raises(RuntimeError, match="not started"):
        await channel.send(outbox_message())


# Text reaches the chat literally, as one text segment


@pytest.mark.anyio
@pytest.mark.parametrize(
    "text",
    [
        "[CQ:at,qq=all] deploy done",
        "&#91;CQ:face,id=1&#93; &amp; &#44;",
        "👨\u200d👩\u200d👧\u200d👦 🇨🇳 👍🏽 1\ufe0f\u20e3",
        "first line\nsecond line\r\n\nlast",
        "构建失败：main 分支 · 3 个任务",
        "  leading and trailing spaces  ",
    ],
    ids=["cq-code", "cq-escapes", "emoji", "newlines", "chinese", "spaces"],
)
async def test_send_text_arrives_literally(server: OneBotStandIn, text: str) -> None:
    async with started_channel(options_for(server)) as channel:
        await channel.send(outbox_message(text))

    received = server.messages[0]
    assert isinstance(received.message, list)
    assert len(received.message) == 1
    assert received.texts == [text]


@pytest.mark.anyio
async def test_send_text_utf8_bytes_in_body(server: OneBotStandIn) -> None:
    text = "[CQ:at,qq=all] 😀"
    async with started_channel(options_for(server)) as channel:
        await channel.send(outbox_message(text))

    assert text.encode() in server.messages[0].body


# Credentials


@pytest.mark.anyio
async def test_send_wrong_token_is_config_error(server: OneBotStandIn) -> None:
    error = await send_and_capture(server, outbox_message(), access_token="wrong-token")

    assert error.config_error
    assert not error.retryable
    assert "'qq'" in str(error)
    assert "wrong-token" not in str(error)
    assert server.messages == []


@pytest.mark.anyio
async def test_send_missing_token_is_config_error(server: OneBotStandIn) -> None:
    error = await send_and_capture(server, outbox_message(), access_token="")

    assert error.config_error
    assert not error.retryable


@pytest.mark.anyio
async def test_send_http_401_is_config_error(server: OneBotStandIn) -> None:
    server.script.append(ScriptedResponse(http_status=401))
    error = await send_and_capture(server, outbox_message())

    assert error.config_error
    assert not error.retryable
    assert TOKEN not in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("retcode", [1401, 1403])
async def test_send_token_retcode_is_config_error(server: OneBotStandIn, retcode: int) -> None:
    server.script.append(ScriptedResponse(retcode=retcode))
    error = await send_and_capture(server, outbox_message())

    assert error.config_error
    assert not error.retryable


# Failures and their retry flags


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("retcode", "retryable"),
    [
        (100, False),
        (400, False),
        (404, False),
        (1400, False),
        (1404, False),
        (103, True),
        (200, True),
        (1200, True),
        (9000, True),
        (4321, True),
    ],
)
async def test_send_failed_retcode_flags(
    server: OneBotStandIn, retcode: int, retryable: bool
) -> None:
    server.script.append(ScriptedResponse(retcode=retcode))
    error = await send_and_capture(server, outbox_message())

    assert error.retryable is retryable
    assert not error.config_error
    assert not error.maybe_delivered
    assert str(retcode) in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (404, False), (406, False), (429, True), (500, True), (502, True), (503, True)],
)
async def test_send_http_status_flags(server: OneBotStandIn, status: int, retryable: bool) -> None:
    server.script.append(ScriptedResponse(http_status=status))
    error = await send_and_capture(server, outbox_message())

    assert error.retryable is retryable
    assert not error.config_error
    assert not error.maybe_delivered


@pytest.mark.anyio
async def test_send_retry_after_header(server: OneBotStandIn) -> None:
    server.script.append(ScriptedResponse(http_status=503, headers={"Retry-After": "7"}))
    error = await send_and_capture(server, outbox_message())

    assert error.retryable
    assert error.retry_after == 7.0


@pytest.mark.anyio
async def test_send_timeout_maybe_delivered(server: OneBotStandIn) -> None:
    server.script.append(ScriptedResponse(delay=5.0))
    error = await send_and_capture(server, outbox_message(), timeout=0.2)

    assert error.retryable
    assert error.maybe_delivered
    assert "0.2 s" in str(error)
    assert len(server.messages) == 1


@pytest.mark.anyio
async def test_send_connection_refused_retryable() -> None:
    options = {"api_url": f"http://127.0.0.1:{unused_port()}", "timeout": 2.0}
    async with started_channel(options) as channel:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(outbox_message())

    assert caught.value.retryable
    assert not caught.value.maybe_delivered
    assert not caught.value.config_error


@pytest.mark.anyio
async def test_send_connection_closed_maybe_delivered(server: OneBotStandIn) -> None:
    server.script.append(ScriptedResponse(close_connection=True))
    error = await send_and_capture(server, outbox_message())

    assert error.retryable
    assert error.maybe_delivered


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body", ["<html>It works!</html>", "", "[1, 2]", '{"status": "ok", "retcode": "x"}']
)
async def test_send_non_onebot_answer_is_config_error(server: OneBotStandIn, body: str) -> None:
    server.script.append(ScriptedResponse(raw_body=body))
    error = await send_and_capture(server, outbox_message())

    assert error.config_error
    assert not error.retryable
    assert "api_url" in str(error)


@pytest.mark.anyio
async def test_send_error_detail_redacts_token(server: OneBotStandIn) -> None:
    answer = {"status": "failed", "retcode": 103, "message": f"rejected token {TOKEN}"}
    server.script.append(ScriptedResponse(raw_body=json.dumps(answer)))
    error = await send_and_capture(server, outbox_message())

    assert error.retryable
    assert "rejected token ***" in str(error)
    assert TOKEN not in str(error)


@pytest.mark.anyio
async def test_send_http_error_body_redacts_token(server: OneBotStandIn) -> None:
    server.script.append(ScriptedResponse(http_status=500, raw_body=f"bad {TOKEN}"))
    error = await send_and_capture(server, outbox_message())

    assert error.retryable
    assert TOKEN not in str(error)


@pytest.mark.anyio
async def test_send_recovers_after_scripted_failure(server: OneBotStandIn) -> None:
    server.script.append(ScriptedResponse(http_status=500))
    async with started_channel(options_for(server)) as channel:
        with pytest.raises(DeliveryError):
            await channel.send(outbox_message())
        await channel.send(outbox_message())

    assert len(server.messages) == 1


@pytest.mark.anyio
async def test_send_seeded_failure_ratio() -> None:
    errors: list[DeliveryError] = []
    async with (
        OneBotStandIn(token=TOKEN, failure_ratio=0.5, seed=7) as flaky,
        started_channel(options_for(flaky)) as channel,
    ):
        for index in range(20):
            try:
                await channel.send(outbox_message(f"message {index}"))
            except DeliveryError as exc:
                errors.append(exc)

    assert 0 < len(errors) < 20
    assert all(error.retryable for error in errors)
    assert len(flaky.messages) == 20 - len(errors)


# Chat keys


@pytest.mark.anyio
@pytest.mark.parametrize(
    "chat_key",
    [
        "onebot_v11-channel_1",
        "onebot_v11-group_abc",
        "onebot_v11-group_",
        "onebot_v11-group_0",
        "onebot_v11-group_١٢٣",
        "onebot_v11-group_-5",
        "onebot_v11-GROUP_1",
        "onebot_v11-group_99999999999999999999",
        pytest.param("onebot_v11-group_" + "9" * 5000, id="5000-digit-id"),
        "no-dash-target",
        "nodash",
    ],
)
async def test_send_invalid_chat_key_permanent(server: OneBotStandIn, chat_key: str) -> None:
    error = await send_and_capture(server, outbox_message(chat_key=chat_key))

    assert not error.retryable
    assert chat_key in str(error)
    assert server.request_count == 0


# Configuration


def test_factory_defaults() -> None:
    channel = build_channel({"api_url": "http://127.0.0.1:3000"})

    assert channel.name == "qq"
    assert channel.max_length == 1500
    assert channel.min_interval == 1.0
    assert channel.rate_per_minute == 60


def test_factory_missing_api_url() -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({})

    assert caught.value.problems[0][0] == "channels.qq.api_url"


@pytest.mark.parametrize("api_url", ["127.0.0.1:3000", "ftp://host/", "http://", ""])
def test_factory_invalid_api_url(api_url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({"api_url": api_url})

    assert caught.value.problems[0][0] == "channels.qq.api_url"


@pytest.mark.parametrize(
    ("key", "value"),
    [("timeout", 0), ("max_length", -1), ("min_interval", -0.5), ("rate_per_minute", -1)],
)
def test_factory_invalid_limits(key: str, value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({"api_url": "http://127.0.0.1:3000", key: value})

    assert caught.value.problems[0][0] == f"channels.qq.{key}"


def test_factory_unknown_option() -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({"api_url": "http://127.0.0.1:3000", "acess_token": TOKEN})

    assert caught.value.problems[0][0] == "channels.qq.acess_token"
    assert TOKEN not in str(caught.value)


def test_factory_token_of_wrong_type_not_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({"api_url": "http://127.0.0.1:3000", "access_token": 123456789})

    assert caught.value.problems[0][0] == "channels.qq.access_token"
    assert "123456789" not in str(caught.value)


def test_repr_hides_token() -> None:
    channel = build_channel({"api_url": "http://127.0.0.1:3000", "access_token": TOKEN})

    assert TOKEN not in repr(channel)
    assert TOKEN not in repr(OneBotV11Options(api_url="http://x", access_token=TOKEN))
