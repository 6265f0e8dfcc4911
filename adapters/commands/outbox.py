"""``plughook outbox list|show|retry|purge``: inspect and repair the chat-message outbox."""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
import time
from typing import TYPE_CHECKING

import anyio

from core import WebhookApp
from core.display import terminal_safe
from core.outbox import retry_dead_messages
from core.records import OutboxMessage, OutboxState

from ..loading import EXIT_NOT_FOUND, EXIT_USAGE, CommandError
from . import (
    align_columns,
    fit_line,
    load_app,
    local_time_heading,
    positive_count,
    short_local_time,
    table_width,
)

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["parse_age", "register"]

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Terminal columns of a message text shown by `list` when not printing to a terminal.
SHOWN_TEXT_LIMIT = 40
# Minimum terminal columns of a message text in the TEXT column of `list`. On
# a narrower terminal the text goes on a line of its own.
MIN_TEXT_COLUMNS = 20
# Index of CREATED in the `list` table, the column left out on a narrow terminal.
CREATED_COLUMN = 2
# Characters of a message id shown by `list`. `retry` takes any unique prefix.
SHOWN_ID_LENGTH = 12
# Messages listed in the error for an id prefix that several ids start with.
LISTED_MATCHES = 5
# Terminal columns of each listed message's text in that error.
LISTED_TEXT_COLUMNS = 24
ALL_MESSAGES = 1_000_000_000


def register(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the ``outbox`` subcommand group."""
    parser = subparsers.add_parser(
        "outbox",
        help="list, retry and purge queued chat messages",
        description="Inspect the outbox: messages waiting for delivery (pending, or "
        "sending while a worker sends one) and messages that failed for good (dead).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list",
        parents=[common],
        help="list queued messages",
        description="List queued messages in queue order, one line each, with a message's "
        "possible duplicates and last error on lines below it. Times are local, and the "
        f"CREATED heading names the UTC offset. Ids are cut to {SHOWN_ID_LENGTH} characters, "
        "which show and retry accept. In a terminal, texts and notes are cut to its width: "
        "TEXT gets the columns that the other columns leave, and when fewer than "
        f"{MIN_TEXT_COLUMNS} are left, each text goes on a line below its row and CREATED is "
        "left out if the row is still too wide. When not printing to a terminal, texts are "
        f"cut to {SHOWN_TEXT_LIMIT} columns.",
    )
    listing.add_argument(
        "--state",
        choices=["pending", "dead"],
        help="only messages in this state, where pending includes messages being sent "
        "(default both)",
    )
    listing.add_argument(
        "--limit",
        type=positive_count,
        default=50,
        metavar="N",
        help="number of messages to show, in queue order (default 50)",
    )
    listing.set_defaults(run=run_list)

    show = actions.add_parser(
        "show",
        parents=[common],
        help="print one message whole",
        description="Print every field of one queued message and its whole text. Exit "
        f"status {EXIT_NOT_FOUND} when no message has the given id, and {EXIT_USAGE} when "
        "several messages have ids starting with it or for a usage error.",
    )
    show.add_argument(
        "message_id",
        metavar="ID",
        help="message id from `outbox list`, or enough of its start to match one message",
    )
    show.set_defaults(run=run_show)

    retry = actions.add_parser(
        "retry",
        parents=[common],
        help="send dead messages again",
        description="Move dead messages back to pending; the running server's worker "
        "sends them within a few seconds, with the channel settings it started with. "
        "After changing a [channels.*] table, restart `plughook serve` first. Exit status "
        f"{EXIT_NOT_FOUND} when no message has the given id, and {EXIT_USAGE} when several "
        "messages have ids starting with it, when the message is pending, or for a usage "
        "error.",
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


def format_messages(
    messages: list[OutboxMessage], now: float | None = None, width: int | None = None
) -> list[str]:
    """Return a header and a line per message, with notes on lines below it.

    STATE is "sending" for a pending message under a worker's claim at ``now``
    (see ``OutboxMessage.is_sending``). NEXT ATTEMPT is relative to ``now``:
    "due", "in 12 s", "in 5 min" or "in 2 h". It is "-" for a dead message
    and for one being sent, and "after earlier" for one that waits for an
    earlier listed message of its chat, because a chat's messages are sent
    in order. Ids are cut to their first ``SHOWN_ID_LENGTH`` characters.
    Below a message come its possible duplicates (attempts that may have
    reached the chat already) and its last error. With a terminal ``width``,
    texts and notes are cut to fit it. A terminal too narrow for
    ``MIN_TEXT_COLUMNS`` of text gets each text on a line below its row, and
    loses CREATED if the row still overflows. Without a width, texts are cut
    to ``SHOWN_TEXT_LIMIT`` columns and notes are left whole.
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
        ]
    ]
    for message in messages:
        if message.state != "pending" or message.is_sending(now):
            next_attempt = "-"
        elif message.seq > heads[message.chat_key]:
            next_attempt = "after earlier"
        else:
            next_attempt = _time_until(message.next_attempt_at - now)
        rows.append(
            [
                message.id[:SHOWN_ID_LENGTH],
                _shown_state(message, now),
                short_local_time(message.created_at),
                fit_line(message.chat_key),
                str(message.attempts),
                next_attempt,
            ]
        )
    text_limit = SHOWN_TEXT_LIMIT
    text_below = False
    if width is not None:
        # TEXT follows the other columns after two spaces.
        room = width - table_width(rows) - 2
        if room >= MIN_TEXT_COLUMNS:
            text_limit = room
        else:
            # Too narrow for a TEXT column: each text goes on a line below its
            # row, and CREATED goes too when the other columns still overflow.
            text_below = True
            if table_width(rows) > width:
                for row in rows:
                    del row[CREATED_COLUMN]
    if not text_below:
        rows[0].append("TEXT")
        for row, message in zip(rows[1:], messages, strict=True):
            row.append(fit_line(message.text, text_limit))
    header, *table = align_columns(rows)
    lines = [header]
    for line, message in zip(table, messages, strict=True):
        lines.append(line)
        if text_below:
            assert width is not None
            lines.append("    " + fit_line(message.text, max(width - 4, MIN_TEXT_COLUMNS)))
        if message.possible_duplicates:
            note = (
                f"    possible duplicates: {message.possible_duplicates} "
                "(attempts that may have reached the chat)"
            )
            lines.append(fit_line(note, width))
        if message.last_error:
            lines.append(fit_line(f"    last error: {message.last_error}", width))
    return lines


