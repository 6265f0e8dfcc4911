"""The feishu, dingtalk, wecom, telegram and discord channels against their stand-ins.

Each stand-in (tests/standins/) checks requests and signatures as its platform
does and responds with the platform's error codes. Signatures are computed
with a fixed clock injected into the channel; the stand-in checks them
against its own clock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import core.outbox
from core import Settings, WebhookApp
from core.channels import Channel, channel_kinds
from core.dingtalk import DingTalkBot, DingTalkChannel, DingTalkOptions
from core.discord import DiscordBot, DiscordChannel, DiscordOptions
from core.errors import ConfigError, DeliveryError
from core.feishu import FeishuBot, FeishuChannel, FeishuOptions
from core.records import OutboxMessage
from core.settings import OutboxSettings
from core.splitting import LengthUnit, text_length
from core.telegram import TelegramChannel, TelegramOptions
from core.wecom import CONTENT_LIMITS, WeComBot, WeComChannel, WeComOptions
from tests.standins import ScriptedResponse
from tests.standins.dingtalk import DingTalkStandIn
from tests.standins.discord import DiscordStandIn
from tests.standins.feishu import FeishuStandIn
from tests.standins.telegram import TelegramStandIn
from tests.standins.wecom import WeComStandIn

# A fixed Unix time for signatures; the stand-ins check it against their clock.
FIXED_NOW = 1_700_000_000.0
FEISHU_HOOK = "2f0c5d1e-7a4b-4c2e-9d1f-0a1b2c3d4e5f"
FEISHU_SECRET = "feishu-signing-secret"
DINGTALK_TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
DINGTALK_SECRET = "SECdingtalk-signing-secret"
WECOM_KEY = "693a91f6-7aoc-4bc4-97a0-0ec2sifa5aaa"
TELEGRAM_TOKEN = "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-Ew"
DISCORD_ID = "112233445566778899"
DISCORD_TOKEN = "wh-token-aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
GROUP_ID = -1001234567890
PRIVATE_ID = 42
FAST_RETRIES = OutboxSettings(base_delay=0.01, max_delay=0.05, max_attempts=12)
# A family emoji: four code points joined by three zero-width joiners.
FAMILY = "👨\u200d👩\u200d👧\u200d👦"
# The "(1/2) " prefixes of a split part; a part split again has two.
PART_PREFIXES = re.compile(r"^(?:\(\d+/\d+\) )+")


def outbox_message(chat_key: str, text: str = "hello", message_id: str = "m1") -> OutboxMessage:
    return OutboxMessage(id=message_id, chat_key=chat_key, text=text, created_at=0.0)


@contextlib.asynccontextmanager
async def started(channel: Channel) -> AsyncIterator[Channel]:
    await channel.start()
    try:
        yield channel
    finally:
        await channel.close()


async def send_error(channel: Channel, message: OutboxMessage) -> DeliveryError:
    async with started(channel):
        with pytest.raises(DeliveryError) as caught:
            await channel.send(message)
    return caught.value


def fixed_clock(value: float = FIXED_NOW) -> Callable[[], float]:
    return lambda: value


def at_fixed_now() -> float:
    return FIXED_NOW


def feishu_channel(
    url: str, *, secret: str = "", clock: Callable[[], float] = at_fixed_now, bot: str = "ops"
) -> FeishuChannel:
    options = FeishuOptions(bots={bot: FeishuBot(url, secret)}, timeout=2.0)
    return FeishuChannel("feishu", options, clock=clock)


def dingtalk_channel(
    url: str,
    *,
    secret: str = DINGTALK_SECRET,
    clock: Callable[[], float] = at_fixed_now,
    bot: str = "ops",
) -> DingTalkChannel:
    options = DingTalkOptions(bots={bot: DingTalkBot(url, secret)}, timeout=2.0)
    return DingTalkChannel("dingtalk", options, clock=clock)


def wecom_channel(url: str, *, msgtype: str = "text", **bot_fields: list[str]) -> WeComChannel:
    bots = {"ops": WeComBot(url, **bot_fields)}
    limit = CONTENT_LIMITS[msgtype]
    options = WeComOptions(bots=bots, msgtype=msgtype, timeout=2.0, max_length=limit)
    return WeComChannel("wecom", options)


def telegram_channel(api_base: str, token: str = TELEGRAM_TOKEN) -> TelegramChannel:
    return TelegramChannel("telegram", TelegramOptions(token=token, api_base=api_base, timeout=2.0))


def discord_channel(url: str, **options: Any) -> DiscordChannel:
    bots = {"alerts": DiscordBot(url)}
    return DiscordChannel("discord", DiscordOptions(bots=bots, **{"timeout": 2.0, **options}))


def assert_permanent(error: DeliveryError, *, config_error: bool) -> None:
    assert not error.retryable
    assert error.config_error is config_error
    assert error.retry_after is None
    assert not error.maybe_delivered


# Feishu


@pytest.fixture
async def feishu() -> AsyncIterator[FeishuStandIn]:
    async with FeishuStandIn(clock=fixed_clock(FIXED_NOW + 120)) as standin:
        yield standin


@pytest.mark.anyio
async def test_feishu_send_text_unsigned(feishu: FeishuStandIn) -> None:
    url = feishu.add_bot(FEISHU_HOOK)
    async with started(feishu_channel(url)) as channel:
        await channel.send(outbox_message("feishu-ops", "构建通过 ✅"))

    [received] = feishu.messages
    assert received.payload == {"msg_type": "text", "content": {"text": "构建通过 ✅"}}


@pytest.mark.anyio
async def test_feishu_signature_verified_by_standin(feishu: FeishuStandIn) -> None:
    url = feishu.add_bot(FEISHU_HOOK, secret=FEISHU_SECRET)
    async with started(feishu_channel(url, secret=FEISHU_SECRET)) as channel:
        await channel.send(outbox_message("feishu-ops"))

    [received] = feishu.messages
    assert received.payload["timestamp"] == str(int(FIXED_NOW))
    assert feishu.answered == []


@pytest.mark.anyio
async def test_feishu_wrong_secret_is_config_error(feishu: FeishuStandIn) -> None:
    url = feishu.add_bot(FEISHU_HOOK, secret=FEISHU_SECRET)
    error = await send_error(
        feishu_channel(url, secret="not-the-secret"), outbox_message("feishu-ops")
    )

    assert_permanent(error, config_error=True)
    assert "19021" in str(error)
    assert "bots.ops.secret" in str(error)
    assert "not-the-secret" not in str(error)
    assert feishu.messages == []


@pytest.mark.anyio
async def test_feishu_secret_hint_quotes_the_bot_name(feishu: FeishuStandIn) -> None:
    url = feishu.add_bot(FEISHU_HOOK, secret=FEISHU_SECRET)
    channel = feishu_channel(url, secret="not-the-secret", bot="运维群")
    error = await send_error(channel, outbox_message("feishu-运维群"))

    assert_permanent(error, config_error=True)
    assert 'check bots."运维群".secret' in str(error)


@pytest.mark.anyio
async def test_feishu_stale_timestamp_is_config_error(feishu: FeishuStandIn) -> None:
    url = feishu.add_bot(FEISHU_HOOK, secret=FEISHU_SECRET)
    stale = feishu_channel(url, secret=FEISHU_SECRET, clock=fixed_clock(FIXED_NOW - 3700))
    error = await send_error(stale, outbox_message("feishu-ops"))

    assert_permanent(error, config_error=True)
    assert "19021" in str(error)


@pytest.mark.anyio
async def test_feishu_missing_keyword_is_config_error(feishu: FeishuStandIn) -> None:
    url = feishu.add_bot(FEISHU_HOOK, keywords=("告警",))
    error = await send_error(feishu_channel(url), outbox_message("feishu-ops", "deploy done"))

    assert_permanent(error, config_error=True)
    assert "19024" in str(error)
    assert "keyword" in str(error)


@pytest.mark.anyio
async def test_feishu_rate_limited_is_retryable(feishu: FeishuStandIn) -> None:
    url = feishu.add_bot(FEISHU_HOOK)
    feishu.fail_next(11232)
    error = await send_error(feishu_channel(url), outbox_message("feishu-ops"))

    assert error.retryable
    assert not error.config_error
    # Feishu names no delay: the outbox's backoff applies.
    assert error.retry_after is None
    assert "11232" in str(error)


@pytest.mark.anyio
async def test_feishu_at_tags_do_not_mention(feishu: FeishuStandIn) -> None:
    url = feishu.add_bot(FEISHU_HOOK)
    text = '<at user_id="all">所有人</at> and <AT user_id="ou_1">Li</AT>'
    async with started(feishu_channel(url)) as channel:
        await channel.send(outbox_message("feishu-ops", text))

    [received] = feishu.messages
    assert "<at" not in received.text.lower()
    assert received.text.replace("\u200b", "") == text


@pytest.mark.anyio
async def test_feishu_default_max_length_keeps_body_under_20kb(feishu: FeishuStandIn) -> None:
    # Control characters are the worst case: JSON writes each as 6 bytes.
    url = feishu.add_bot(FEISHU_HOOK, secret=FEISHU_SECRET)
    channel = feishu_channel(url, secret=FEISHU_SECRET)
    text = "\x01" * channel.max_length
    async with started(channel):
        await channel.send(outbox_message("feishu-ops", text))

    assert feishu.messages[0].text == text
    assert 18_000 < feishu.largest_body <= 20_000


# DingTalk


@pytest.fixture
async def dingtalk() -> AsyncIterator[DingTalkStandIn]:
    async with DingTalkStandIn(clock=fixed_clock(FIXED_NOW + 120)) as standin:
        yield standin


@pytest.mark.anyio
async def test_dingtalk_send_signed_text(dingtalk: DingTalkStandIn) -> None:
    url = dingtalk.add_robot(DINGTALK_TOKEN, secret=DINGTALK_SECRET)
    async with started(dingtalk_channel(url)) as channel:
        await channel.send(outbox_message("dingtalk-ops", "部署完成 @13800000000"))

    [received] = dingtalk.messages
    assert received.payload == {"msgtype": "text", "text": {"content": "部署完成 @13800000000"}}
    assert received.query["timestamp"] == str(int(FIXED_NOW * 1000))
    assert received.query["access_token"] == DINGTALK_TOKEN


@pytest.mark.anyio
async def test_dingtalk_signs_every_send_afresh(dingtalk: DingTalkStandIn) -> None:
    url = dingtalk.add_robot(DINGTALK_TOKEN, secret=DINGTALK_SECRET)
    times = iter([FIXED_NOW, FIXED_NOW + 1.5, FIXED_NOW + 3.25])
    async with started(dingtalk_channel(url, clock=lambda: next(times))) as channel:
        for index in range(3):
            await channel.send(outbox_message("dingtalk-ops", f"m{index}"))

    stamps = [m.query["timestamp"] for m in dingtalk.messages]
    assert stamps == ["1700000000000", "1700000001500", "1700000003250"]
    assert len({m.query["sign"] for m in dingtalk.messages}) == 3


@pytest.mark.anyio
async def test_dingtalk_wrong_secret_is_config_error(dingtalk: DingTalkStandIn) -> None:
    url = dingtalk.add_robot(DINGTALK_TOKEN, secret=DINGTALK_SECRET)
    error = await send_error(
        dingtalk_channel(url, secret="SECwrong"), outbox_message("dingtalk-ops")
    )

    assert_permanent(error, config_error=True)
    assert "310000" in str(error)
    assert "SECwrong" not in str(error)


@pytest.mark.anyio
async def test_dingtalk_secret_hint_quotes_the_bot_name(dingtalk: DingTalkStandIn) -> None:
    url = dingtalk.add_robot(DINGTALK_TOKEN, secret=DINGTALK_SECRET)
    channel = dingtalk_channel(url, secret="SECwrong", bot="运维群")
    error = await send_error(channel, outbox_message("dingtalk-运维群"))

    assert_permanent(error, config_error=True)
    assert 'check bots."运维群".secret' in str(error)


@pytest.mark.anyio
async def test_dingtalk_unsigned_request_is_config_error(
    dingtalk: DingTalkStandIn,
) -> None:
    url = dingtalk.add_robot(DINGTALK_TOKEN, secret=DINGTALK_SECRET)
    error = await send_error(dingtalk_channel(url, secret=""), outbox_message("dingtalk-ops"))

    assert_permanent(error, config_error=True)


@pytest.mark.anyio
async def test_dingtalk_too_fast_retries_after_throttle(dingtalk: DingTalkStandIn) -> None:
    url = dingtalk.add_robot(DINGTALK_TOKEN, secret=DINGTALK_SECRET)
    dingtalk.fail_next(130101)
    error = await send_error(dingtalk_channel(url), outbox_message("dingtalk-ops"))

    assert error.retryable
    assert not error.config_error
    assert error.retry_after == 600.0
    assert "130101" in str(error)


@pytest.mark.anyio
async def test_dingtalk_over_the_limit_then_redirected_while_throttled() -> None:
    # The channel sends directly here, without the outbox's pacing.
    async with DingTalkStandIn() as standin:
        url = standin.add_robot(DINGTALK_TOKEN)
        errors: list[DeliveryError] = []
        async with started(dingtalk_channel(url, secret="", clock=fixed_clock())) as channel:
            for index in range(22):
                try:
                    await channel.send(outbox_message("dingtalk-ops", f"m{index}"))
                except DeliveryError as exc:
                    errors.append(exc)

    assert len(standin.messages) == 20
    assert standin.answered == [130101]
    assert standin.redirected == 1
    assert [e.retry_after for e in errors] == [600.0, 600.0]
    assert all(e.retryable for e in errors)


@pytest.mark.anyio
async def test_dingtalk_unknown_token_is_config_error(dingtalk: DingTalkStandIn) -> None:
    dingtalk.add_robot(DINGTALK_TOKEN)
    url = f"{dingtalk.url}/robot/send?access_token=0000"
    error = await send_error(dingtalk_channel(url, secret=""), outbox_message("dingtalk-ops"))

    assert_permanent(error, config_error=True)
    assert "300001" in str(error)


@pytest.mark.anyio
async def test_dingtalk_message_too_long_is_permanent(dingtalk: DingTalkStandIn) -> None:
    url = dingtalk.add_robot(DINGTALK_TOKEN, secret=DINGTALK_SECRET)
    dingtalk.fail_next(460101)
    error = await send_error(dingtalk_channel(url), outbox_message("dingtalk-ops"))

    assert_permanent(error, config_error=False)
    assert "max_length" in str(error)


# WeCom


@pytest.fixture
async def wecom() -> AsyncIterator[WeComStandIn]:
    async with WeComStandIn() as standin:
        yield standin


@pytest.mark.anyio
async def test_wecom_send_text_mentions_nobody(wecom: WeComStandIn) -> None:
    url = wecom.add_robot(WECOM_KEY)
    text = "发布完成 <@zhangsan> @all"
    async with started(wecom_channel(url)) as channel:
        await channel.send(outbox_message("wecom-ops", text))

    [received] = wecom.messages
    assert received.payload["msgtype"] == "text"
    assert set(received.payload["text"]) == {"content"}
    assert received.mentioned == []
    assert received.content.replace("\u200b", "") == text


@pytest.mark.anyio
async def test_wecom_mentions_only_what_the_robot_asks_for(wecom: WeComStandIn) -> None:
    url = wecom.add_robot(WECOM_KEY)
    channel = wecom_channel(url, mentioned_list=["@all"], mentioned_mobile_list=["13800001111"])
    async with started(channel):
        await channel.send(outbox_message("wecom-ops", "oncall: <@lisi>"))

    assert wecom.messages[0].mentioned == ["@all", "13800001111"]


@pytest.mark.anyio
async def test_wecom_markdown(wecom: WeComStandIn) -> None:
    url = wecom.add_robot(WECOM_KEY)
    async with started(wecom_channel(url, msgtype="markdown")) as channel:
        await channel.send(outbox_message("wecom-ops", '**构建** <font color="info">ok</font>'))

    [received] = wecom.messages
    assert received.payload == {
        "msgtype": "markdown",
        "markdown": {"content": '**构建** <font color="info">ok</font>'},
    }


@pytest.mark.anyio
async def test_wecom_rate_limited_retries_after_a_minute(wecom: WeComStandIn) -> None:
    url = wecom.add_robot(WECOM_KEY)
    wecom.fail_next(45009)
    error = await send_error(wecom_channel(url), outbox_message("wecom-ops"))

    assert error.retryable
    assert not error.config_error
    assert error.retry_after == 60.0
    assert "45009" in str(error)


@pytest.mark.anyio
async def test_wecom_too_long_is_split_and_delivered() -> None:
    # The stand-in counts a smaller limit than the channel, as a platform
    # that changed its limit would: 40058 makes the channel send halves.
    text = "\n".join(f"第{index}行 line {index}" for index in range(120))
    async with WeComStandIn(content_limits={"text": 1000, "markdown": 4096}) as standin:
        url = standin.add_robot(WECOM_KEY)
        async with started(wecom_channel(url)) as channel:
            await channel.send(outbox_message("wecom-ops", text))

    parts = [m.content for m in standin.messages]
    assert standin.answered[0] == 40058
    assert all(len(part.encode()) <= 1000 for part in parts)
    assert "".join(PART_PREFIXES.sub("", part) for part in parts) == text


@pytest.mark.anyio
async def test_wecom_retry_after_split_resends_only_missing_parts() -> None:
    text = "x" * 1500
    ok = ScriptedResponse(raw_body=json.dumps({"errcode": 0, "errmsg": "ok"}))
    async with WeComStandIn(content_limits={"text": 1000, "markdown": 4096}) as standin:
        url = standin.add_robot(WECOM_KEY)
        standin.script.extend([ok, ScriptedResponse(http_status=502)])
        async with started(wecom_channel(url)) as channel:
            with pytest.raises(DeliveryError) as caught:
                await channel.send(outbox_message("wecom-ops", text))
            await channel.send(outbox_message("wecom-ops", text))

    assert caught.value.retryable
    # Halves of 750 bytes leave room for 744 x's each, so three parts. Requests:
    # the whole text (40058), part 1 (ok), part 2 (502); then parts 2 and 3.
    assert standin.request_count == 5
    assert [m.content[:6] for m in standin.messages] == ["(2/3) ", "(3/3) "]


# Telegram


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn(token=TELEGRAM_TOKEN) as standin:
        standin.add_chat(GROUP_ID)
        standin.add_chat(PRIVATE_ID)
        standin.add_chat("@plughook_news")
        yield standin


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("chat_key", "chat_id"),
    [
        (f"telegram-{GROUP_ID}", GROUP_ID),
        (f"telegram-{PRIVATE_ID}", PRIVATE_ID),
        ("telegram-@plughook_news", "@plughook_news"),
    ],
    ids=["group", "private", "channel-username"],
)
async def test_telegram_send_plain_text(
    telegram: TelegramStandIn, chat_key: str, chat_id: int | str
) -> None:
    text = "*not bold* <b>not html</b> [link](http://x)"
    async with started(telegram_channel(telegram.url)) as channel:
        await channel.send(outbox_message(chat_key, text))

    [received] = telegram.messages
    assert received.payload == {"chat_id": chat_id, "text": text}


@pytest.mark.anyio
async def test_telegram_flood_wait_retries_after_the_given_seconds(
    telegram: TelegramStandIn,
) -> None:
    telegram.fail_next(429, "Too Many Requests: retry after 7", retry_after=7)
    error = await send_error(telegram_channel(telegram.url), outbox_message(f"telegram-{GROUP_ID}"))

    assert error.retryable
    assert not error.config_error
    assert error.retry_after == 7.0


@pytest.mark.anyio
async def test_telegram_chat_not_found_is_permanent(telegram: TelegramStandIn) -> None:
    error = await send_error(telegram_channel(telegram.url), outbox_message("telegram--100777"))

    assert_permanent(error, config_error=False)
    assert "chat not found" in str(error)


@pytest.mark.anyio
async def test_telegram_migrated_group_names_the_new_chat_key(telegram: TelegramStandIn) -> None:
    telegram.add_chat(-4001, migrate_to=-1009998887776)
    error = await send_error(telegram_channel(telegram.url), outbox_message("telegram--4001"))

    assert_permanent(error, config_error=False)
    assert "'telegram--1009998887776'" in str(error)


@pytest.mark.anyio
async def test_telegram_blocked_by_user_is_permanent(telegram: TelegramStandIn) -> None:
    telegram.add_chat(77, blocked=True)
    error = await send_error(telegram_channel(telegram.url), outbox_message("telegram-77"))

    assert_permanent(error, config_error=False)
    assert "403" in str(error)


WRONG_TOKEN = "987654321:ZZwrongTokenValue_-"


@pytest.mark.anyio
async def test_telegram_wrong_token_is_config_error(telegram: TelegramStandIn) -> None:
    channel = telegram_channel(telegram.url, token=WRONG_TOKEN)
    error = await send_error(channel, outbox_message(f"telegram-{GROUP_ID}"))

    assert_permanent(error, config_error=True)
    assert "401" in str(error)
    assert WRONG_TOKEN not in str(error)


@pytest.mark.anyio
async def test_telegram_token_never_logged(
    telegram: TelegramStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = {"kind": "telegram", "token": WRONG_TOKEN, "api_base": telegram.url}
    settings = Settings(outbox=FAST_RETRIES, channels={"telegram": table})
    app = WebhookApp([], data_dir=tmp_path, settings=settings)
    with caplog.at_level(logging.DEBUG):
        async with app.running():
            await deliver(app, f"telegram-{GROUP_ID}", ["never shown"])
            [dead] = await app.storage.outbox_list("dead", 10)

    # The stand-in's access log shows the request path, as Telegram's own would.
    ours = [r.getMessage() for r in caplog.records if r.name != "aiohttp.access"]
    assert any("configuration error" in line for line in ours)
    assert all(WRONG_TOKEN not in line for line in ours)
    assert "401" in dead.last_error
    assert WRONG_TOKEN not in dead.last_error


@pytest.mark.anyio
@pytest.mark.parametrize(
    "chat_key", ["telegram-group_1", "telegram-12ab", "telegram-@x", "telegram-" + "9" * 30]
)
async def test_telegram_invalid_chat_key_is_permanent(
    telegram: TelegramStandIn, chat_key: str
) -> None:
    error = await send_error(telegram_channel(telegram.url), outbox_message(chat_key))

    assert_permanent(error, config_error=False)
    assert chat_key in str(error)
    assert telegram.request_count == 0


@pytest.mark.anyio
async def test_telegram_server_error_is_retryable(telegram: TelegramStandIn) -> None:
    telegram.fail_next(502, "Bad Gateway")
    error = await send_error(telegram_channel(telegram.url), outbox_message(f"telegram-{GROUP_ID}"))

    assert error.retryable
    assert error.retry_after is None


def test_telegram_factory_rejects_malformed_token_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        channel_kinds()["telegram"]("telegram", {"token": "not a token"})

    assert [key for key, _ in caught.value.problems] == ["channels.telegram.token"]
    assert "not a token" not in str(caught.value)


# Discord


@pytest.fixture
async def discord() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as standin:
        yield standin


@pytest.mark.anyio
async def test_discord_send_pings_nobody(discord: DiscordStandIn) -> None:
    url = discord.add_webhook(DISCORD_ID, DISCORD_TOKEN)
    text = "@everyone deploy of <@123456> by <@&7890> failed"
    async with started(discord_channel(url)) as channel:
        await channel.send(outbox_message("discord-alerts", text))

    [received] = discord.messages
    assert received.payload == {"content": text, "allowed_mentions": {"parse": []}}
    assert received.pinged == []


@pytest.mark.anyio
async def test_discord_rate_limited_retries_after_the_given_seconds(
    discord: DiscordStandIn,
) -> None:
    url = discord.add_webhook(DISCORD_ID, DISCORD_TOKEN)
    body = {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}
    headers = {"Retry-After": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"}
    discord.fail_next(429, body, headers)
    error = await send_error(discord_channel(url), outbox_message("discord-alerts"))

    assert error.retryable
    assert not error.config_error
    assert error.retry_after == 1.5


@pytest.mark.anyio
async def test_discord_follows_bucket_headers(discord: DiscordStandIn) -> None:
    discord.time_scale = 0.05
    url = discord.add_webhook(DISCORD_ID, DISCORD_TOKEN)
    # No pacing of its own: only the X-RateLimit headers slow the channel down.
    channel = discord_channel(url, min_interval=0.0, rate_per_minute=0)
    async with started(channel):
        for index in range(12):
            await channel.send(outbox_message("discord-alerts", f"m{index}", f"id{index}"))

    assert len(discord.messages) == 12
    assert discord.answered == []


@pytest.mark.anyio
@pytest.mark.parametrize("which", ["unknown-webhook", "wrong-token"])
async def test_discord_bad_webhook_url_is_config_error(discord: DiscordStandIn, which: str) -> None:
    discord.add_webhook(DISCORD_ID, DISCORD_TOKEN)
    webhook_id, token = ("1", DISCORD_TOKEN) if which == "unknown-webhook" else (DISCORD_ID, "x")
    url = f"{discord.url}/api/webhooks/{webhook_id}/{token}"
    error = await send_error(discord_channel(url), outbox_message("discord-alerts"))

    assert_permanent(error, config_error=True)
    assert "bots.alerts.webhook_url" in str(error)


@pytest.mark.anyio
async def test_discord_too_long_is_permanent(discord: DiscordStandIn) -> None:
    url = discord.add_webhook(DISCORD_ID, DISCORD_TOKEN)
    error = await send_error(discord_channel(url), outbox_message("discord-alerts", "x" * 2001))

    assert_permanent(error, config_error=False)
    assert "50035" in str(error)


# Every channel: chat keys, secrets and configuration


StandIn = FeishuStandIn | DingTalkStandIn | WeComStandIn | TelegramStandIn | DiscordStandIn
Served = tuple[StandIn, Callable[[], dict[str, Any]], str]


@attrs.frozen
class Platform:
    """How to run one channel kind against its stand-in in the shared tests."""

    kind: str
    chat_key: str
    unit: LengthUnit
    limit: int
    # Makes the stand-in for a time scale; returns it, a function that
    # registers the bot and returns the channel table, and the credential.
    serve: Callable[[float], Served]


def _serve_feishu(scale: float) -> Served:
    standin = FeishuStandIn(time_scale=scale)

    def table() -> dict[str, Any]:
        url = standin.add_bot(FEISHU_HOOK, secret=FEISHU_SECRET)
        return {"bots": {"ops": {"webhook_url": url, "secret": FEISHU_SECRET}}}

    return standin, table, FEISHU_HOOK


def _serve_dingtalk(scale: float) -> Served:
    standin = DingTalkStandIn(time_scale=scale)

    def table() -> dict[str, Any]:
        url = standin.add_robot(DINGTALK_TOKEN, secret=DINGTALK_SECRET)
        return {"bots": {"ops": {"webhook_url": url, "secret": DINGTALK_SECRET}}}

    return standin, table, DINGTALK_TOKEN


def _serve_wecom(scale: float) -> Served:
    standin = WeComStandIn(time_scale=scale)

    def table() -> dict[str, Any]:
        return {"bots": {"ops": {"webhook_url": standin.add_robot(WECOM_KEY)}}}

    return standin, table, WECOM_KEY


def _serve_telegram(scale: float) -> Served:
    standin = TelegramStandIn(token=TELEGRAM_TOKEN, time_scale=scale)
    standin.add_chat(GROUP_ID)

    def table() -> dict[str, Any]:
        return {"token": TELEGRAM_TOKEN, "api_base": standin.url}

    return standin, table, TELEGRAM_TOKEN


def _serve_discord(scale: float) -> Served:
    standin = DiscordStandIn(time_scale=scale)

    def table() -> dict[str, Any]:
        return {"bots": {"ops": {"webhook_url": standin.add_webhook(DISCORD_ID, DISCORD_TOKEN)}}}

    return standin, table, DISCORD_TOKEN


PLATFORMS = [
    Platform("feishu", "feishu-ops", "chars", 3000, _serve_feishu),
    Platform("dingtalk", "dingtalk-ops", "chars", 3000, _serve_dingtalk),
    Platform("wecom", "wecom-ops", "utf8", 2048, _serve_wecom),
    Platform("telegram", f"telegram-{GROUP_ID}", "utf16", 4096, _serve_telegram),
    Platform("discord", "discord-ops", "chars", 2000, _serve_discord),
]
PLATFORM_IDS = [platform.kind for platform in PLATFORMS]


def build(platform: Platform, table: dict[str, Any]) -> Channel:
    return channel_kinds()[platform.kind](platform.kind, table)


@pytest.mark.anyio
@pytest.mark.parametrize("platform", PLATFORMS, ids=PLATFORM_IDS)
async def test_defaults_and_secrets_hidden_in_repr(platform: Platform) -> None:
    standin, table, credential = platform.serve(1.0)
    async with standin:
        channel = build(platform, table())

    assert channel.max_length == platform.limit
    assert channel.length_unit == platform.unit
    assert channel.min_interval > 0
    assert credential not in repr(channel)
    assert FEISHU_SECRET not in repr(channel)
    assert DINGTALK_SECRET not in repr(channel)


@pytest.mark.anyio
@pytest.mark.parametrize("platform", PLATFORMS, ids=PLATFORM_IDS)
async def test_error_body_echoing_the_credential_is_redacted(platform: Platform) -> None:
    standin, table, credential = platform.serve(1.0)
    async with standin:
        channel = build(platform, table())
        standin.script.append(ScriptedResponse(http_status=500, raw_body=f"bad {credential}"))
        error = await send_error(channel, outbox_message(platform.chat_key))

    assert error.retryable
    assert credential not in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "platform", [p for p in PLATFORMS if p.kind != "telegram"], ids=lambda p: str(p.kind)
)
async def test_unknown_bot_name_is_permanent(platform: Platform) -> None:
    standin, table, _ = platform.serve(1.0)
    async with standin:
        channel = build(platform, table())
        error = await send_error(channel, outbox_message(f"{platform.kind}-nightly"))

    assert_permanent(error, config_error=True)
    assert f"'{platform.kind}-nightly'" in str(error)
    assert f"[channels.{platform.kind}.bots.nightly]" in str(error)
    assert standin.request_count == 0


BOT_TABLE_PLATFORMS = [p for p in PLATFORMS if p.kind != "telegram"]
BOT_TABLE_IDS = [p.kind for p in BOT_TABLE_PLATFORMS]
ADD_TABLE_HINT = re.compile(r"add a (\[.*\]) table")


@pytest.mark.anyio
@pytest.mark.parametrize("bot", ["运维群", 'night "shift" \\ 2', "a.b"])
@pytest.mark.parametrize("platform", BOT_TABLE_PLATFORMS, ids=BOT_TABLE_IDS)
async def test_unknown_bot_hint_is_a_valid_toml_header(platform: Platform, bot: str) -> None:
    standin, table, _ = platform.serve(1.0)
    async with standin:
        channel = build(platform, table())
        error = await send_error(channel, outbox_message(f"{platform.kind}-{bot}"))

    assert_permanent(error, config_error=True)
    match = ADD_TABLE_HINT.search(str(error))
    assert match is not None
    parsed = tomllib.loads(f'{match.group(1)}\nwebhook_url = "https://example.invalid/"\n')
    assert parsed == {
        "channels": {platform.kind: {"bots": {bot: {"webhook_url": "https://example.invalid/"}}}}
    }


@pytest.mark.anyio
@pytest.mark.parametrize("platform", BOT_TABLE_PLATFORMS, ids=BOT_TABLE_IDS)
async def test_credential_hint_quotes_the_bot_name(platform: Platform) -> None:
    standin, table, _ = platform.serve(1.0)
    async with standin:
        bots = {"运维群": table()["bots"]["ops"]}
        channel = build(platform, {"bots": bots})
        standin.script.append(ScriptedResponse(http_status=403, raw_body="forbidden"))
        error = await send_error(channel, outbox_message(f"{platform.kind}-运维群"))

    assert_permanent(error, config_error=True)
    assert 'bots."运维群".webhook_url' in str(error)


@pytest.mark.parametrize("kind", ["feishu", "dingtalk", "wecom", "discord"])
def test_bad_keys_of_bots_are_quoted(kind: str) -> None:
    bots = {
        "运维群": {"webhook_url": "not a url"},
        "值班": {"webhook_url": "https://example.invalid/", "网址": 1},
    }
    with pytest.raises(ConfigError) as bad:
        channel_kinds()[kind](kind, {"bots": bots})

    assert [key for key, _ in bad.value.problems] == [
        f'channels.{kind}.bots."运维群".webhook_url',
        f'channels.{kind}.bots."值班"."网址"',
    ]


@pytest.mark.parametrize("kind", ["feishu", "dingtalk", "wecom", "discord"])
def test_factory_requires_bots_and_names_bad_keys(kind: str) -> None:
    with pytest.raises(ConfigError) as missing:
        channel_kinds()[kind](kind, {})
    with pytest.raises(ConfigError) as bad:
        channel_kinds()[kind](kind, {"bots": {"ops": {"webhook_url": "not a url"}}, "timeout": 0})

    assert [key for key, _ in missing.value.problems] == [f"channels.{kind}.bots"]
    assert [key for key, _ in bad.value.problems] == [
        f"channels.{kind}.bots.ops.webhook_url",
        f"channels.{kind}.timeout",
    ]
    assert "not a url" not in str(bad.value)


# Every channel through the outbox of a running app


# The tests through the outbox run each platform's rate windows faster. The
# stand-in shortens its windows by the platform's scale. paced_app shortens
# the outbox's rate window (core.outbox.RATE_WINDOW) and the channel's default
# min_interval by the same factor and keeps the default rate_per_minute. So
# the channel's pace keeps the ratio that the defaults have to the platform's
# limits, and a burst that provokes no rate error here provokes none at full
# scale.
SCALES = {
    "feishu": 1 / 15,
    "dingtalk": 1 / 150,
    "wecom": 1 / 150,
    "telegram": 1 / 100,
    "discord": 1 / 60,
}
RATE_ERRORS = {11232, 130101, 45009, 429}


def paced_app(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    platform: Platform,
    table: Callable[[], dict[str, Any]],
) -> WebhookApp:
    """Return an app with the platform's channel, its pace scaled by ``SCALES``."""
    scale = SCALES[platform.kind]
    monkeypatch.setattr(core.outbox, "RATE_WINDOW", core.outbox.RATE_WINDOW * scale)
    defaults = build(platform, table())
    options = {"kind": platform.kind, "timeout": 2.0, **table()}
    options["min_interval"] = defaults.min_interval * scale
    settings = Settings(outbox=FAST_RETRIES, channels={platform.kind: options})
    return WebhookApp([], data_dir=tmp_path, settings=settings)


