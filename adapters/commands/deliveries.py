"""``plughook deliveries list|show|replay``: read and re-run the delivery log."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import shlex
import shutil
import sys
import time
import urllib.parse
from collections.abc import Collection
from typing import TYPE_CHECKING

import anyio
import attrs
import wcwidth

from core import WebhookApp
from core.display import terminal_safe
from core.errors import UnverifiedReplay
from core.records import DeliveryRecord

from ..loading import EXIT_NOT_FOUND, EXIT_USAGE, CommandError
from . import (
    align_columns,
    common_options,
    common_parser,
    fit_line,
    load_app,
    local_time_heading,
    positive_count,
    short_local_time,
    table_width,
)

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

STATUS_CLASSES = {"2xx": 2, "3xx": 3, "4xx": 4, "5xx": 5}
# Maximum characters of a body that `show` prints before cutting it.
SHOWN_BODY_LIMIT = 4000
# More records than any log keeps: `show` and `replay` search them all for a delivery id.
ALL_RECORDS = 1_000_000_000
# Bodies of this type are shown as decoded fields.
FORM_TYPE = "application/x-www-form-urlencoded"
# Exit statuses of `replay`. Status 0 means the handler returned a status
# below 500, EXIT_USAGE covers usage errors and records that cannot be
# replayed at all, and EXIT_NOT_FOUND an unknown id. A 5xx shares status 1
# with unexpected errors (adapters.cli.EXIT_ERROR).
EXIT_HANDLER_FAILED = 1
EXIT_UNVERIFIED = 4
EXIT_REPLAYED = 5


def register(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the ``deliveries`` subcommand group."""
    parser = subparsers.add_parser(
        "deliveries",
        help="list, show and replay recorded webhook deliveries",
        description="Read the delivery log: every request to a webhook endpoint, with "
        "credentials and signatures redacted (404s and 405s are not recorded).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    # --plugin names a plugin to filter by here, replacing the common option
    # that loads a plugin module; listing needs no plugin code. Resolving the
    # conflict edits the parent's actions, so the parent is a fresh copy.
    listing = actions.add_parser(
        "list",
        parents=[common_parser()],
        conflict_handler="resolve",
        help="list recent deliveries",
        description="List recorded deliveries, newest first, one line each. Times are "
        "local, and the RECEIVED heading names the UTC offset. In a terminal narrower than the "
        "table, the delivery id goes on a line below each record, and the columns needed "
        "least are left out until the rows fit.",
    )
    listing.add_argument(
        "--plugin", dest="plugin_name", metavar="NAME", help="only deliveries to this plugin"
    )
    listing.set_defaults(plugin=[])
    listing.add_argument(
        "--status",
        choices=sorted(STATUS_CLASSES),
        help="only deliveries whose response has this status class",
    )
    listing.add_argument(
        "--limit",
        type=positive_count,
        default=20,
        metavar="N",
        help="number of deliveries to show, newest first (default 20)",
    )
    listing.set_defaults(run=run_list)

    show = actions.add_parser(
        "show",
        parents=[common],
        help="show one delivery: its fields, headers and body",
        description="Show one recorded delivery: its summary, redacted headers and body. "
        "A JSON body is pretty-printed, and the printed text stops after "
        f"{SHOWN_BODY_LIMIT} characters unless --full is given. The response body is not "
        f"recorded, only its status. Exit status {EXIT_NOT_FOUND} when no record has the "
        "given id, as for replay.",
    )
    show.add_argument(
        "record_id",
        metavar="ID",
        help="record id from `deliveries list`, or the sender's delivery id (X-GitHub-Delivery)",
    )
    output = show.add_mutually_exclusive_group()
    output.add_argument(
        "--full",
        action="store_true",
        help=f"print the whole body (by default the printed text stops after {SHOWN_BODY_LIMIT} "
        "characters)",
    )
    output.add_argument(
        "--body",
        action="store_true",
        help="write only the recorded body, byte for byte, to standard output",
    )
    show.set_defaults(run=run_show)

    replay = actions.add_parser(
        "replay",
        parents=[common],
        help="run a recorded delivery through the app again",
        description="Run a recorded delivery through its handler again, bypassing signature "
        "verification and duplicate detection, and record it as a new attempt. Chat "
        "messages it sends are queued in the outbox for the running server to deliver. "
        "A delivery that did not pass its endpoint's verification is replayed only with "
        "--allow-unverified, and one replayed before, or a replay itself, only with "
        "--again. Exit status: 0 when the handler returns a status below 500, "
        f"{EXIT_HANDLER_FAILED} for a 5xx or an unexpected error, {EXIT_USAGE} for a usage or "
        "configuration error or a record that cannot be replayed (its body is cut, its "
        "plugin is not loaded, or several records have the given delivery id), "
        f"{EXIT_NOT_FOUND} when no record has the given id, {EXIT_UNVERIFIED} when the "
        "record did not pass verification and --allow-unverified was not given, and "
        f"{EXIT_REPLAYED} when it was replayed before or is itself a replay and --again was "
        "not given.",
    )
    replay.add_argument(
        "record_id",
        metavar="ID",
        help="record id from `deliveries list`, or the sender's delivery id (X-GitHub-Delivery)",
    )
    replay.add_argument(
        "--allow-unverified",
        action="store_true",
        help="also replay a delivery that did not pass its endpoint's verification (its "
        "sender is unknown, so do this only for a body you trust)",
    )
    replay.add_argument(
        "--again",
        action="store_true",
        help="replay a delivery that was replayed before (its handler runs once more and may "
        "send its chat messages again)",
    )
    replay.set_defaults(run=run_replay)


def run_list(args: argparse.Namespace) -> int:
    """Print one line per delivery, newest first."""
    app = load_app(
        args, check_plugins=False, builds_channels=False, quiet=True, stored="deliveries"
    ).app
    status_class = STATUS_CLASSES[args.status] if args.status else None
    records, known, replayed = anyio.run(_list, app, args.plugin_name, status_class, args.limit)
    if not records:
        print(_nothing_found(args.plugin_name, args.status, known))
        return 0
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    for line in format_table(records, width, replayed):
        print(line)
    return 0


async def _list(
    app: WebhookApp, plugin: str | None, status_class: int | None, limit: int
) -> tuple[list[DeliveryRecord], list[str], set[str]]:
    """Return the matching records, the plugins recently seen when none match, and the replayed.

    The last are the ids of the matching records that a later record replays.
    """
    await app.storage.open()
    try:
        records = await app.storage.deliveries_list(plugin, status_class, limit, with_bodies=False)
        known: list[str] = []
        if not records and plugin is not None:
            recent = await app.storage.deliveries_list(
                None, None, RECENT_FOR_HINT, with_bodies=False
            )
            known = sorted({record.plugin for record in recent})
        # A replay is newer than its original, so an unfiltered list contains
        # every replay of the records it shows. A status filter leaves out
        # the replays whose status it does not match, so those are read again.
        later = records
        if records and status_class is not None:
            later = await app.storage.deliveries_list(
                plugin, None, app.settings.deliveries.max_records, with_bodies=False
            )
        replayed = {record.replay_of for record in later if record.replay_of}
        return records, known, replayed
    finally:
        await app.storage.close()


# How many of the newest records name the plugins suggested for a --plugin
# filter that matched nothing.
RECENT_FOR_HINT = 1000


def _nothing_found(plugin: str | None, status: str | None, known: list[str]) -> str:
    line = "no deliveries recorded"
    if plugin is not None:
        line += f" for plugin {plugin!r}"
    if status is not None:
        line += f" with status {status}"
    if plugin is None:
        return line
    if known and plugin not in known:
        line += f"; plugins with recent deliveries: {', '.join(known)}"
    if "." in plugin:
        line += " (--plugin takes a plugin name here, not a module)"
    return line


_COLUMNS = (
    "RECORD ID",
    "RECEIVED",
    "STATUS",
    "VERIFIED",
    "METHOD",
    "TIME",
    "ENDPOINT",
    "DELIVERY ID",
)
# VERIFIED: whether the endpoint's verifier accepted the request, "-" when nothing was checked.
_VERDICTS = {True: "yes", False: "no", None: "-"}


@attrs.frozen
class _Layout:
    """The columns of a `list` row, and whether RECEIVED leaves out the year.

    The delivery id, and the endpoint when ENDPOINT is not a column, go on
    lines below the row.
    """

    columns: tuple[str, ...]
    short_time: bool = False


# Layouts of `list` for a terminal narrower than the whole table, from the
# widest to the narrowest. Each step leaves out what an operator needs least
# to pick a record, so the record id, RECEIVED and STATUS stay in every row.
_NARROW_LAYOUTS = (
    _Layout(_COLUMNS[:-1]),
    _Layout(_COLUMNS[:-1], short_time=True),
    _Layout(("RECORD ID", "RECEIVED", "STATUS", "VERIFIED", "TIME", "ENDPOINT"), short_time=True),
    _Layout(("RECORD ID", "RECEIVED", "STATUS", "VERIFIED", "ENDPOINT"), short_time=True),
    _Layout(("RECORD ID", "RECEIVED", "STATUS", "ENDPOINT"), short_time=True),
    _Layout(("RECORD ID", "RECEIVED", "STATUS"), short_time=True),
)


def _cells(
    record: DeliveryRecord, short_time: bool = False, replayed: Collection[str] = ()
) -> dict[str, str]:
    """Return the value of each of ``_COLUMNS`` for ``record``.

    DELIVERY ID also names the record a replay repeats. STATUS marks a
    record whose id is in ``replayed``.
    """
    if short_time:
        received = short_local_time(record.received_at)
    else:
        received = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.received_at))
    replay = f"  (replay of {record.replay_of})" if record.replay_of else ""
    return {
        "RECORD ID": record.id,
        "RECEIVED": received,
        "STATUS": _status(record, record.id in replayed),
        "VERIFIED": _VERDICTS[record.verified],
        "METHOD": record.method,
        "TIME": f"{record.duration_ms:.1f} ms",
        "ENDPOINT": terminal_safe(f"{record.plugin}{record.path}"),
        "DELIVERY ID": terminal_safe(f"{record.delivery_id or '-'}{replay}"),
    }