def format_message(message: OutboxMessage, now: float | None = None) -> list[str]:
    """Return every field of ``message``, with its whole text on the lines at the end."""
    now = time.time() if now is None else now
    created = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(message.created_at))
    lines = [
        f"message: {message.id}",
        f"state: {_shown_state(message, now)}",
        f"chat: {fit_line(message.chat_key)}",
        f"plugin: {fit_line(message.plugin) if message.plugin else '-'}",
        f"created: {created}",
        f"attempts: {message.attempts}",
    ]
    if message.possible_duplicates:
        lines.append(
            f"possible duplicates: {message.possible_duplicates} "
            "(attempts that may have reached the chat)"
        )
    if message.state == "pending" and not message.is_sending(now):
        # Messages of one chat go in order: an earlier message may hold this one back.
        next_attempt = _time_until(message.next_attempt_at - now)
        lines.append(f"next attempt: {next_attempt}, after any earlier message of its chat")
    if message.last_error:
        lines.append(f"last error: {fit_line(message.last_error)}")
    lines.append(f"text ({len(message.text)} characters):")
    text = terminal_safe(message.text.replace("\r\n", "\n"), keep_lines=True)
    lines.extend(f"  {line}" for line in text.split("\n"))
    return lines


def _shown_state(message: OutboxMessage, now: float) -> str:
    """Return the stored state, or "sending" for a pending message claimed at ``now``."""
    return "sending" if message.is_sending(now) else message.state


