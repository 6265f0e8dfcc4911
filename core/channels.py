"""Channels: transports that deliver outbox messages to a chat platform.

A channel's ``send`` returns when the platform confirmed the message and
raises ``core.errors.DeliveryError`` otherwise; the outbox decides on retries.
"""

from __future__ import annotations

import abc
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import attrs

from .display import terminal_safe
from .errors import DeliveryError
from .records import OutboxMessage
from .splitting import LengthUnit

__all__ = [
    "Channel",
    "ConsoleChannel",
    "RecordingChannel",
    "SentMessage",
    "register_channel_kind",
    "split_chat_key",
]

logger = logging.getLogger("plughook.channels")


def split_chat_key(chat_key: str) -> tuple[str, str]:
    """Split ``<platform>-<target>`` on the first ``-``; raise ``ValueError`` when invalid."""
    if not isinstance(chat_key, str):
        msg = f"chat key must be a str, got {type(chat_key).__name__}"
        raise TypeError(msg)
    platform, sep, target = chat_key.partition("-")
    if not sep or not platform or not target:
        msg = (
            f"invalid chat key {chat_key!r}: expected '<platform>-<target>', "
            f"for example 'onebot_v11-group_123456' or 'console-ops'"
        )
        raise ValueError(msg)
    return platform, target


class Channel(abc.ABC):
    """Delivers messages of the chat keys whose platform maps to it.

    ``max_length`` is the longest text the platform takes in one message,
    counted in ``length_unit`` (``chars``, ``utf16`` or ``utf8``, see
    ``core.splitting``); longer texts are split by the outbox before ``send``.
    ``min_interval`` (seconds between two messages to one chat) and
    ``rate_per_minute`` (messages per minute over all chats) hold the pace the
    platform tolerates; 0 turns a limit off. With ``coalesce``, messages
    waiting for one chat go out together as one send, up to ``max_length``.
    ``send_timeout`` is the longest one send may take in seconds, 0 when the
    channel sets no bound.
    """

    name: str = ""
    max_length: int = 0
    length_unit: LengthUnit = "chars"
    min_interval: float = 0.0
    rate_per_minute: int = 0
    coalesce: bool = False
    send_timeout: float = 0.0

    async def start(self) -> None:
        """Open connections; called when the app starts."""

    async def close(self) -> None:
        """Close connections; called when the app stops."""

    def chat_problem(self, chat_key: str) -> str | None:
        """Return why this channel can never deliver to ``chat_key``, or None.

        The app checks the chat keys in plugin settings with it at start-up.
        The reason is the message of the error ``check_chat_key`` raises.
        """
        try:
            self.check_chat_key(chat_key)
        except DeliveryError as exc:
            return str(exc)
        return None

    def check_chat_key(self, chat_key: str) -> None:
        """Raise the ``DeliveryError`` a send to ``chat_key`` would raise for its address.

        The default checks nothing. Channels that parse the target override it.
        """

    @abc.abstractmethod
    async def send(self, message: OutboxMessage) -> None:
        """Deliver ``message`` or raise ``DeliveryError``."""


class ConsoleChannel(Channel):
    """Prints ``[chat_key] text`` to standard output and logs it.

    Control characters in the text are printed as escapes (``terminal_safe``).
    """

    def __init__(self, name: str = "console", stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    async def send(self, message: OutboxMessage) -> None:
        stream = self._stream or sys.stdout
        text = terminal_safe(message.text, keep_lines=True)
        stream.write(f"[{message.chat_key}] {text}\n")
        stream.flush()
        logger.info("console delivered message %s to %s", message.id, message.chat_key)


@attrs.frozen
class SentMessage:
    """A message a ``RecordingChannel`` received."""

    chat_key: str
    text: str
    id: str
    plugin: str


class RecordingChannel(Channel):
    """Keeps every message in ``messages``; the test client routes all chats here."""

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.messages: list[SentMessage] = []

    async def send(self, message: OutboxMessage) -> None:
        self.messages.append(
            SentMessage(message.chat_key, message.text, message.id, message.plugin)
        )


ChannelFactory = Callable[[str, Mapping[str, Any]], Channel]
_CHANNEL_KINDS: dict[str, ChannelFactory] = {}


def register_channel_kind(kind: str, factory: ChannelFactory) -> None:
    """Make ``kind = "<kind>"`` in a ``[channels.*]`` table build channels with ``factory``.

    The factory receives the channel name and the table without ``kind``, and
    raises ``core.errors.ConfigError`` for invalid options.
    """
    _CHANNEL_KINDS[kind] = factory


def channel_kinds() -> Mapping[str, ChannelFactory]:
    """Return the registered channel kinds by name."""
    return _CHANNEL_KINDS


def _console_factory(name: str, options: Mapping[str, Any]) -> Channel:
    from .config import structure_config, toml_key

    structure_config(_ConsoleOptions, options, f"channels.{toml_key(name)}")
    return ConsoleChannel(name)


@attrs.frozen
class _ConsoleOptions:
    pass


register_channel_kind("console", _console_factory)
