"""The ``discord`` channel: posts texts to Discord channels through webhooks.

A webhook belongs to one Discord channel and is reached at its URL, which
carries its token. The channel table names each webhook, and the chat key
``discord-<name>`` sends through the webhook called ``<name>``::

    [channels.discord]
    kind = "discord"

    [channels.discord.bots.alerts]
    webhook_url = "https://discord.com/api/webhooks/<id>/<token>"

Every message goes out with ``allowed_mentions`` empty, so @everyone, roles
and user mentions in webhook text show as plain text and send no notification. Requests
ask Discord to confirm the message (``wait=true``).

Sources: Discord developer documentation, "Execute Webhook" and "Rate Limits",
https://discord.com/developers/docs/resources/webhook#execute-webhook,
https://discord.com/developers/docs/topics/rate-limits
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
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
    parse_retry_after,
    post_json_redacted,
)
from .records import OutboxMessage

__all__ = ["DiscordBot", "DiscordChannel", "DiscordOptions"]

logger = logging.getLogger("plughook.channels")

KIND = "discord"

# Message content is at most 2,000 characters. Discord's API counts code
# points, as Discord staff stated in
# https://github.com/discord/discord-api-docs/issues/1315
MAX_CONTENT_LENGTH = 2000
# Discord publishes no fixed numbers and expects clients to follow the
# X-RateLimit-* headers, which this channel does. The defaults add the limits
# that Discord staff described for webhooks: 5 requests per 2 s per webhook
# and 30 messages a minute per Discord channel
# (https://github.com/discord/discord-api-docs/issues/367).
# The pace stays one below each, so that a request delayed on the network
# cannot be counted in the next window. That is 0.5 s apart per webhook and
# 29 a minute per plughook channel. All webhooks of a plughook channel share
# the 29, which is stricter than Discord when they post to different channels.
DEFAULT_MIN_INTERVAL = 0.5
DEFAULT_RATE_PER_MINUTE = 29
# Maximum wait inside send() for a webhook's bucket to reset. A longer wait
# becomes a retryable error, so that the outbox waits instead of a busy send.
MAX_BUCKET_WAIT = 10.0

# Rate limit headers (the rate limits page).
REMAINING_HEADER = "X-RateLimit-Remaining"
RESET_AFTER_HEADER = "X-RateLimit-Reset-After"
# 404 with JSON code 10015 "Unknown Webhook": deleted, or a wrong URL.
_CREDENTIAL_STATUSES = frozenset({401, 403, 404})


@attrs.frozen(repr=False)
class DiscordBot:
    """One webhook: its URL, which includes the webhook's token."""

    webhook_url: str = setting("", title="Webhook URL", secret=True)

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen(repr=False)
class DiscordOptions:
    """Options of a ``kind = "discord"`` channel table.

    ``bots`` maps webhook names (the ``<name>`` of ``discord-<name>`` chat
    keys) to their settings. ``timeout`` and ``min_interval`` are in seconds;
    ``max_length`` is in characters.
    """

    bots: dict[str, DiscordBot] = attrs.field(factory=dict)
    timeout: float = 10.0
    max_length: int = MAX_CONTENT_LENGTH
    min_interval: float = DEFAULT_MIN_INTERVAL
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen
class _ErrorReply:
    """The fields of a Discord error response (a rate limit response adds ``retry_after``)."""

    message: str = ""
    code: int | None = None
    retry_after: float | None = None


# Extra keys ("errors", "global", …) are ignored: only the fields above matter.
_reply_converter = cattrs.Converter()


