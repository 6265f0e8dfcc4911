"""``plughook outbox list|retry|purge``: inspect and repair the chat-message outbox."""

from __future__ import annotations

import argparse
import math
import re
import time
from typing import TYPE_CHECKING

import anyio

from core import WebhookApp
from core.display import terminal_safe
from core.records import OutboxMessage

from ..loading import CommandError
from . import align_columns, cut_to_width, load_app, local_time_heading, positive_count

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["parse_age", "register"]

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Terminal columns of a message text shown by `list`.
SHOWN_TEXT_LIMIT = 40
# Characters of a message id shown by `list`. `retry` takes any unique prefix.
SHOWN_ID_LENGTH = 12
ALL_MESSAGES = 1_000_000_000


def register(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the ``outbox`` subcommand group."""
    parser = subparsers.add_parser(
        "outbox",
        help="list, retry and purge queued chat messages",
        description="Inspect the outbox: messages waiting for delivery (pending) and "
        "messages that failed for good (dead).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[common], help="list queued messages")
    listing.add_argument(
        "--state", choices=["pending", "dead"], help="only messages in this state (default both)"
    )
    listing.add_argument(
        "--limit",
        type=positive_count,
        default=50,
        metavar="N",
        help="number of messages to show, in queue order (default 50)",
    )
    listing.set_defaults(run=run_list)

    retry = actions.add_parser(
        "retry",
        parents=[common],
        help="send dead messages again",
        description="Move dead messages back to pending; the running server's worker "
        "sends them within a few seconds, with the channel settings it started with. "
        "After changing a [channels.*] table, restart `plughook serve` first.",
    )
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "message_id",
        nargs="?",
        metavar="ID",
        help="message id from `outbox list`, or enough of its start to match one dead message",
    )
    target.add_argument("--all-dead", action="store_true", help="retry every dead message")
    retry.set_defaults(run=run_retry)

    purge = actions.add_parser("purge", parents=[common], help="delete old dead messages")
    purge.add_argument(
        "--dead",
        action="store_true",
        required=True,
        help="delete dead messages (the only kind that can be purged)",
    )
    purge.add_argument(
        "--older-than",
        type=parse_age,
        default=7 * 86400.0,
        metavar="AGE",
        help="only messages created longer ago than AGE, such as 30m, 12h or 7d (default 7d)",
    )
    purge.set_defaults(run=run_purge)


def parse_age(value: str) -> float:
    """Parse ``30s``, ``15m``, ``12h`` or ``7d`` into seconds."""
    match = _AGE.match(value.strip())
    if match is None:
        msg = f"invalid age {value!r}: use a number with s, m, h or d, such as 7d"
        raise argparse.ArgumentTypeError(msg)
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_messages(messages: list[OutboxMessage], now: float | None = None) -> list[str]:
    """Return a header and a line per message, with a message's last error on a line below it.

    The ATTEMPTS column also counts the possible duplicates: attempts that may
    have reached the chat already. NEXT ATTEMPT is relative to ``now``: "due",
    "in 12 s", "in 5 min" or "in 2 h". It is "-" for a dead message, and
    "after earlier" for one that waits for an earlier listed message of its
    chat, because a chat's messages are sent in order. Ids are cut to their
    first ``SHOWN_ID_LENGTH`` characters.
    """
    now = time.time() if now is None else now
    heads: dict[str, int] = {}
    for message in messages:
        if message.state == "pending":
            heads[message.chat_key] = min(heads.get(message.chat_key, message.seq), message.seq)
    rows = [
        [
            "MESSAGE ID",
            "STATE",
            local_time_heading("CREATED"),
            "CHAT",
            "ATTEMPTS",
            "NEXT ATTEMPT",
            "TEXT",
        ]
    ]
    errors: list[str] = [""]
    for message in messages:
        created = _local_time(message.created_at)
        if message.state != "pending":
            next_attempt = "-"
        elif message.seq > heads[message.chat_key]:
            next_attempt = "after earlier"
        else:
            next_attempt = _time_until(message.next_attempt_at - now)
        text = cut_to_width(terminal_safe(message.text.replace("\n", " ⏎ ")), SHOWN_TEXT_LIMIT)
        attempts = str(message.attempts)
        if message.possible_duplicates:
            attempts += f" (possible duplicates {message.possible_duplicates})"
        rows.append(
            [
                message.id[:SHOWN_ID_LENGTH],
                message.state,
                created,
                terminal_safe(message.chat_key),
                attempts,
                next_attempt,
                text,
            ]
        )
        error = terminal_safe(message.last_error)
        errors.append(f"    last error: {error}" if error else "")
    lines = []
    for line, error in zip(align_columns(rows), errors, strict=True):
        lines.append(line)
        if error:
            lines.append(error)
    return lines


def _local_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _time_until(seconds: float) -> str:
    """Return a wait as "due", "in 12 s", "in 5 min" or "in 2 h", rounded up."""
    if seconds <= 0:
        return "due"
    if seconds < 60:
        return f"in {math.ceil(seconds)} s"
    if seconds < 3600:
        return f"in {math.ceil(seconds / 60)} min"
    return f"in {math.ceil(seconds / 3600)} h"


def run_list(args: argparse.Namespace) -> int:
    """Print one line per message."""
    app = load_app(args, check_plugins=False, quiet=True, stored="outbox").app
    messages = anyio.run(_list, app, args.state, args.limit)
    if not messages:
        print("the outbox is empty" if args.state is None else f"no {args.state} messages")
    else:
        for line in format_messages(messages):
            print(line)
    return 0


async def _list(app: WebhookApp, state: str | None, limit: int) -> list[OutboxMessage]:
    await app.storage.open()
    try:
        if state == "pending":
            return await app.storage.outbox_list("pending", limit)
        if state == "dead":
            return await app.storage.outbox_list("dead", limit)
        return await app.storage.outbox_list(None, limit)
    finally:
        await app.storage.close()


def run_retry(args: argparse.Namespace) -> int:
    """Move one dead message, or all, back to pending."""
    app = load_app(args, check_plugins=False, quiet=True, stored="outbox").app
    count = anyio.run(_retry, app, None if args.all_dead else args.message_id)
    if count == 0 and not args.all_dead:
        msg = f"no dead message {args.message_id!r}; see `plughook outbox list --state dead`"
        raise CommandError(msg)
    print(f"{count} dead message{'' if count == 1 else 's'} moved back to pending")
    return 0


async def _retry(app: WebhookApp, message_id: str | None) -> int:
    async with app.running(workers=False):
        assert app.outbox is not None
        if message_id is not None:
            message_id = await _dead_message_id(app, message_id)
            if message_id is None:
                return 0
        return await app.outbox.retry_dead(message_id)


async def _dead_message_id(app: WebhookApp, prefix: str) -> str | None:
    """Return the id of the one dead message whose id starts with ``prefix``, or None."""
    dead = await app.storage.outbox_list("dead", ALL_MESSAGES)
    matches = [message.id for message in dead if message.id.startswith(prefix)]
    if len(matches) > 1:
        msg = (
            f"{len(matches)} dead messages have ids starting with {prefix!r}; "
            "give more characters of the id"
        )
        raise CommandError(msg)
    return matches[0] if matches else None


def run_purge(args: argparse.Namespace) -> int:
    """Delete dead messages older than ``--older-than``."""
    app = load_app(args, check_plugins=False, quiet=True, stored="outbox").app
    count = anyio.run(_purge, app, time.time() - args.older_than)
    print(f"{count} dead message{'' if count == 1 else 's'} deleted")
    return 0


async def _purge(app: WebhookApp, created_before: float) -> int:
    await app.storage.open()
    try:
        dead = await app.storage.outbox_list("dead", ALL_MESSAGES)
        old = [message for message in dead if message.created_at < created_before]
        for message in old:
            await app.storage.outbox_remove(message.id)
        return len(old)
    finally:
        await app.storage.close()
