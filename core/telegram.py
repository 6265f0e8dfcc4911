"""The ``telegram`` channel: sends texts to Telegram chats through the Bot API.

Chat keys are ``telegram-<chat id>``: a user's id, a group's negative id
(``telegram--1001234567890``) or a public channel's ``@username``::

    [channels.telegram]
    kind = "telegram"
    token = "123456:ABC…"
    api_base = "https://api.telegram.org"

Each message is one ``sendMessage`` call without ``parse_mode``, so Markdown
and HTML in webhook text reach the chat as typed and add no links or mentions.
The token is part of every request path; it never appears in logs, errors or
``repr``.

Sources: Telegram Bot API, "sendMessage" and "ResponseParameters",
https://core.telegram.org/bots/api#sendmessage; Bots FAQ, "My bot is hitting
limits, how do I avoid this?", https://core.telegram.org/bots/faq
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from .channels import Channel, register_channel_kind, split_chat_key
from .config import redacted_repr, setting, structure_config, toml_key
from .errors import ConfigError, DeliveryError
from .http_channel import (
    MAX_QUOTED_BODY,
    HttpReply,
    SessionChannel,
    check_http_url,
    check_limits,
    mask_secret,
    parse_json_reply,
    parse_retry_after,
    post_json_redacted,
    raise_for_foreign_reply,
)
from .records import OutboxMessage
from .splitting import LengthUnit

__all__ = ["TelegramChannel", "TelegramOptions"]

logger = logging.getLogger("plughook.channels")

KIND = "telegram"
DEFAULT_API_BASE = "https://api.telegram.org"

# sendMessage: "1-4096 characters after entities parsing". The channel counts
# UTF-16 code units, as Telegram counts entity offsets. A measurement against
# the live API reported that the limit counts code points. Code points are
# never more than UTF-16 units, so parts counted this way always fit.
MAX_TEXT_LENGTH = 4096
# The FAQ: in one chat, "avoid sending more than one message per second", and
# a group takes "not more than 20 messages per minute". The outbox paces every
# chat alike, so the group limit sets the pace: 60 s / 19 rounded up, one
# message below the limit so that a request delayed on the network cannot be
# counted in the next minute.
# NOTE: the FAQ's limit of about 30 messages a second over all chats is not
# enforced: rate_per_minute cannot express a per-second limit. The outbox's
# concurrency bounds the sends in flight instead.
DEFAULT_MIN_INTERVAL = 3.2
DEFAULT_RATE_PER_MINUTE = 0

# Bot tokens look like "123456789:AA…" (the bot id, a colon and a secret).
_TOKEN_PATTERN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
# A numeric chat id (negative for groups and channels, at most 52 bits) or a
# public channel's @username (5 to 32 letters, digits and underscores).
_CHAT_ID_PATTERN = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}")

# error_code values (the Bot API's HTTP status mirror).
CODE_TOO_MANY_REQUESTS = 429
# 401: the token is wrong; 404: the token is malformed or api_base is wrong.
_CREDENTIAL_CODES = frozenset({401, 404})
# 403: the bot was blocked, removed from the chat or never added to it.
CODE_FORBIDDEN = 403


@attrs.frozen(repr=False)
class TelegramOptions:
    """Options of a ``kind = "telegram"`` channel table.

    ``token`` is the bot token from @BotFather; ``api_base`` is the Bot API
    server (a local ``telegram-bot-api`` server or a proxy works too).
    ``max_length`` is in UTF-16 code units; ``timeout`` and ``min_interval``
    are in seconds.
    """

    token: str = setting("", title="Bot token", secret=True)
    api_base: str = DEFAULT_API_BASE
    timeout: float = 10.0
    max_length: int = MAX_TEXT_LENGTH
    min_interval: float = DEFAULT_MIN_INTERVAL
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen
class _Parameters:
    """ResponseParameters: why a request failed and what to do about it."""

    retry_after: float | None = None
    migrate_to_chat_id: int | None = None


@attrs.frozen
class _Reply:
    """The fields of a Bot API response that decide success."""

    ok: bool
    error_code: int | None = None
    description: str = ""
    parameters: _Parameters = _Parameters()


# Extra keys ("result", …) are ignored: only the fields above matter.
_reply_converter = cattrs.Converter()


class TelegramChannel(SessionChannel[TelegramOptions]):
    """Delivers messages to Telegram chats with the Bot API's ``sendMessage``."""

    _kind = KIND
    length_unit: LengthUnit = "utf16"

    def check_chat_key(self, chat_key: str) -> None:
        """Raise the ``DeliveryError`` a send raises for a chat id that is not numeric or @name."""
        self._chat_id(chat_key)

    async def send(self, message: OutboxMessage) -> None:
        """Send ``message`` as plain text; raise ``DeliveryError`` unless Telegram accepts it."""
        session = self._started_session()

        chat_id = self._chat_id(message.chat_key)
        # No parse_mode: the text is shown as typed, with no formatting or links.
        # NOTE: the Bot API does not document whether a plain @username in a
        # bot's text notifies that user; the text is sent unchanged.
        payload = {"chat_id": chat_id, "text": message.text}
        # A lone surrogate has no UTF-8 form; it becomes "?" rather than failing every attempt.
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")
        base = self._options.api_base.rstrip("/")
        url = f"{base}/bot{self._options.token}/sendMessage"
        reply = await post_json_redacted(
            session, url, body, sender=self._sender, secret=self._options.token
        )
        self._check_reply(reply, message.chat_key)
        logger.info("%s delivered message %s to %s", self._sender, message.id, message.chat_key)

    def _chat_id(self, chat_key: str) -> int | str:
        try:
            _, target = split_chat_key(chat_key)
        except (TypeError, ValueError) as exc:
            raise DeliveryError(f"{self._sender}: {exc}", retryable=False) from None
        if not _CHAT_ID_PATTERN.fullmatch(target):
            msg = (
                f"{self._sender}: invalid chat key {chat_key!r}: expected "
                f"'telegram-<chat id>' with a numeric chat id (negative for groups) "
                f"or a channel's @username"
            )
            raise DeliveryError(msg, retryable=False)
        return target if target.startswith("@") else int(target)

    def _check_reply(self, reply: HttpReply, chat_key: str) -> None:
        """Raise ``DeliveryError`` unless ``reply`` reports success."""
        parsed = parse_json_reply(reply.body, _reply_converter, _Reply)
        if parsed is None:
            raise_for_foreign_reply(
                reply,
                sender=self._sender,
                expected="a Bot API response",
                credential_settings="token and api_base",
                redact=self._options.token,
                check="api_base",
            )
        if parsed.ok and 200 <= reply.status < 300:
            return

        code = parsed.error_code or reply.status
        detail = mask_secret(parsed.description, self._options.token)[:MAX_QUOTED_BODY]
        described = f"{self._sender}: Telegram answered {code} ({detail!r})"
        if code == CODE_TOO_MANY_REQUESTS:
            retry_after = parsed.parameters.retry_after
            if retry_after is None:
                retry_after = parse_retry_after(reply.headers)
            raise DeliveryError(described, retryable=True, retry_after=retry_after)
        if code >= 500:
            raise DeliveryError(described, retryable=True)
        raise self._rejection(code, described, chat_key, parsed.parameters)

    def _rejection(
        self, code: int, described: str, chat_key: str, parameters: _Parameters
    ) -> DeliveryError:
        """Return the permanent error for a request Telegram refused."""
        new_chat = parameters.migrate_to_chat_id
        if new_chat is not None:
            msg = (
                f"{described}; the group is now a supergroup: send to chat key "
                f"'{KIND}-{new_chat}' instead of {chat_key!r}"
            )
            return DeliveryError(msg, retryable=False)
        if code in _CREDENTIAL_CODES:
            msg = f"{described}; check channels.{toml_key(self.name)}.token and api_base"
            return DeliveryError(msg, retryable=False, config_error=True)
        if code == CODE_FORBIDDEN:
            msg = f"{described}; the bot cannot write to {chat_key!r}: add it to the chat"
            return DeliveryError(msg, retryable=False)
        msg = f"{described}; the request was rejected and is not retried"
        return DeliveryError(msg, retryable=False)


def _telegram_factory(name: str, options: Mapping[str, Any]) -> Channel:
    key = f"channels.{toml_key(name)}"
    parsed = structure_config(TelegramOptions, options, key)

    problems = check_http_url(parsed.api_base, f"{key}.api_base")
    if not _TOKEN_PATTERN.fullmatch(parsed.token):
        example = "123456789:AAE… as @BotFather gives it"
        problems.append((f"{key}.token", f"expected a bot token, for example {example}"))
    problems.extend(check_limits(parsed, key))
    if problems:
        raise ConfigError(problems)
    return TelegramChannel(name, parsed)


register_channel_kind(KIND, _telegram_factory)
