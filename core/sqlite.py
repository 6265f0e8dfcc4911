"""SQLite storage backend: two database files in the data directory, WAL mode.

``plughook.sqlite3`` keeps the store, outbox, dedupe keys and task records;
``plughook-deliveries.sqlite3`` keeps the delivery log, whose request bodies
live in segment files in ``plughook-deliveries-bodies/`` (see
``core.segments``). Each file has one
connection whose calls run in one worker thread at a time (a capacity
limiter of 1), so the event loop never blocks on the disk and a connection
is never used by two threads at once.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .logbatches import BATCH_SCHEMA, BatchedLog
from .records import DeliveryRecord, OutboxMessage, OutboxState, TaskRecord
from .segments import BodySegments
from .store import IN_PROGRESS_TTL, ClaimResult, Storage

__all__ = ["SQLiteStorage"]

logger = logging.getLogger("plughook.sqlite")

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    plugin TEXT NOT NULL, chat_key TEXT NOT NULL, user_key TEXT NOT NULL,
    store_key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (plugin, chat_key, user_key, store_key)
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, plugin TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, result TEXT, error TEXT,
    owner TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, chat_key TEXT NOT NULL,
    text TEXT NOT NULL, created_at REAL NOT NULL, plugin TEXT NOT NULL,
    attempts INTEGER NOT NULL, next_attempt_at REAL NOT NULL, state TEXT NOT NULL,
    last_error TEXT NOT NULL, possible_duplicates INTEGER NOT NULL,
    claimed_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_chat ON outbox (state, chat_key, seq);
CREATE TABLE IF NOT EXISTS dedupe (
    key TEXT PRIMARY KEY, done INTEGER NOT NULL, expires_at REAL NOT NULL
);
"""

# The delivery log lives in a file of its own, so that its batched writes
# never hold the lock that outbox and store writes wait for. Its layout is
# described in core.logbatches.
# Columns added to delivery-log rows written before segment files existed.
_SEGMENT_COLUMNS = (
    "body_segment TEXT NOT NULL DEFAULT ''",
    "body_offset INTEGER NOT NULL DEFAULT 0",
    "body_length INTEGER NOT NULL DEFAULT 0",
)

# Column added to outbox tables created before workers marked their claims.
_CLAIM_COLUMN = "claimed_until REAL NOT NULL DEFAULT 0"
# A worker's claim marks a message as being sent, for `outbox list`, until the
# worker stores the outcome. A claim left by a process that died mid-send ends
# after this many seconds. It matches the default Redis visibility timeout
# (``core.redis.DEFAULT_VISIBILITY_TIMEOUT``) and is well above the 10 s
# default send timeout of the OneBot and HTTP channels.
# NOTE: a send that runs longer (a channel timeout above 60 s) is listed as due
# for the rest of its run.
CLAIM_TIMEOUT = 60.0


_OUTBOX_COLUMNS = (
    "id, chat_key, text, created_at, plugin, seq, attempts, next_attempt_at, state, "
    "last_error, possible_duplicates, claimed_until"
)
_TASK_COLUMNS = "id, plugin, name, state, created_at, updated_at, result, error, owner"