def _status(record: DeliveryRecord, replayed: bool) -> str:
    marks = [mark for mark, on in (("duplicate", record.duplicate), ("replayed", replayed)) if on]
    return f"{record.status} ({', '.join(marks)})" if marks else str(record.status)


def _rows(
    columns: tuple[str, ...],
    records: list[DeliveryRecord],
    short_time: bool = False,
    replayed: Collection[str] = (),
) -> list[list[str]]:
    """Return the headings of ``columns`` and a row of their values for each record."""
    headings = [local_time_heading(name) if name == "RECEIVED" else name for name in columns]
    rows = [headings]
    for record in records:
        cells = _cells(record, short_time, replayed)
        rows.append([cells[name] for name in columns])
    return rows


def _align(columns: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    """Return ``rows`` as aligned lines, with the durations in TIME aligned to the right."""
    right = {columns.index("TIME")} if "TIME" in columns else set()
    return align_columns(rows, right=right)


def format_table(
    records: list[DeliveryRecord], width: int | None = None, replayed: Collection[str] = ()
) -> list[str]:
    """Return the header and one line per record, each column as wide as its widest cell.

    When the lines would be wider than a terminal's ``width``, the table
    takes the first of ``_NARROW_LAYOUTS`` whose rows fit. The delivery id
    then goes on a line below each row. On narrower terminals RECEIVED
    leaves out the year, METHOD, TIME and VERIFIED are left out in that
    order, and last the endpoint goes below the row too. Lines below a row
    are cut to ``width``. On a terminal narrower than about 50 columns the
    rows overflow it.
    """
    rows = _rows(_COLUMNS, records, replayed=replayed)
    if width is None or table_width(rows) <= width:
        return _align(_COLUMNS, rows)

    layout = _NARROW_LAYOUTS[-1]
    for candidate in _NARROW_LAYOUTS:
        if table_width(_rows(candidate.columns, records, candidate.short_time, replayed)) <= width:
            layout = candidate
            break

    rows = _rows(layout.columns, records, layout.short_time, replayed)
    header, *table = _align(layout.columns, rows)
    lines = [header]
    for line, record in zip(table, records, strict=True):
        lines.append(line)
        lines.extend(_lines_below(record, layout, width))
    return lines


def _lines_below(record: DeliveryRecord, layout: _Layout, width: int) -> list[str]:
    """Return the lines below ``record``'s row: the endpoint if the row lacks it, the delivery id.

    A replay names its original after the delivery id, or on a line of its
    own when the two do not fit on one line.
    """
    lines = []
    if "ENDPOINT" not in layout.columns:
        lines.append(fit_line(f"    endpoint {record.plugin}{record.path}", width))
    if record.delivery_id and record.replay_of:
        together = fit_line(f"    delivery {record.delivery_id}  (replay of {record.replay_of})")
        if wcwidth.width(together) <= width:
            lines.append(together)
            return lines
    if record.delivery_id:
        lines.append(fit_line(f"    delivery {record.delivery_id}", width))
    if record.replay_of:
        lines.append(fit_line(f"    replay of {record.replay_of}", width))
    return lines


def run_show(args: argparse.Namespace) -> int:
    """Print every field, the redacted headers and the recorded body."""
    app = load_app(
        args, check_plugins=False, builds_channels=False, quiet=True, stored="deliveries"
    ).app
    record, replays = anyio.run(_get, app, args.record_id)
    if args.body:
        if record.body_truncated:
            print(
                f"plughook: warning: the recorded body of {record.id} is cut or missing",
                file=sys.stderr,
            )
        sys.stdout.buffer.write(record.body)
        sys.stdout.flush()
        return 0
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    for line in format_table([record], width, replayed=[record.id] if replays else []):
        print(line)
    if replays:
        print(f"replayed as: {', '.join(replays)}")
    if record.query:
        print(f"query: {terminal_safe(record.query)}")
    if record.error_id:
        print(f"error id: {record.error_id} (search the server log for it)")
    if record.duplicate:
        print("duplicate: an earlier delivery had the same id, so the handler did not run")
    if record.verified is not None:
        outcome = "passed" if record.verified else "not passed (replay needs --allow-unverified)"
        if record.replay_of:
            # Replays skip verification, so the record carries its original's result.
            outcome += f", in the original delivery {record.replay_of}"
        print(f"verification: {outcome}")
    print("headers:")
    for name, value in record.headers:
        print(f"  {terminal_safe(name)}: {terminal_safe(value)}")
    print(f"body ({len(record.body)} bytes{', cut' if record.body_truncated else ''}):")
    limit = None if args.full else SHOWN_BODY_LIMIT
    content_type = next((v for n, v in record.headers if n.lower() == "content-type"), "")
    print(format_body(record.body, limit, "; --full prints all", content_type))
    return 0


async def _get(app: WebhookApp, given_id: str) -> tuple[DeliveryRecord, list[str]]:
    """Return the record ``given_id`` names and the ids of the records that replay it."""
    await app.storage.open()
    try:
        record = await _find_record(app, given_id)
        replays = [] if record is None else await _replays_of(app, record)
    finally:
        await app.storage.close()
    if record is None:
        msg = f"no delivery record {given_id!r}; see `plughook deliveries list`"
        raise CommandError(msg, EXIT_NOT_FOUND)
    return record, replays


async def _reject_repeated_replay(
    app: WebhookApp, record: DeliveryRecord, options: list[str]
) -> None:
    """Raise ``CommandError`` when ``record`` was replayed before or is itself a replay.

    Either way its delivery has reached the handler more than once already.
    """
    if record.replay_of:
        repeated = f"is a replay of {record.replay_of!r}"
    else:
        replays = await _replays_of(app, record)
        if not replays:
            return
        repeated = f"was replayed before, as {', '.join(replays)}"
    command = shlex.join(["plughook", "deliveries", "replay", record.id, "--again", *options])
    msg = (
        f"delivery record {record.id!r} {repeated}: another replay runs the handler for "
        "that delivery once more and may send its chat messages twice. If that is what "
        f"you want: {command}"
    )
    raise CommandError(msg, EXIT_REPLAYED)


async def _replays_of(app: WebhookApp, record: DeliveryRecord) -> list[str]:
    """Return the ids of the records that replay ``record``, oldest first."""
    later = await app.storage.deliveries_list(
        record.plugin, None, app.settings.deliveries.max_records, with_bodies=False
    )
    return [found.id for found in reversed(later) if found.replay_of == record.id]


def _describe(record: DeliveryRecord) -> str:
    """Return ``record``'s id with its status and the original it replays, if any."""
    status = _cells(record)["STATUS"]
    if record.replay_of:
        return f"{record.id} ({status}, replay of {record.replay_of})"
    return f"{record.id} ({status})"


async def _find_record(app: WebhookApp, given_id: str) -> DeliveryRecord | None:
    """Return the record ``given_id`` names, by record id or else by delivery id, or None.

    Several records can carry one delivery id: a redelivery, a duplicate or a
    replay. Then the command stops and lists them, so the operator picks one.
    """
    record = await app.storage.delivery_get(given_id)
    if record is not None:
        return record
    records = await app.storage.deliveries_list(None, None, ALL_RECORDS, with_bodies=False)
    matches = [record for record in records if record.delivery_id == given_id]
    if len(matches) > 1:
        listed = ", ".join(_describe(record) for record in matches)
        msg = (
            f"{len(matches)} delivery records have delivery id {given_id!r}: {listed}; "
            "give one record id"
        )
        raise CommandError(msg)
    # The listed records carry no body, so the one match is read whole.
    return await app.storage.delivery_get(matches[0].id) if matches else None


def format_body(
    body: bytes, limit: int | None = SHOWN_BODY_LIMIT, hint: str = "", content_type: str = ""
) -> str:
    """Return the body as indented JSON, as form fields, as text, or as a note for binary data.

    A body whose ``content_type`` is ``application/x-www-form-urlencoded``
    shows one field per line, decoded, and a field holding JSON (GitHub's
    ``payload``) shows it indented. Text longer than ``limit`` characters is
    cut, with a note of how much was left out and ``hint``. Control characters
    are shown as escapes such as ``\\x1b``, so a body cannot drive the
    terminal that prints it.
    """
    try:
        # A body cut at max_body_bytes may end inside a character.
        text = codecs.getincrementaldecoder("utf-8")().decode(body, final=False)
    except UnicodeDecodeError:
        return f"  (binary, {len(body)} bytes)"
    if content_type.partition(";")[0].strip().lower() == FORM_TYPE:
        text = _form_fields(text)
    else:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters{hint})"
    shown = terminal_safe(text.replace("\r\n", "\n"), keep_lines=True)
    return "\n".join(f"  {line}" for line in shown.splitlines())


