"""The ``feishu`` channel: posts texts to Feishu (Lark) groups through custom bots.

A custom bot belongs to one group and is reached at its webhook URL. The
channel table names each bot, and the chat key ``feishu-<name>`` sends to the
group of the bot called ``<name>``::

    [channels.feishu]
    kind = "feishu"

    [channels.feishu.bots.ops]
    webhook_url = "https://open.feishu.cn/open-apis/bot/v2/hook/…"
    secret = "…"

A bot with signature verification enabled has a ``secret``; every body sent to
it then carries a fresh ``timestamp`` and ``sign``.

Source for the request format, signature, limits and codes: Feishu Open
Platform, "自定义机器人使用指南" (custom bot guide),
https://open.feishu.cn/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from yarl import URL

from .bots import BotTableChannel, structure_bot_table
from .channels import Channel, register_channel_kind
from .config import redacted_repr, setting, toml_key
from .errors import DeliveryError
from .http_channel import (
    MAX_QUOTED_BODY,
    HttpReply,
    parse_json_reply,
    parse_retry_after,
    post_json_redacted,
    raise_for_foreign_reply,
)
from .records import OutboxMessage

__all__ = ["FeishuBot", "FeishuChannel", "FeishuOptions"]

logger = logging.getLogger("plughook.channels")

KIND = "feishu"

# The guide: a request body may be at most 20 KB. Taken as 20,000 bytes, the
# smaller reading of "KB".
MAX_BODY_BYTES = 20_000
# json.dumps writes a control character as \uXXXX (6 bytes) and any other
# character in at most 4 UTF-8 bytes, so 3,000 characters make at most 18,000
# bytes of text. The rest of the body (msg_type, timestamp, sign) is under 200
# bytes, so a part of 3,000 characters always fits in MAX_BODY_BYTES.
DEFAULT_MAX_LENGTH = 3000
# The guide: each custom bot takes 100 requests a minute and 5 a second. The
# pace stays one below each limit, so that a request delayed on the network
# cannot be counted in the next window: 4 a second (0.25 s apart) per bot key,
# 99 a minute per channel. A channel with several bots shares the 99, which
# is stricter than Feishu's per-bot limit.
DEFAULT_MIN_INTERVAL = 0.25
DEFAULT_RATE_PER_MINUTE = 99

# Response codes (the guide's list of common errors).
CODE_OK = 0
# "sign match fail or timestamp is not within one hour from current time".
CODE_SIGNATURE = 19021
# "Key Words Not Found": the bot's keyword setting requires one of its keywords.
CODE_KEYWORD = 19024
# Rate limited ("frequency limited"), for example at the full and half hour.
CODE_RATE_LIMITED = 11232

# A text message turns <at user_id="…">name</at> into a mention, and
# <at user_id="all"> notifies the whole group (the guide's text message
# example). A zero-width space after the "<" keeps such tags in webhook text
# from notifying anyone, and does not show in the chat.
_AT_TAG = re.compile(r"<(?=at\b)", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"


@attrs.frozen(repr=False)
class FeishuBot:
    """One custom bot: its webhook URL and, with signature verification on, its secret."""

    webhook_url: str = setting("", title="Webhook URL", secret=True)
    secret: str = setting("", title="Signing secret", secret=True)

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen(repr=False)
class FeishuOptions:
    """Options of a ``kind = "feishu"`` channel table.

    ``bots`` maps bot names (the ``<name>`` of ``feishu-<name>`` chat keys) to
    their settings. ``timeout`` and ``min_interval`` are in seconds;
    ``max_length`` is in characters.
    """

    bots: dict[str, FeishuBot] = attrs.field(factory=dict)
    timeout: float = 10.0
    max_length: int = DEFAULT_MAX_LENGTH
    min_interval: float = DEFAULT_MIN_INTERVAL
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen
class _Reply:
    """The fields of a custom bot response that decide success.

    Current responses carry ``code`` and ``msg``; older ones ``StatusCode`` and
    ``StatusMessage``, which success responses still include.
    """

    code: int | None = None
    msg: str = ""
    status_code: int | None = None
    status_message: str = ""

    @property
    def result(self) -> int | None:
        return self.code if self.code is not None else self.status_code

    @property
    def detail(self) -> str:
        return self.msg or self.status_message


def _make_reply_converter() -> cattrs.Converter:
    # Extra keys ("data", …) are ignored: only the fields above matter.
    converter = cattrs.Converter()
    structure = make_dict_structure_fn(
        _Reply,
        converter,
        status_code=override(rename="StatusCode"),
        status_message=override(rename="StatusMessage"),
    )
    converter.register_structure_hook(_Reply, structure)
    return converter


_reply_converter = _make_reply_converter()


class FeishuChannel(BotTableChannel[FeishuOptions]):
    """Delivers messages to Feishu groups through their custom bots.

    ``clock`` returns the Unix time used for signature timestamps.
    """

    _kind = KIND
    _bot_noun = "bot"

    def __init__(
        self,
        name: str,
        options: FeishuOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, options)
        self._clock = clock

    async def send(self, message: OutboxMessage) -> None:
        """Post ``message`` as a text message; raise ``DeliveryError`` unless Feishu accepts it."""
        session = self._started_session()

        bot_name, bot, sender = self._resolve_bot(self._options.bots, message.chat_key)
        body = self._body(bot, message.text)
        if len(body) > MAX_BODY_BYTES:
            msg = (
                f"{sender}: the request body is {len(body)} bytes, over Feishu's "
                f"{MAX_BODY_BYTES}; lower channels.{toml_key(self.name)}.max_length"
            )
            raise DeliveryError(msg, retryable=False)

        reply = await post_json_redacted(
            session, bot.webhook_url, body, sender=sender, secret=_credential(bot)
        )
        self._check_reply(reply, bot_name, bot, sender)
        logger.info("%s delivered message %s to %s", sender, message.id, message.chat_key)

    def _body(self, bot: FeishuBot, text: str) -> bytes:
        payload: dict[str, Any] = {
            "msg_type": "text",
            "content": {"text": _AT_TAG.sub("<" + _ZERO_WIDTH_SPACE, text)},
        }
        if bot.secret:
            timestamp = int(self._clock())
            payload["timestamp"] = str(timestamp)
            payload["sign"] = _sign(bot.secret, timestamp)
        # A lone surrogate has no UTF-8 form; it becomes "?" rather than failing every attempt.
        return json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")

    def _check_reply(self, reply: HttpReply, bot_name: str, bot: FeishuBot, sender: str) -> None:
        """Raise ``DeliveryError`` unless ``reply`` reports success."""
        settings = f"bots.{toml_key(bot_name)}.webhook_url"
        parsed = _parse_reply(reply.body)
        if parsed is None:
            raise_for_foreign_reply(
                reply,
                sender=sender,
                expected="a Feishu bot response",
                credential_settings=settings,
                redact=_credential(bot),
            )

        code = parsed.result
        if code == CODE_OK and 200 <= reply.status < 300:
            return
        detail = parsed.detail.replace(_credential(bot), "***")[:MAX_QUOTED_BODY]
        described = f"{sender}: Feishu answered code {code} ({detail!r})"
        if code == CODE_RATE_LIMITED or reply.status == 429 or reply.status >= 500:
            raise DeliveryError(
                described, retryable=True, retry_after=parse_retry_after(reply.headers)
            )
        if code == CODE_SIGNATURE:
            msg = (
                f"{described}; check bots.{toml_key(bot_name)}.secret against the bot's security "
                f"settings, and that this machine's clock is right"
            )
            raise DeliveryError(msg, retryable=False, config_error=True)
        if code == CODE_KEYWORD:
            msg = (
                f"{described}; the bot's security settings require one of its keywords "
                f"in every message: remove the keyword setting, or make the plugin "
                f"include a keyword"
            )
            raise DeliveryError(msg, retryable=False, config_error=True)
        msg = f"{described}; the request was rejected and is not retried"
        raise DeliveryError(msg, retryable=False)


def _sign(secret: str, timestamp: int) -> str:
    """Return the guide's signature: HMAC-SHA256 keyed with "timestamp\\nsecret" over nothing."""
    key = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(key, b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _credential(bot: FeishuBot) -> str:
    """Return the part of the webhook URL that grants access: its last path segment."""
    try:
        segments = [part for part in URL(bot.webhook_url).parts if part.strip("/")]
    except (TypeError, ValueError):
        return bot.webhook_url
    return segments[-1] if segments else bot.webhook_url


def _parse_reply(body: bytes) -> _Reply | None:
    reply = parse_json_reply(body, _reply_converter, _Reply)
    return reply if reply is not None and reply.result is not None else None


def _feishu_factory(name: str, options: Mapping[str, Any]) -> Channel:
    example = 'bots = { ops = { webhook_url = "https://open.feishu.cn/…" } }'
    parsed, bots = structure_bot_table(FeishuOptions, FeishuBot, name, options, example=example)
    return FeishuChannel(name, attrs.evolve(parsed, bots=bots))


register_channel_kind(KIND, _feishu_factory)