_OUTBOX_INSERT = (
    "INSERT INTO outbox (id, chat_key, text, created_at, plugin, attempts, "
    "next_attempt_at, state, last_error, possible_duplicates) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _outbox_values(message: OutboxMessage) -> tuple[Any, ...]:
    return (
        message.id,
        message.chat_key,
        message.text,
        message.created_at,
        message.plugin,
        message.attempts,
        message.next_attempt_at,
        message.state,
        message.last_error,
        message.possible_duplicates,
    )


def _outbox(row: sqlite3.Row) -> OutboxMessage:
    return OutboxMessage(*row)


def _add_claim_column(connection: sqlite3.Connection) -> None:
    """Add ``claimed_until`` to an outbox table created before it existed."""
    present = {row[1] for row in connection.execute("PRAGMA table_info(outbox)")}
    if "claimed_until" not in present:
        connection.execute(f"ALTER TABLE outbox ADD COLUMN {_CLAIM_COLUMN}")


def _add_segment_columns(connection: sqlite3.Connection) -> None:
    """Add the segment columns to a log of one row per delivery created before they existed."""
    present = {row[1] for row in connection.execute("PRAGMA table_info(deliveries)")}
    if not present:
        return
    for column in _SEGMENT_COLUMNS:
        if column.split()[0] not in present:
            connection.execute(f"ALTER TABLE deliveries ADD COLUMN {column}")


class _Database:
    """One SQLite file with one connection, used from one worker thread at a time."""

    def __init__(
        self,
        path: Path,
        schema: str,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = path
        self._schema = schema
        self._migrate = migrate
        self._connection: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self.run(self._connect)

    def _connect(self) -> None:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # WAL lets readers (the CLI) work while the server writes; with WAL,
        # synchronous=NORMAL keeps every commit across a process crash.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=10000")
        connection.executescript(self._schema)
        if self._migrate is not None:
            self._migrate(connection)
        self._connection = connection

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await self.run(lambda: connection.close())

    async def run(self, function: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(function, limiter=self._limiter)

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    def db(self) -> sqlite3.Connection:
        if self._connection is None:
            msg = f"storage {self.path} is not open"
            raise RuntimeError(msg)
        return self._connection

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        def run() -> int:
            return self.db().execute(sql, parameters).rowcount

        return await self.run(run)

    async def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        def run() -> list[Any]:
            return self.db().execute(sql, parameters).fetchall()

        return await self.run(run)

    async def write_many(self, sql: str, rows: list[Sequence[Any]]) -> None:
        def run() -> None:
            db = self.db()
            with db:
                db.execute("BEGIN")
                db.executemany(sql, rows)

        await self.run(run)


class SQLiteStorage(Storage):
    """Durable single-machine storage: ``path`` and a delivery-log file beside it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._main = _Database(self.path, SCHEMA, _add_claim_column)
        self._bodies = BodySegments(self.path.with_name(f"{self.path.stem}-deliveries-bodies"))
        self._batches = BatchedLog(self._bodies)
        self.log_path = self.path.with_name(f"{self.path.stem}-deliveries.sqlite3")
        self._log = _Database(
            self.log_path,
            BATCH_SCHEMA,
            self._convert_log,
        )

    def _convert_log(self, connection: sqlite3.Connection) -> None:
        _add_segment_columns(connection)
        self._batches.convert_rows(connection)

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"

    async def open(self) -> None:
        await self._main.open()
        try:
            await self._log.open()
        except BaseException:
            await self._main.close()
            raise

    async def close(self) -> None:
        await self._main.close()
        if self._log.is_open:
            await self._log.run(self._bodies.close)
        await self._log.close()

    # Plugin key-value store.
    async def kv_get(self, plugin: str, chat_key: str, user_key: str, store_key: str) -> str | None:
        rows = await self._main.fetch(
            "SELECT value FROM kv WHERE plugin=? AND chat_key=? AND user_key=? AND store_key=?",
            (plugin, chat_key, user_key, store_key),
        )
        return str(rows[0][0]) if rows else None

    async def kv_set(
        self, plugin: str, chat_key: str, user_key: str, store_key: str, value: str
    ) -> None:
        await self._main.execute(
            "INSERT INTO kv VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET value=excluded.value",
            (plugin, chat_key, user_key, store_key, value),
        )

    async def kv_delete(self, plugin: str, chat_key: str, user_key: str, store_key: str) -> bool:
        count = await self._main.execute(
            "DELETE FROM kv WHERE plugin=? AND chat_key=? AND user_key=? AND store_key=?",
            (plugin, chat_key, user_key, store_key),
        )
        return count > 0

    # Task records.
    async def tasks_write(self, records: Sequence[TaskRecord]) -> None:
        rows: list[Sequence[Any]] = [
            (
                r.id,
                r.plugin,
                r.name,
                r.state,
                r.created_at,
                r.updated_at,
                r.result,
                r.error,
                r.owner,
            )
            for r in records
        ]
        await self._main.write_many(
            f"INSERT OR REPLACE INTO tasks ({_TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    async def task_get(self, task_id: str) -> TaskRecord | None:
        rows = await self._main.fetch(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id=?", (task_id,))
        return TaskRecord(*rows[0]) if rows else None

    async def tasks_interrupt(self, owners: Sequence[str] | None, now: float) -> int:
        if owners is None:
            return await self._main.execute(
                "UPDATE tasks SET state='interrupted', updated_at=? WHERE state='running'", (now,)
            )
        marks = ", ".join("?" for _ in owners)
        return await self._main.execute(
            f"UPDATE tasks SET state='interrupted', updated_at=? "
            f"WHERE state='running' AND owner IN ({marks})",
            (now, *owners),
        )

    # Outbox.
    async def outbox_add(self, message: OutboxMessage) -> None:
        def run() -> None:
            cursor = self._main.db().execute(_OUTBOX_INSERT, _outbox_values(message))
            message.seq = cursor.lastrowid or 0

        await self._main.run(run)

    async def outbox_due(
        self, now: float, limit: int, busy_chats: frozenset[str]
    ) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        claimed_until = now + CLAIM_TIMEOUT

        def run() -> list[OutboxMessage]:
            db = self._main.db()
            # The head of each chat is its lowest pending seq. A chat whose head
            # is not due yet waits, which keeps per-chat order.
            rows = db.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE seq IN ("
                "SELECT MIN(seq) FROM outbox WHERE state='pending' GROUP BY chat_key"
                ") AND next_attempt_at <= ? ORDER BY seq",
                (now,),
            ).fetchall()
            due = [_outbox(row) for row in rows if row[1] not in busy_chats][:limit]
            if not due:
                return []
            # The claim only marks the messages for `outbox list`. Their chats
            # are in the worker's ``busy_chats`` until it stores the outcome,
            # and the claim does not keep another process from sending them.
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "UPDATE outbox SET claimed_until=? WHERE id=?",
                    [(claimed_until, message.id) for message in due],
                )
            for message in due:
                message.claimed_until = claimed_until
            return due

        return await self._main.run(run)

    async def outbox_chat_pending(self, chat_key: str, limit: int) -> list[OutboxMessage]:
        rows = await self._main.fetch(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state='pending' AND chat_key=? "
            "ORDER BY seq LIMIT ?",
            (chat_key, limit),
        )
        return [_outbox(row) for row in rows]

    async def outbox_next_due(self, busy_chats: frozenset[str] = frozenset()) -> float | None:
        # Only each chat's head counts: the messages behind it wait for it.
        rows = await self._main.fetch(
            "SELECT chat_key, next_attempt_at FROM outbox WHERE seq IN ("
            "SELECT MIN(seq) FROM outbox WHERE state='pending' GROUP BY chat_key)"
        )
        waiting = [float(at) for chat_key, at in rows if chat_key not in busy_chats]
        return min(waiting, default=None)

    async def outbox_update(self, message: OutboxMessage) -> None:
        def run() -> None:
            db = self._main.db()
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute("SELECT state FROM outbox WHERE id=?", (message.id,)).fetchone()
                if row is None:
                    return
                if row[0] == "dead" and message.state == "pending":
                    # Back from the dead letters: a new seq puts the message
                    # at the end of its chat's queue.
                    db.execute("DELETE FROM outbox WHERE id=?", (message.id,))
                    db.execute(_OUTBOX_INSERT, _outbox_values(message))
                    return
                # The update ends the caller's claim.
                db.execute(
                    "UPDATE outbox SET attempts=?, next_attempt_at=?, state=?, last_error=?, "
                    "possible_duplicates=?, claimed_until=0 WHERE id=?",
                    (
                        message.attempts,
                        message.next_attempt_at,
                        message.state,
                        message.last_error,
                        message.possible_duplicates,
                        message.id,
                    ),
                )

        await self._main.run(run)

    async def outbox_remove(self, message_id: str) -> None:
        await self._main.execute("DELETE FROM outbox WHERE id=?", (message_id,))

    async def outbox_get(self, message_id: str) -> OutboxMessage | None:
        rows = await self._main.fetch(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id=?", (message_id,)
        )
        return _outbox(rows[0]) if rows else None

    async def outbox_list(self, state: OutboxState | None, limit: int) -> list[OutboxMessage]:
        if state is None:
            rows = await self._main.fetch(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY seq LIMIT ?", (limit,)
            )
        else:
            rows = await self._main.fetch(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state=? ORDER BY seq LIMIT ?",
                (state, limit),
            )
        return [_outbox(row) for row in rows]

    async def outbox_count(self, state: OutboxState) -> int:
        rows = await self._main.fetch("SELECT COUNT(*) FROM outbox WHERE state=?", (state,))
        return int(rows[0][0])

    # Duplicate detection.
    async def dedupe_claim(
        self, key: str, now: float, claim_for: float = IN_PROGRESS_TTL
    ) -> ClaimResult:
        def run() -> ClaimResult:
            db = self._main.db()
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(
                    "SELECT done, expires_at FROM dedupe WHERE key=?", (key,)
                ).fetchone()
                if row is not None and row[1] > now:
                    return "duplicate" if row[0] else "in_progress"
                db.execute("INSERT OR REPLACE INTO dedupe VALUES (?, 0, ?)", (key, now + claim_for))
                return "claimed"

        return await self._main.run(run)

    async def dedupe_complete(self, key: str, now: float, window: float) -> None:
        await self._main.execute(
            "INSERT OR REPLACE INTO dedupe VALUES (?, 1, ?)", (key, now + window)
        )

    async def dedupe_release(self, key: str) -> None:
        await self._main.execute("DELETE FROM dedupe WHERE key=? AND done=0", (key,))

    # Delivery log.
    async def deliveries_write(self, records: Sequence[DeliveryRecord]) -> None:
        if records:
            await self._log.run(lambda: self._batches.write(self._log.db(), records))

    async def deliveries_sync(self) -> None:
        if self._bodies.unsynced:
            await self._log.run(self._bodies.sync)

    async def deliveries_list(
        self, plugin: str | None, status_class: int | None, limit: int, *, with_bodies: bool = True
    ) -> list[DeliveryRecord]:
        return await self._log.run(
            lambda: self._batches.select(
                self._log.db(), plugin, status_class, limit, with_bodies=with_bodies
            )
        )

    async def delivery_get(self, record_id: str) -> DeliveryRecord | None:
        return await self._log.run(lambda: self._batches.get(self._log.db(), record_id))

    async def deliveries_prune(self, older_than: float, keep: int) -> int:
        def run() -> int:
            db = self._log.db()
            removed = self._batches.prune(db, older_than, keep)
            deleted = self._bodies.remove_unreferenced(self._batches.referenced_segments(db))
            if deleted:
                logger.info("deleted %d delivery-body segments that no record refers to", deleted)
            return removed

        return await self._log.run(run)