def _form_fields(text: str) -> str:
    """Return form-encoded ``text`` as ``name = value`` lines, JSON values indented below."""
    lines = []
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        try:
            parsed = json.loads(value)
        except ValueError:
            lines.append(f"{name} = {value}")
            continue
        if not isinstance(parsed, dict | list):
            lines.append(f"{name} = {value}")
            continue
        lines.append(f"{name} (JSON):")
        lines.append(json.dumps(parsed, ensure_ascii=False, indent=2))
    return "\n".join(lines)


def run_replay(args: argparse.Namespace) -> int:
    """Replay the delivery and print the new response."""
    app = load_app(args, verifies=False, quiet=True, stored="deliveries").app
    try:
        record_id, status, body = anyio.run(
            _replay, app, args.record_id, args.allow_unverified, args.again, common_options(args)
        )
    except UnverifiedReplay as exc:
        # The suggested command repeats this one's --config and --plugin options.
        command = ["plughook", "deliveries", "replay", exc.record_id, "--allow-unverified"]
        message = exc.explain(shlex.join([*command, *common_options(args)]))
        raise CommandError(message, EXIT_UNVERIFIED) from None
    print(f"replayed {record_id}: status {status}")
    if body:
        print(format_body(body))
    return 0 if status < 500 else EXIT_HANDLER_FAILED


async def _replay(
    app: WebhookApp, given_id: str, allow_unverified: bool, again: bool, options: list[str]
) -> tuple[str, int, bytes]:
    """Replay the record that ``given_id`` names and return its record id and the new response.

    ``options`` are this command's --config and --plugin options, repeated in
    the hint to replay a record again.
    """
    async with app.running(workers=False):
        found = await _find_record(app, given_id)
        if found is None:
            msg = f"no delivery record {given_id!r}; see `plughook deliveries list`"
            raise CommandError(msg, EXIT_NOT_FOUND)
        if not again:
            await _reject_repeated_replay(app, found, options)
        try:
            _, response = await app.replay(found.id, allow_unverified=allow_unverified)
        except UnverifiedReplay:
            raise
        except (LookupError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    return found.id, response.status, response.body
