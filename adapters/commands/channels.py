"""``plughook channels test CHAT_KEY TEXT``: send one message to check a channel's setup."""

from __future__ import annotations

import argparse
import time
import uuid
from typing import TYPE_CHECKING

import anyio

from core import WebhookApp
from core.errors import DeliveryError
from core.records import OutboxMessage

from ..loading import CommandError
from . import load_app

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

EXIT_FAILED = 1


def register(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the ``channels`` subcommand group."""
    parser = subparsers.add_parser(
        "channels", help="check the chat channels configured in [channels.*]"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    test = actions.add_parser(
        "test",
        parents=[common],
        help="send one message through the channel of CHAT_KEY and print the result",
        description="Send TEXT to CHAT_KEY directly through its configured channel, without "
        "the outbox and its retries, and print what the platform answered.",
    )
    test.add_argument(
        "chat_key", metavar="CHAT_KEY", help="target chat, such as onebot_v11-group_123456"
    )
    test.add_argument("text", metavar="TEXT", help="message text")
    test.set_defaults(run=run_test)


def run_test(args: argparse.Namespace) -> int:
    """Send the message; exit 0 when the platform confirmed it, 1 otherwise."""
    app = load_app(args, check_plugins=False, quiet=True).app
    return anyio.run(_send, app, args.chat_key, args.text)


async def _send(app: WebhookApp, chat_key: str, text: str) -> int:
    try:
        router = app.channel_router()
        channel = router.for_chat(chat_key)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    message = OutboxMessage(uuid.uuid4().hex, chat_key, text, time.time(), "cli")
    await channel.start()
    try:
        await channel.send(message)
    except DeliveryError as exc:
        kind = (
            "configuration error"
            if exc.config_error
            else "temporary error, the outbox would retry"
            if exc.retryable
            else "permanent error"
        )
        print(f"failed ({kind}) on channel {channel.name}: {exc}")
        return EXIT_FAILED
    finally:
        await channel.close()
    print(f"delivered to {chat_key} through channel {channel.name}")
    return 0