def _time_until(seconds: float) -> str:
    """Return a wait as "due", "in 12 s" (below 2 min), "in 5 min" or "in 2 h", rounded up."""
    if seconds <= 0:
        return "due"
    if seconds < 120:
        return f"in {math.ceil(seconds)} s"
    if seconds < 3600:
        return f"in {math.ceil(seconds / 60)} min"
    return f"in {math.ceil(seconds / 3600)} h"


def run_list(args: argparse.Namespace) -> int:
    """Print one line per message, fitted to the terminal when printing to one."""
    app = load_app(
        args, check_plugins=False, builds_channels=False, quiet=True, stored="outbox"
    ).app
    messages, total = anyio.run(_list, app, args.state, args.limit)
    if not messages:
        print("the outbox is empty" if args.state is None else f"no {args.state} messages")
        return 0
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    for line in format_messages(messages, width=width):
        print(line)
    if total > len(messages):
        print(f"showing {len(messages)} of {total} messages; --limit N shows more")
    return 0


async def _list(
    app: WebhookApp, state: OutboxState | None, limit: int
) -> tuple[list[OutboxMessage], int]:
    """Return the first ``limit`` messages in ``state`` (both when None) and how many there are."""
    await app.storage.open()
    try:
        messages = await app.storage.outbox_list(state, limit)
        states: tuple[OutboxState, ...] = (state,) if state is not None else ("pending", "dead")
        total = 0
        for each in states:
            total += await app.storage.outbox_count(each)
        return messages, total
    finally:
        await app.storage.close()


def run_show(args: argparse.Namespace) -> int:
    """Print one message whole."""
    app = load_app(
        args, check_plugins=False, builds_channels=False, quiet=True, stored="outbox"
    ).app
    message = anyio.run(_show, app, args.message_id)
    for line in format_message(message):
        print(line)
    return 0


async def _show(app: WebhookApp, prefix: str) -> OutboxMessage:
    await app.storage.open()
    try:
        message = await _message_by_prefix(app, prefix, None)
    finally:
        await app.storage.close()
    if message is None:
        msg = f"no message {prefix!r} in the outbox; see `plughook outbox list`"
        raise CommandError(msg, EXIT_NOT_FOUND)
    return message


async def _message_by_prefix(
    app: WebhookApp, prefix: str, state: OutboxState | None
) -> OutboxMessage | None:
    """Return the one message in ``state`` (any when None) whose id starts with ``prefix``.

    Returns None when no id matches, and raises ``CommandError`` when several do.
    """
    if not prefix:
        msg = "the message id is empty; give an id from `plughook outbox list`"
        raise CommandError(msg)
    messages = await app.storage.outbox_list(state, ALL_MESSAGES)
    matches = [message for message in messages if message.id.startswith(prefix)]
    if len(matches) > 1:
        kind = "messages" if state is None else f"{state} messages"
        lines = [
            f"{len(matches)} {kind} have ids starting with {prefix!r}; "
            "give more characters of the id:",
            *_listed_matches(matches, time.time()),
        ]
        raise CommandError("\n".join(lines))
    return matches[0] if matches else None


def _listed_matches(matches: list[OutboxMessage], now: float) -> list[str]:
    """Return a line with id, state, chat and cut text for each of the first few ``matches``.

    Each id is shown long enough to match only its own message. Messages
    past ``LISTED_MATCHES`` are counted on a last line, "and N more".
    """
    length = _distinct_id_length([message.id for message in matches])
    rows = [
        [
            message.id[:length],
            _shown_state(message, now),
            fit_line(message.chat_key),
            fit_line(message.text, LISTED_TEXT_COLUMNS),
        ]
        for message in matches[:LISTED_MATCHES]
    ]
    lines = [f"  {line}" for line in align_columns(rows)]
    if len(matches) > LISTED_MATCHES:
        lines.append(f"  and {len(matches) - LISTED_MATCHES} more")
    return lines


