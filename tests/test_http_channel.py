"""Tests of the http channel against the webhook receiver stand-in on loopback."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from multidict import CIMultiDict, CIMultiDictProxy
from standardwebhooks import Webhook

from core.channels import channel_kinds
from core.errors import ConfigError, DeliveryError
from core.http_channel import HttpChannel, HttpChannelOptions, parse_retry_after
from core.records import OutboxMessage
from tests.standins import ScriptedResponse
from tests.standins.receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"plughook-test-signing-key-32byte").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-signing-key-of-32-bytes!").decode()
CHAT_KEY = "ops-alerts"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(secret=SECRET) as standin:
        yield standin


def build_channel(options: Mapping[str, Any]) -> HttpChannel:
    channel = channel_kinds()["http"]("ops", options)
    assert isinstance(channel, HttpChannel)
    return channel


@contextlib.asynccontextmanager
async def started(channel: HttpChannel) -> AsyncIterator[HttpChannel]:
    await channel.start()
    try:
        yield channel
    finally:
        await channel.close()


def options_for(receiver: WebhookReceiver, **overrides: Any) -> dict[str, Any]:
    return {"url": receiver.hook_url, "secret": SECRET, "timeout": 2.0, **overrides}


def outbox_message(text: str = "disk full on db-1", message_id: str = "msg-1") -> OutboxMessage:
    return OutboxMessage(id=message_id, chat_key=CHAT_KEY, text=text, created_at=0.0, plugin="test")


async def send_and_capture(receiver: WebhookReceiver, **overrides: Any) -> DeliveryError:
    async with started(build_channel(options_for(receiver, **overrides))) as channel:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(outbox_message())
    return caught.value


# Delivery and signing


@pytest.mark.anyio
async def test_send_signed_post_verified(receiver: WebhookReceiver) -> None:
    async with started(build_channel(options_for(receiver))) as channel:
        await channel.send(outbox_message("[CQ:at,qq=all] 😀\nline 2"))

    assert receiver.rejected == []
    assert len(receiver.posts) == 1
    assert receiver.posts[0].payload == {
        "chat_key": CHAT_KEY,
        "text": "[CQ:at,qq=all] 😀\nline 2",
        "message_id": "msg-1",
    }


@pytest.mark.anyio
async def test_send_body_is_utf8_json(receiver: WebhookReceiver) -> None:
    async with started(build_channel(options_for(receiver))) as channel:
        await channel.send(outbox_message("构建 😀"))

    assert "构建 😀".encode() in receiver.posts[0].body


@pytest.mark.anyio
async def test_send_webhook_id_is_message_id(receiver: WebhookReceiver) -> None:
    async with started(build_channel(options_for(receiver))) as channel:
        await channel.send(outbox_message(message_id="msg-42"))

    assert receiver.posts[0].headers["webhook-id"] == "msg-42"
    assert receiver.posts[0].headers["content-type"] == "application/json"


@pytest.mark.anyio
async def test_send_repeat_detected_as_duplicate(receiver: WebhookReceiver) -> None:
    async with started(build_channel(options_for(receiver))) as channel:
        await channel.send(outbox_message(message_id="msg-7"))
        await channel.send(outbox_message(message_id="msg-7"))

    assert receiver.duplicates == ["msg-7"]


@pytest.mark.anyio
async def test_send_signature_with_fixed_clock() -> None:
    now = 1_700_000_000
    async with WebhookReceiver() as unsigned_receiver:
        options = HttpChannelOptions(url=unsigned_receiver.hook_url, secret=SECRET)
        async with started(HttpChannel("ops", options, clock=lambda: now + 0.9)) as channel:
            await channel.send(outbox_message())

    post = unsigned_receiver.posts[0]
    expected = Webhook(SECRET).sign("msg-1", datetime.fromtimestamp(now, UTC), post.body)
    assert post.headers["webhook-timestamp"] == str(now)
    assert post.headers["webhook-signature"] == expected


@pytest.mark.anyio
async def test_send_unsigned_without_secret() -> None:
    async with WebhookReceiver() as unsigned_receiver:
        options = {"url": unsigned_receiver.hook_url}
        async with started(build_channel(options)) as channel:
            await channel.send(outbox_message())

    assert "webhook-signature" not in unsigned_receiver.posts[0].headers


@pytest.mark.anyio
async def test_send_extra_headers(receiver: WebhookReceiver) -> None:
    headers = {"Authorization": "Bearer receiver-token"}
    async with started(build_channel(options_for(receiver, headers=headers))) as channel:
        await channel.send(outbox_message())

    assert receiver.posts[0].headers["authorization"] == "Bearer receiver-token"


@pytest.mark.anyio
async def test_send_wrong_secret_is_config_error(receiver: WebhookReceiver) -> None:
    error = await send_and_capture(receiver, secret=OTHER_SECRET)

    assert error.config_error
    assert not error.retryable
    assert "'ops'" in str(error)
    assert OTHER_SECRET not in str(error)
    assert len(receiver.rejected) == 1


@pytest.mark.anyio
async def test_send_unsigned_to_verifying_receiver(receiver: WebhookReceiver) -> None:
    error = await send_and_capture(receiver, secret="")

    assert error.config_error
    assert receiver.posts == []


@pytest.mark.anyio
async def test_send_before_start_raises() -> None:
    channel = build_channel({"url": "http://127.0.0.1:9/hook"})
    with pytest.raises(RuntimeError, match="not started"):
        await channel.send(outbox_message())


# Failures and their retry flags


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "retryable", "config_error"),
    [
        (408, True, False),
        (429, True, False),
        (500, True, False),
        (502, True, False),
        (503, True, False),
        (400, False, False),
        (404, False, False),
        (410, False, False),
        (422, False, False),
        (302, False, False),
        (401, False, True),
        (403, False, True),
    ],
)
async def test_send_http_status_flags(
    receiver: WebhookReceiver, status: int, retryable: bool, config_error: bool
) -> None:
    receiver.script.append(ScriptedResponse(http_status=status))
    error = await send_and_capture(receiver)

    assert error.retryable is retryable
    assert error.config_error is config_error
    assert not error.maybe_delivered
    assert f"HTTP {status}" in str(error)


@pytest.mark.anyio
async def test_send_accepts_any_2xx(receiver: WebhookReceiver) -> None:
    receiver.script.append(ScriptedResponse(http_status=202))
    async with started(build_channel(options_for(receiver))) as channel:
        await channel.send(outbox_message())

    assert len(receiver.posts) == 1


@pytest.mark.anyio
async def test_send_retry_after_seconds(receiver: WebhookReceiver) -> None:
    receiver.script.append(ScriptedResponse(http_status=429, headers={"Retry-After": "30"}))
    error = await send_and_capture(receiver)

    assert error.retryable
    assert error.retry_after == 30.0


@pytest.mark.anyio
async def test_send_timeout_maybe_delivered(receiver: WebhookReceiver) -> None:
    receiver.script.append(ScriptedResponse(delay=5.0))
    error = await send_and_capture(receiver, timeout=0.2)

    assert error.retryable
    assert error.maybe_delivered
    assert len(receiver.posts) == 1


@pytest.mark.anyio
async def test_send_connection_refused_retryable() -> None:
    channel = build_channel({"url": f"http://127.0.0.1:{unused_port()}/hook"})
    async with started(channel):
        with pytest.raises(DeliveryError) as caught:
            await channel.send(outbox_message())

    assert caught.value.retryable
    assert not caught.value.maybe_delivered


@pytest.mark.anyio
async def test_send_connection_closed_maybe_delivered(receiver: WebhookReceiver) -> None:
    receiver.script.append(ScriptedResponse(close_connection=True))
    error = await send_and_capture(receiver)

    assert error.retryable
    assert error.maybe_delivered


# Retry-After parsing


def headers_with(value: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({"Retry-After": value}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), ("0", 0.0), (" 5 ", 5.0), ("", None), ("soon", None), ("-3", None)],
)
def test_parse_retry_after_values(value: str, expected: float | None) -> None:
    assert parse_retry_after(headers_with(value)) == expected


def test_parse_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    delay = parse_retry_after(headers_with(when))

    assert delay is not None
    assert 55 <= delay <= 61


def test_parse_retry_after_past_date() -> None:
    assert parse_retry_after(headers_with("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0


def test_parse_retry_after_missing() -> None:
    assert parse_retry_after(CIMultiDictProxy(CIMultiDict())) is None


# Configuration


def test_factory_defaults() -> None:
    channel = build_channel({"url": "https://hooks.example.test/plughook"})

    assert channel.max_length == 0
    assert channel.min_interval == 0.0
    assert channel.rate_per_minute == 0


@pytest.mark.parametrize("secret", ["whsec_a", "whsec_", "whsec_!!!!", "not base64 at all?"])
def test_factory_invalid_secret(secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({"url": "http://127.0.0.1:9/hook", "secret": secret})

    assert caught.value.problems[0][0] == "channels.ops.secret"


def test_factory_invalid_secret_not_shown() -> None:
    secret = "whsec_my-Secret-Value!"
    with pytest.raises(ConfigError) as caught:
        build_channel({"url": "http://127.0.0.1:9/hook", "secret": secret})

    assert "my-Secret-Value" not in str(caught.value)


def test_factory_secret_without_prefix() -> None:
    unprefixed = SECRET.removeprefix("whsec_")
    channel = build_channel({"url": "http://127.0.0.1:9/hook", "secret": unprefixed})

    assert channel.name == "ops"


@pytest.mark.parametrize("url", ["hooks.example.test/x", "mailto:ops@example.test", ""])
def test_factory_invalid_url(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({"url": url})

    assert caught.value.problems[0][0] == "channels.ops.url"


def test_factory_invalid_timeout() -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({"url": "http://127.0.0.1:9/hook", "timeout": -1})

    assert caught.value.problems[0][0] == "channels.ops.timeout"


def test_factory_header_of_wrong_type() -> None:
    with pytest.raises(ConfigError) as caught:
        build_channel({"url": "http://127.0.0.1:9/hook", "headers": {"X-Count": 3}})

    assert caught.value.problems[0][0].startswith("channels.ops.headers")


def test_repr_hides_secret() -> None:
    channel = build_channel({"url": "http://127.0.0.1:9/hook", "secret": SECRET})

    assert SECRET not in repr(channel)


def test_repr_hides_headers() -> None:
    headers = {"Authorization": "Bearer receiver-token"}
    channel = build_channel({"url": "http://127.0.0.1:9/hook", "headers": headers})

    assert "receiver-token" not in repr(channel)


@pytest.mark.anyio
async def test_send_error_body_redacts_secret(receiver: WebhookReceiver) -> None:
    # The secret straddles the 200-character cut of the quoted body.
    receiver.script.append(ScriptedResponse(http_status=500, raw_body="x" * 190 + SECRET))
    error = await send_and_capture(receiver)

    assert SECRET[:10] not in str(error)