async def deliver(app: WebhookApp, chat_key: str, texts: list[str], seconds: float = 30.0) -> None:
    assert app.outbox is not None
    for text in texts:
        await app.outbox.put(chat_key, text)
    with anyio.fail_after(seconds):
        await app.outbox.wait_idle()


def boundary_text(platform: Platform) -> str:
    """Return a text whose first part would end inside FAMILY at the platform's limit."""
    room = platform.limit - len("(1/2) ")
    filler = room - text_length(FAMILY, platform.unit) // 2
    return "a" * filler + FAMILY + " tail"


@pytest.mark.anyio
@pytest.mark.parametrize("platform", PLATFORMS, ids=PLATFORM_IDS)
async def test_split_at_the_unit_limit_keeps_emoji_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: Platform
) -> None:
    text = boundary_text(platform)
    assert text_length(text, platform.unit) > platform.limit
    standin, table, _ = platform.serve(SCALES[platform.kind])
    async with standin:
        app = paced_app(tmp_path, monkeypatch, platform, table)
        async with app.running():
            await deliver(app, platform.chat_key, [text])

    parts = standin.texts
    assert len(parts) == 2
    assert all(text_length(part, platform.unit) <= platform.limit for part in parts)
    assert "".join(PART_PREFIXES.sub("", part) for part in parts) == text
    assert sum(FAMILY in part for part in parts) == 1
    assert standin.answered == []


@pytest.mark.anyio
@pytest.mark.parametrize("platform", PLATFORMS, ids=PLATFORM_IDS)
async def test_burst_of_100_provokes_no_rate_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: Platform
) -> None:
    texts = [f"burst {index:03d}" for index in range(100)]
    standin, table, _ = platform.serve(SCALES[platform.kind])
    async with standin:
        app = paced_app(tmp_path, monkeypatch, platform, table)
        async with app.running():
            await deliver(app, platform.chat_key, texts)

    assert RATE_ERRORS.isdisjoint(standin.answered)
    assert standin.texts == texts
