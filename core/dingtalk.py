"""The ``dingtalk`` channel: posts texts to DingTalk groups through custom robots.

A custom robot belongs to one group and is reached at its webhook URL, which
carries its ``access_token``. The channel table names each robot, and the chat
key ``dingtalk-<name>`` sends to the group of the robot called ``<name>``::

    [channels.dingtalk]
    kind = "dingtalk"

    [channels.dingtalk.bots.ops]
    webhook_url = "https://oapi.dingtalk.com/robot/send?access_token=…"
    secret = "SEC…"

A robot whose security setting is "加签" (signing) has a ``secret``; every
request to it then carries a fresh ``timestamp`` and ``sign`` query parameter.

Source for the request format, signature and rate limit: DingTalk Open
Platform, "自定义机器人接入" (custom robot access),
https://open.dingtalk.com/document/group/custom-robot-access
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from yarl import URL

from .bots import BotTableChannel, structure_bot_table
from .channels import Channel, register_channel_kind
from .config import redacted_repr, setting, toml_key
from .errors import DeliveryError
from .http_channel import (
    MAX_QUOTED_BODY,
    HttpReply,
    parse_json_reply,
    post_json_redacted,
    raise_for_foreign_reply,
)
from .records import OutboxMessage

__all__ = ["DingTalkBot", "DingTalkChannel", "DingTalkOptions"]

logger = logging.getLogger("plughook.channels")

KIND = "dingtalk"

# DingTalk rejects bodies over 20,000 bytes with errcode 460101 ("message too
# long, exceed 20000 bytes", as users report it). json.dumps writes a control
# character as \uXXXX (6 bytes) and any other character in at most 4 UTF-8
# bytes, so 3,000 characters make at most 18,000 bytes of text plus a body
# frame of under 50 bytes.
MAX_BODY_BYTES = 20_000
DEFAULT_MAX_LENGTH = 3000
# The guide: each robot sends at most 20 messages a minute, and a robot over
# that is throttled for 10 minutes. The pace stays one below (19 a minute per
# channel), so that a request delayed on the network cannot be counted in the
# next minute, and spreads a burst 3 s apart per robot. A channel with several
# robots shares the 19, which is stricter than DingTalk's per-robot limit.
DEFAULT_MIN_INTERVAL = 3.0
DEFAULT_RATE_PER_MINUTE = 19
THROTTLE_SECONDS = 600.0

# errcode values.
CODE_OK = 0
# "send too fast, exceed 20 times per minute".
CODE_TOO_FAST = 130101
# "sign not match", "keywords not in content", "ip … not in whitelist": the
# request does not pass the robot's security settings.
CODE_SECURITY = 310000
# "token is not exist": the webhook URL's access_token names no robot.
CODE_NO_TOKEN = 300001
# "message too long, exceed 20000 bytes".
CODE_TOO_LONG = 460101


@attrs.frozen(repr=False)
class DingTalkBot:
    """One custom robot: its webhook URL and, with signing on, its ``SEC…`` secret."""

    webhook_url: str = setting("", title="Webhook URL", secret=True)
    secret: str = setting("", title="Signing secret", secret=True)

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen(repr=False)
class DingTalkOptions:
    """Options of a ``kind = "dingtalk"`` channel table.

    ``bots`` maps robot names (the ``<name>`` of ``dingtalk-<name>`` chat keys)
    to their settings. ``timeout`` and ``min_interval`` are in seconds;
    ``max_length`` is in characters.
    """

    bots: dict[str, DingTalkBot] = attrs.field(factory=dict)
    timeout: float = 10.0
    max_length: int = DEFAULT_MAX_LENGTH
    min_interval: float = DEFAULT_MIN_INTERVAL
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen
class _Reply:
    """The fields of a robot response that decide success."""

    errcode: int
    errmsg: str = ""


# Extra keys are ignored: only the fields above matter.
_reply_converter = cattrs.Converter()


class DingTalkChannel(BotTableChannel[DingTalkOptions]):
    """Delivers messages to DingTalk groups through their custom robots.

    ``clock`` returns the Unix time used for signature timestamps.
    """

    _kind = KIND
    _bot_noun = "robot"

    def __init__(
        self,
        name: str,
        options: DingTalkOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, options)
        self._clock = clock

    async def send(self, message: OutboxMessage) -> None:
        """Post ``message`` as a text message; raise ``DeliveryError`` unless it is accepted."""
        session = self._started_session()

        bot_name, bot, sender = self._resolve_bot(self._options.bots, message.chat_key)
        payload = {"msgtype": "text", "text": {"content": message.text}}
        # A lone surrogate has no UTF-8 form; it becomes "?" rather than failing every attempt.
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")
        if len(body) > MAX_BODY_BYTES:
            msg = (
                f"{sender}: the request body is {len(body)} bytes, over DingTalk's "
                f"{MAX_BODY_BYTES}; lower channels.{toml_key(self.name)}.max_length"
            )
            raise DeliveryError(msg, retryable=False)

        url = self._signed_url(bot)
        reply = await post_json_redacted(session, url, body, sender=sender, secret=_credential(bot))
        self._check_reply(reply, bot_name, bot, sender)
        logger.info("%s delivered message %s to %s", sender, message.id, message.chat_key)

    def _signed_url(self, bot: DingTalkBot) -> str:
        """Return the webhook URL with a signature computed now, when the robot has a secret."""
        if not bot.secret:
            return bot.webhook_url
        timestamp = int(self._clock() * 1000)
        # yarl percent-encodes the base64 signature's "+", "/" and "=" in the query.
        url = URL(bot.webhook_url).update_query(
            timestamp=str(timestamp), sign=_sign(bot.secret, timestamp)
        )
        return str(url)

    def _check_reply(self, reply: HttpReply, bot_name: str, bot: DingTalkBot, sender: str) -> None:
        """Raise ``DeliveryError`` unless ``reply`` reports success."""
        settings = f"bots.{toml_key(bot_name)}.webhook_url"
        if 300 <= reply.status < 400:
            # Reported by users: after a 130101, DingTalk responds to the
            # throttled robot's requests with a redirect for the 10 minutes.
            msg = (
                f"{sender}: HTTP {reply.status} redirect, as DingTalk answers a throttled "
                f"robot; if it persists, check {settings}"
            )
            raise DeliveryError(msg, retryable=True, retry_after=THROTTLE_SECONDS)
        parsed = parse_json_reply(reply.body, _reply_converter, _Reply)
        if parsed is None:
            raise_for_foreign_reply(
                reply,
                sender=sender,
                expected="a DingTalk robot response",
                credential_settings=settings,
                redact=_credential(bot),
            )

        code = parsed.errcode
        if code == CODE_OK and 200 <= reply.status < 300:
            return
        detail = parsed.errmsg.replace(_credential(bot), "***")[:MAX_QUOTED_BODY]
        described = f"{sender}: DingTalk answered errcode {code} ({detail!r})"
        if code == CODE_TOO_FAST:
            msg = f"{described}; the robot is throttled for {THROTTLE_SECONDS / 60:g} minutes"
            raise DeliveryError(msg, retryable=True, retry_after=THROTTLE_SECONDS)
        if reply.status == 429 or reply.status >= 500:
            raise DeliveryError(described, retryable=True)
        if code == CODE_SECURITY:
            msg = (
                f"{described}; the request does not pass the robot's security settings: "
                f"check bots.{toml_key(bot_name)}.secret, the keywords and IP ranges, and that "
                f"this machine's clock is right"
            )
            raise DeliveryError(msg, retryable=False, config_error=True)
        if code == CODE_NO_TOKEN:
            msg = f"{described}; check {settings}"
            raise DeliveryError(msg, retryable=False, config_error=True)
        if code == CODE_TOO_LONG:
            msg = f"{described}; lower channels.{toml_key(self.name)}.max_length"
            raise DeliveryError(msg, retryable=False)
        msg = f"{described}; the request was rejected and is not retried"
        raise DeliveryError(msg, retryable=False)


def _sign(secret: str, timestamp: int) -> str:
    """Return the guide's signature: HMAC-SHA256 of "timestamp\\nsecret" keyed with the secret."""
    message = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _credential(bot: DingTalkBot) -> str:
    """Return the part of the webhook URL that grants access: its access_token."""
    try:
        return URL(bot.webhook_url).query.get("access_token", "") or bot.webhook_url
    except (TypeError, ValueError):
        return bot.webhook_url


def _dingtalk_factory(name: str, options: Mapping[str, Any]) -> Channel:
    example = 'bots = { ops = { webhook_url = "https://oapi.dingtalk.com/…" } }'
    parsed, bots = structure_bot_table(
        DingTalkOptions, DingTalkBot, name, options, example=example, noun="robots"
    )
    return DingTalkChannel(name, attrs.evolve(parsed, bots=bots))


register_channel_kind(KIND, _dingtalk_factory)
