"""The ``wecom`` channel: posts texts to WeCom (企业微信) groups through group robots.

A group robot belongs to one group and is reached at its webhook URL, whose
``key`` query parameter is its credential. The channel table names each robot,
and the chat key ``wecom-<name>`` sends to the group of the robot called
``<name>``::

    [channels.wecom]
    kind = "wecom"
    msgtype = "text"            # or "markdown"

    [channels.wecom.bots.ops]
    webhook_url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"

Lengths are counted in UTF-8 bytes, as WeCom counts them. Messages mention
group members only through a robot's ``mentioned_list`` or
``mentioned_mobile_list``.

Source for the request format and limits: WeCom developer centre,
"群机器人配置说明" (group robot configuration),
https://developer.work.weixin.qq.com/document/path/91770
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs
import cattrs
from yarl import URL

from .bots import BotTableChannel, structure_bots
from .channels import Channel, register_channel_kind
from .config import redacted_repr, setting, structure_config, toml_key
from .errors import ConfigError, DeliveryError
from .http_channel import (
    MAX_QUOTED_BODY,
    HttpReply,
    check_limits,
    parse_json_reply,
    post_json_redacted,
    raise_for_foreign_reply,
)
from .records import OutboxMessage
from .splitting import LengthUnit, split_text, text_length

__all__ = ["WeComBot", "WeComChannel", "WeComOptions"]

logger = logging.getLogger("plughook.channels")

KIND = "wecom"

# The guide: text content is at most 2,048 bytes of UTF-8, markdown content at
# most 4,096 bytes.
CONTENT_LIMITS = {"text": 2048, "markdown": 4096}
# The guide: each robot sends at most 20 messages a minute. The pace stays one
# below (19 a minute per channel), so that a request delayed on the network
# cannot be counted in the next minute, and spreads a burst 3 s apart per
# robot. A channel with several robots shares the 19, which is stricter than
# WeCom's per-robot limit.
DEFAULT_MIN_INTERVAL = 3.0
DEFAULT_RATE_PER_MINUTE = 19
# The limit counts a minute, so a minute after a 45009 the robot takes messages again.
RATE_LIMITED_RETRY_AFTER = 60.0

# errcode values (WeCom's global error code list).
CODE_OK = 0
# "system busy": a passing failure on WeCom's side.
CODE_BUSY = -1
# "api freq out of limit".
CODE_RATE_LIMITED = 45009
# "invalid Request Parameter"; with "content exceed max length 2048" (or 4096)
# in errmsg, the content was too long and is sent again in smaller parts.
CODE_INVALID_PARAMETER = 40058
_TOO_LONG_MARKER = "exceed max length"
# Parts are halved after each "too long" response, down to this many bytes.
MIN_RESPLIT_BYTES = 256
# Messages whose remaining parts are kept for their next attempt, at most.
MAX_PENDING_MESSAGES = 1000

# WeCom turns <@userid> in text and markdown content into a mention (the
# guide's note on both message types). A zero-width space after the "<" keeps
# such tags in webhook text from notifying anyone, and does not show.
_MENTION_TAG = re.compile(r"<(?=@)")
_ZERO_WIDTH_SPACE = "\u200b"


@attrs.frozen(repr=False)
class WeComBot:
    """One group robot: its webhook URL and whom text messages mention.

    ``mentioned_list`` contains user ids (``"@all"`` mentions everyone) and
    ``mentioned_mobile_list`` phone numbers; both are empty unless set, and
    markdown messages do not take them.
    """

    webhook_url: str = setting("", title="Webhook URL", secret=True)
    mentioned_list: list[str] = setting([], title="User ids to mention")
    mentioned_mobile_list: list[str] = setting([], title="Phone numbers to mention")

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen(repr=False)
class WeComOptions:
    """Options of a ``kind = "wecom"`` channel table.

    ``bots`` maps robot names (the ``<name>`` of ``wecom-<name>`` chat keys) to
    their settings. ``msgtype`` is ``text`` or ``markdown``. ``max_length`` is
    in UTF-8 bytes, by default the content limit of ``msgtype``; ``timeout``
    and ``min_interval`` are in seconds.
    """

    bots: dict[str, WeComBot] = attrs.field(factory=dict)
    msgtype: str = "text"
    timeout: float = 10.0
    max_length: int | None = None
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


class WeComChannel(BotTableChannel[WeComOptions]):
    """Delivers messages to WeCom groups through their group robots.

    Content that WeCom still rejects as too long (errcode 40058) is sent
    again in halves. When a later part fails, the retry of the message sends
    only the parts not yet delivered.
    """

    _kind = KIND
    _bot_noun = "robot"
    length_unit: LengthUnit = "utf8"

    def __init__(self, name: str, options: WeComOptions) -> None:
        super().__init__(name, options)
        self._content_limit = CONTENT_LIMITS[options.msgtype]
        # Message id -> parts not yet delivered, for messages cut after a 40058.
        self._pending: dict[str, list[str]] = {}

    async def send(self, message: OutboxMessage) -> None:
        """Post ``message`` to the robot's group; raise ``DeliveryError`` unless it is accepted."""
        session = self._started_session()

        bot_name, bot, sender = self._resolve_bot(self._options.bots, message.chat_key)
        parts = self._pending.pop(message.id, None) or self._parts(message.text)
        try:
            await self._send_parts(session, bot_name, bot, parts, sender)
        except DeliveryError as exc:
            if exc.retryable:
                self._keep_pending(message.id, parts)
            raise
        logger.info("%s delivered message %s to %s", sender, message.id, message.chat_key)

    def _parts(self, text: str) -> list[str]:
        """Return the content to send, split if the mention escapes made it too long."""
        content = _MENTION_TAG.sub("<" + _ZERO_WIDTH_SPACE, text)
        if text_length(content, "utf8") <= self._content_limit:
            return [content]
        return split_text(content, self._content_limit, unit="utf8")

    async def _send_parts(
        self,
        session: aiohttp.ClientSession,
        bot_name: str,
        bot: WeComBot,
        parts: list[str],
        sender: str,
    ) -> None:
        """Send ``parts`` in order, removing each from the list once delivered."""
        while parts:
            reply = await self._post(session, bot, self._body(bot, parts[0]), sender)
            if _is_too_long(reply):
                parts[:1] = self._halve(parts[0], sender)
                continue
            self._check_reply(reply, bot_name, bot, sender)
            parts.pop(0)

    def _body(self, bot: WeComBot, content: str) -> bytes:
        msgtype = self._options.msgtype
        fields: dict[str, Any] = {"content": content}
        if msgtype == "text" and bot.mentioned_list:
            fields["mentioned_list"] = bot.mentioned_list
        if msgtype == "text" and bot.mentioned_mobile_list:
            fields["mentioned_mobile_list"] = bot.mentioned_mobile_list
        payload = {"msgtype": msgtype, msgtype: fields}
        # A lone surrogate has no UTF-8 form; it becomes "?" rather than failing every attempt.
        return json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")

    def _halve(self, part: str, sender: str) -> list[str]:
        size = text_length(part, "utf8")
        if size // 2 < MIN_RESPLIT_BYTES:
            msg = (
                f"{sender}: WeCom rejected a part of {size} bytes as too long "
                f"(errcode {CODE_INVALID_PARAMETER}); the request was not retried"
            )
            raise DeliveryError(msg, retryable=False)
        logger.warning("%s: WeCom found a part of %d bytes too long; sending halves", sender, size)
        return split_text(part, size // 2, unit="utf8")

    def _keep_pending(self, message_id: str, parts: list[str]) -> None:
        self._pending[message_id] = parts
        while len(self._pending) > MAX_PENDING_MESSAGES:
            # Forget the oldest: its next attempt starts again from the first part.
            del self._pending[next(iter(self._pending))]

    async def _post(
        self, session: aiohttp.ClientSession, bot: WeComBot, body: bytes, sender: str
    ) -> HttpReply:
        return await post_json_redacted(
            session, bot.webhook_url, body, sender=sender, secret=_credential(bot)
        )

    def _check_reply(self, reply: HttpReply, bot_name: str, bot: WeComBot, sender: str) -> None:
        """Raise ``DeliveryError`` unless ``reply`` reports success."""
        settings = f"bots.{toml_key(bot_name)}.webhook_url"
        parsed = _parse_reply(reply.body)
        if parsed is None:
            raise_for_foreign_reply(
                reply,
                sender=sender,
                expected="a WeCom robot response",
                credential_settings=settings,
                redact=_credential(bot),
            )

        code = parsed.errcode
        if code == CODE_OK and 200 <= reply.status < 300:
            return
        detail = parsed.errmsg.replace(_credential(bot), "***")[:MAX_QUOTED_BODY]
        described = f"{sender}: WeCom answered errcode {code} ({detail!r})"
        if code == CODE_RATE_LIMITED:
            raise DeliveryError(described, retryable=True, retry_after=RATE_LIMITED_RETRY_AFTER)
        if code == CODE_BUSY or reply.status == 429 or reply.status >= 500:
            raise DeliveryError(described, retryable=True)
        msg = f"{described}; the request was rejected and is not retried"
        raise DeliveryError(msg, retryable=False)


def _is_too_long(reply: HttpReply) -> bool:
    parsed = _parse_reply(reply.body)
    return (
        parsed is not None
        and parsed.errcode == CODE_INVALID_PARAMETER
        and _TOO_LONG_MARKER in parsed.errmsg
    )


def _credential(bot: WeComBot) -> str:
    """Return the part of the webhook URL that grants access: its key."""
    try:
        return URL(bot.webhook_url).query.get("key", "") or bot.webhook_url
    except (TypeError, ValueError):
        return bot.webhook_url


def _parse_reply(body: bytes) -> _Reply | None:
    return parse_json_reply(body, _reply_converter, _Reply)


def _structure_bots(
    table: Any, key: str, msgtype: str
) -> tuple[dict[str, WeComBot], list[tuple[str, str]]]:
    """Build the robots of a ``bots`` table; return them and the problems found."""

    def check_mentions(bot: WeComBot, bot_key: str) -> list[tuple[str, str]]:
        if msgtype == "markdown" and (bot.mentioned_list or bot.mentioned_mobile_list):
            return [(bot_key, "markdown messages take no mentioned_list")]
        return []

    example = 'bots = { ops = { webhook_url = "https://qyapi.weixin.qq.com/…" } }'
    return structure_bots(
        WeComBot, table, key, example=example, noun="robots", check=check_mentions
    )


def _wecom_factory(name: str, options: Mapping[str, Any]) -> Channel:
    key = f"channels.{toml_key(name)}"
    table = dict(options)
    bots_table = table.pop("bots", None)
    try:
        parsed = structure_config(WeComOptions, table, key)
    except ConfigError as exc:
        _, problems = _structure_bots(bots_table, f"{key}.bots", "text")
        raise ConfigError(problems + exc.problems) from None

    if parsed.msgtype not in CONTENT_LIMITS:
        raise ConfigError([(f"{key}.msgtype", "expected 'text' or 'markdown'")])
    bots, problems = _structure_bots(bots_table, f"{key}.bots", parsed.msgtype)
    if parsed.max_length is None:
        parsed = attrs.evolve(parsed, max_length=CONTENT_LIMITS[parsed.msgtype])
    problems.extend(check_limits(parsed, key))
    if problems:
        raise ConfigError(problems)
    return WeComChannel(name, attrs.evolve(parsed, bots=bots))


register_channel_kind(KIND, _wecom_factory)
