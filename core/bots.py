"""Bot tables: the named webhook bots of the Feishu, DingTalk, WeCom and Discord channels.

Each of these channels lists its bots under ``[channels.<table>.bots.<name>]``
and sends a message with the chat key ``<platform>-<name>`` through the bot
called ``<name>``. This module builds the bots from the configuration and
finds the bot of a chat key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from .channels import split_chat_key
from .config import structure_config, toml_key
from .errors import ConfigError, DeliveryError
from .http_channel import ChannelOptions, SessionChannel, check_http_url, check_limits

__all__ = ["BotTableChannel", "WebhookBot", "structure_bot_table", "structure_bots"]


class WebhookBot(Protocol):
    """A bot reached at a webhook URL."""

    @property
    def webhook_url(self) -> str: ...


BotT = TypeVar("BotT", bound=WebhookBot)
OptionsT = TypeVar("OptionsT", bound=ChannelOptions)
Problems = list[tuple[str, str]]


class BotTableChannel(SessionChannel[OptionsT]):
    """A ``SessionChannel`` whose chat keys name one of the bots in its options.

    Subclasses set ``_bot_noun``, what the platform calls its bots.
    """

    _bot_noun: ClassVar[str]

    def check_chat_key(self, chat_key: str) -> None:
        """Raise the ``DeliveryError`` a send raises when no bot has the name in ``chat_key``."""
        self._resolve_bot(getattr(self._options, "bots", {}), chat_key)

    def _resolve_bot(self, bots: Mapping[str, BotT], chat_key: str) -> tuple[str, BotT, str]:
        """Return the name and settings of the bot that ``chat_key`` (``<platform>-<name>``) names.

        The third item is the sender that starts error messages about the bot.
        Raises a permanent ``DeliveryError`` when the key is malformed, and a
        configuration one naming the ``[channels.<table>.bots.<name>]`` table
        to add when no bot has that name, with each key quoted as TOML needs.
        """
        try:
            _, bot_name = split_chat_key(chat_key)
        except (TypeError, ValueError) as exc:
            raise DeliveryError(f"{self._sender}: {exc}", retryable=False) from None
        bot = bots.get(bot_name)
        if bot is None:
            header = f"[channels.{toml_key(self.name)}.bots.{toml_key(bot_name)}]"
            known = ", ".join(sorted(bots)) or "none"
            msg = (
                f"{self._sender}: no {self._bot_noun} named {bot_name!r} for chat key "
                f"{chat_key!r} (configured: {known}); add a {header} table with its "
                "webhook_url"
            )
            raise DeliveryError(msg, retryable=False, config_error=True)
        return bot_name, bot, f"{self._sender}, {self._bot_noun} {bot_name!r}"


def structure_bots(
    bot_type: type[BotT],
    table: Any,
    key: str,
    *,
    example: str,
    noun: str = "bots",
    check: Callable[[BotT, str], Problems] | None = None,
) -> tuple[dict[str, BotT], Problems]:
    """Build the bots of a ``bots`` table; return them and the problems found.

    Each bot's ``webhook_url`` must be an http(s) URL. ``check`` returns the
    problems of a platform's other settings, given the bot and its dotted key.
    """
    if not isinstance(table, Mapping) or not table:
        return {}, [(key, f"expected a table of {noun}, for example {example}")]
    bots: dict[str, BotT] = {}
    problems: Problems = []
    for bot_name, values in table.items():
        bot_key = f"{key}.{toml_key(str(bot_name))}"
        try:
            bot = structure_config(bot_type, values, bot_key)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(check_http_url(bot.webhook_url, f"{bot_key}.webhook_url"))
        if check is not None:
            problems.extend(check(bot, bot_key))
        bots[str(bot_name)] = bot
    return bots, problems


def structure_bot_table(
    options_type: type[OptionsT],
    bot_type: type[BotT],
    name: str,
    options: Mapping[str, Any],
    *,
    example: str,
    noun: str = "bots",
) -> tuple[OptionsT, dict[str, BotT]]:
    """Build the options of channel ``name`` and its bots; raise ``ConfigError``.

    The options are built without their ``bots`` table, which is returned
    apart. The problems of the bots and of the other options are reported
    together.
    """
    key = f"channels.{toml_key(name)}"
    table = dict(options)
    bots, problems = structure_bots(
        bot_type, table.pop("bots", None), f"{key}.bots", example=example, noun=noun
    )
    try:
        parsed = structure_config(options_type, table, key)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None

    problems.extend(check_limits(parsed, key))
    if problems:
        raise ConfigError(problems)
    return parsed, bots