def _distinct_id_length(ids: list[str]) -> int:
    """Return the shortest prefix length, ``SHOWN_ID_LENGTH`` or more, at which ``ids`` differ."""
    length = SHOWN_ID_LENGTH
    longest = max(len(message_id) for message_id in ids)
    while length < longest and len({message_id[:length] for message_id in ids}) < len(ids):
        length += 1
    return length


def run_retry(args: argparse.Namespace) -> int:
    """Move one dead message, or all, back to pending."""
    app = load_app(
        args, check_plugins=False, builds_channels=False, quiet=True, stored="outbox"
    ).app
    count = anyio.run(_retry, app, None if args.all_dead else args.message_id)
    if count == 0 and not args.all_dead:
        found = anyio.run(_pending_message, app, args.message_id)
        if found is not None:
            raise CommandError(_not_dead_error(*found, time.time()))
        msg = f"no dead message {args.message_id!r}; see `plughook outbox list --state dead`"
        raise CommandError(msg, EXIT_NOT_FOUND)
    print(f"{count} dead message{'' if count == 1 else 's'} moved back to pending")
    return 0


def _not_dead_error(pending: OutboxMessage, behind_earlier: bool, now: float) -> str:
    """Return the error for `retry` given a pending message, saying when it is sent."""
    shown_id = pending.id[:SHOWN_ID_LENGTH]
    if pending.is_sending(now):
        return (
            f"message {shown_id} is being sent now, not dead: if this send fails, "
            "the server tries it again by itself"
        )
    wait = "after earlier" if behind_earlier else _time_until(pending.next_attempt_at - now)
    return (
        f"message {shown_id} is pending, not dead: the server "
        f"tries it again by itself (next attempt: {wait})"
    )


async def _retry(app: WebhookApp, message_id: str | None) -> int:
    await app.storage.open()
    try:
        if message_id is not None:
            dead = await _message_by_prefix(app, message_id, "dead")
            if dead is None:
                return 0
            message_id = dead.id
        return await retry_dead_messages(app.storage, message_id, app.clock())
    finally:
        await app.storage.close()


async def _pending_message(app: WebhookApp, prefix: str) -> tuple[OutboxMessage, bool] | None:
    """Return the one pending message whose id starts with ``prefix``, or None.

    The flag is true when an earlier message of its chat is still pending,
    so that this one is sent after it. Raises ``CommandError`` when several
    pending messages match.
    """
    await app.storage.open()
    try:
        message = await _message_by_prefix(app, prefix, "pending")
        if message is None:
            return None
        queue = await app.storage.outbox_chat_pending(message.chat_key, 1)
    finally:
        await app.storage.close()
    return message, bool(queue) and queue[0].id != message.id


def run_purge(args: argparse.Namespace) -> int:
    """Delete dead messages older than ``--older-than``."""
    app = load_app(
        args, check_plugins=False, builds_channels=False, quiet=True, stored="outbox"
    ).app
    deleted, kept = anyio.run(_purge, app, time.time() - args.older_than)
    line = f"{deleted} dead message{'' if deleted == 1 else 's'} deleted"
    if kept:
        age = _age_text(args.older_than)
        line += (
            f"; {kept} created within the last {age} kept (--older-than sets the age, such as 1h)"
        )
    print(line)
    return 0


async def _purge(app: WebhookApp, created_before: float) -> tuple[int, int]:
    """Delete dead messages created before ``created_before`` and count deleted and kept."""
    await app.storage.open()
    try:
        dead = await app.storage.outbox_list("dead", ALL_MESSAGES)
        old = [message for message in dead if message.created_at < created_before]
        for message in old:
            await app.storage.outbox_remove(message.id)
        return len(old), len(dead) - len(old)
    finally:
        await app.storage.close()


def _age_text(seconds: float) -> str:
    """Return an ``--older-than`` age as given: "7d", "12h", "30m" or "45s"."""
    for unit in ("d", "h", "m"):
        count = seconds / _UNIT_SECONDS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds:g}s"