class DiscordChannel(BotTableChannel[DiscordOptions]):
    """Delivers messages to Discord channels through their webhooks.

    ``monotonic`` is the clock that times rate limit buckets.
    """

    _kind = KIND
    _bot_noun = "webhook"

    def __init__(
        self,
        name: str,
        options: DiscordOptions,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, options)
        self._monotonic = monotonic
        # Webhook name -> monotonic time its bucket has requests again.
        self._resume_at: dict[str, float] = {}

    async def send(self, message: OutboxMessage) -> None:
        """Post ``message`` through the webhook; raise ``DeliveryError`` unless it is accepted."""
        session = self._started_session()

        bot_name, bot, sender = self._resolve_bot(self._options.bots, message.chat_key)
        payload = {"content": message.text, "allowed_mentions": {"parse": []}}
        # A lone surrogate has no UTF-8 form; it becomes "?" rather than failing every attempt.
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")
        url = str(URL(bot.webhook_url).update_query(wait="true"))

        await self._wait_for_bucket(bot_name, sender)
        reply = await post_json_redacted(session, url, body, sender=sender, secret=_credential(bot))
        self._note_bucket(bot_name, reply.headers)
        self._check_reply(reply, bot_name, bot, sender)
        logger.info("%s delivered message %s to %s", sender, message.id, message.chat_key)

    async def _wait_for_bucket(self, bot_name: str, sender: str) -> None:
        """Wait until the webhook's bucket has requests left, as the last response reported."""
        wait = self._resume_at.get(bot_name, 0.0) - self._monotonic()
        if wait > MAX_BUCKET_WAIT:
            msg = f"{sender}: the webhook's rate limit bucket resets in {wait:.1f} s"
            raise DeliveryError(msg, retryable=True, retry_after=wait)
        if wait > 0:
            await anyio.sleep(wait)

    def _note_bucket(self, bot_name: str, headers: Mapping[str, str]) -> None:
        """Remember when the bucket resets if the response used its last request."""
        if headers.get(REMAINING_HEADER, "").strip() != "0":
            return
        try:
            reset_after = float(headers.get(RESET_AFTER_HEADER, ""))
        except ValueError:
            return
        self._resume_at[bot_name] = self._monotonic() + max(reset_after, 0.0)

    def _check_reply(self, reply: HttpReply, bot_name: str, bot: DiscordBot, sender: str) -> None:
        """Raise ``DeliveryError`` unless ``reply`` has a 2xx status."""
        status = reply.status
        if 200 <= status < 300:
            return

        parsed = _parse_error(reply.body)
        detail = parsed.message.replace(_credential(bot), "***")[:MAX_QUOTED_BODY]
        described = f"{sender}: Discord answered HTTP {status}, code {parsed.code} ({detail!r})"
        if status == 429:
            retry_after = _retry_after(parsed, reply.headers)
            if retry_after is not None:
                self._resume_at[bot_name] = self._monotonic() + retry_after
            raise DeliveryError(described, retryable=True, retry_after=retry_after)
        if status >= 500:
            raise DeliveryError(described, retryable=True)
        if status in _CREDENTIAL_STATUSES:
            msg = f"{described}; check bots.{toml_key(bot_name)}.webhook_url"
            raise DeliveryError(msg, retryable=False, config_error=True)
        msg = f"{described}; the request was rejected and is not retried"
        raise DeliveryError(msg, retryable=False)


def _retry_after(parsed: _ErrorReply, headers: Mapping[str, str]) -> float | None:
    """Return the delay a 429 requests: the body's retry_after, else the headers' delay."""
    if parsed.retry_after is not None:
        return max(parsed.retry_after, 0.0)
    delay = parse_retry_after(headers)
    if delay is not None:
        return delay
    try:
        return max(float(headers.get(RESET_AFTER_HEADER, "")), 0.0)
    except ValueError:
        return None


def _credential(bot: DiscordBot) -> str:
    """Return the part of the webhook URL that grants access: its token, the last segment."""
    try:
        segments = [part for part in URL(bot.webhook_url).parts if part.strip("/")]
    except (TypeError, ValueError):
        return bot.webhook_url
    return segments[-1] if segments else bot.webhook_url


def _parse_error(body: bytes) -> _ErrorReply:
    parsed = parse_json_reply(body, _reply_converter, _ErrorReply)
    if parsed is not None:
        return parsed
    text = body.decode("utf-8", "replace").strip()
    return _ErrorReply(message=text)


def _discord_factory(name: str, options: Mapping[str, Any]) -> Channel:
    example = 'bots = { alerts = { webhook_url = "https://discord.com/api/webhooks/…" } }'
    parsed, bots = structure_bot_table(
        DiscordOptions, DiscordBot, name, options, example=example, noun="webhooks"
    )
    return DiscordChannel(name, attrs.evolve(parsed, bots=bots))


register_channel_kind(KIND, _discord_factory)
