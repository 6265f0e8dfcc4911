"""Request bodies of the SQLite delivery log in segment files: restart, replay, pruning."""

from __future__ import annotations

import json
import mmap
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest

from core import Plugin, WebhookApp, WebhookRequest
from core import segments as segments_module
from core.logbatches import BATCH_SCHEMA, BatchedLog
from core.records import DeliveryRecord
from core.segments import SEGMENT_SECONDS, STALE_SECONDS, SYNC_SECONDS, BodySegments
from core.sqlite import SQLiteStorage
from tests.records import delivery_record
from tests.servers import running_server

pytestmark = pytest.mark.anyio

echo = Plugin("seg-echo", version="1")
seen: list[bytes] = []


@echo.mount_webhook("/hook", methods=["POST"])
async def hook(request: WebhookRequest) -> Any:
    body = await request.body()
    seen.append(body)
    return {"length": len(body)}


@pytest.fixture(autouse=True)
def reset_seen() -> None:
    seen.clear()


BODY = b'{"ref": "refs/heads/main", "zen": "\xe2\x9c\x93"}\x00\xff' * 40


def make_record(record_id: str, received_at: float, body: bytes = BODY) -> DeliveryRecord:
    return delivery_record(
        record_id,
        delivery_id=f"delivery-{record_id}",
        received_at=received_at,
        plugin="seg-echo",
        path="/hook",
        headers=[("Content-Type", "application/json")],
        body=body,
        duration_ms=1.5,
    )


# The table of one row per delivery that logs used before batch rows; the
# segment columns came with segment files.
ROW_TABLE = (
    "CREATE TABLE deliveries (id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, "
    "received_at REAL NOT NULL, plugin TEXT NOT NULL, path TEXT NOT NULL, "
    "method TEXT NOT NULL, headers TEXT NOT NULL, query TEXT NOT NULL, "
    "body BLOB NOT NULL, body_truncated INTEGER NOT NULL, status INTEGER NOT NULL, "
    "duration_ms REAL NOT NULL, error_id TEXT NOT NULL, replay_of TEXT NOT NULL{extra})"
)
SEGMENT_COLUMNS = (
    ", body_segment TEXT NOT NULL DEFAULT '', body_offset INTEGER NOT NULL DEFAULT 0, "
    "body_length INTEGER NOT NULL DEFAULT 0"
)


def segment_files(data: Path) -> list[Path]:
    return sorted((data / "plughook-deliveries-bodies").glob("*.seg"))


def make_stale(paths: list[Path]) -> None:
    old = time.time() - STALE_SECONDS - 60
    for path in paths:
        os.utime(path, (old, old))


async def test_body_survives_server_restart(tmp_path: Path) -> None:
    app = WebhookApp([echo], data_dir=tmp_path)
    async with (
        running_server(app, "aiohttp") as base,
        aiohttp.ClientSession() as session,
        session.post(f"{base}/api/plugin/seg-echo/webhook/hook", data=BODY) as response,
    ):
        assert response.status == 200

    restarted = WebhookApp([echo], data_dir=tmp_path)
    async with restarted.running(workers=False):
        [record] = await restarted.storage.deliveries_list(None, None, 10)
    assert record.body == BODY
    assert not record.body_truncated


async def test_body_is_kept_out_of_sqlite(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("r1", 1000.0)])
    await storage.close()

    with sqlite3.connect(tmp_path / "plughook-deliveries.sqlite3") as db:
        [(records, segments)] = db.execute(
            "SELECT records, segments FROM delivery_batches"
        ).fetchall()
    assert BODY[:40] not in records
    assert [path.name for path in segment_files(tmp_path)] == json.loads(segments)


async def test_replay_reads_body_from_segment(tmp_path: Path) -> None:
    first = WebhookApp([echo], data_dir=tmp_path)
    async with first.running(workers=False):
        await first.handle(WebhookRequest("POST", "seg-echo", "/hook", body=BODY))
        await first.writer.flush()
        [record] = await first.storage.deliveries_list(None, None, 10)

    second = WebhookApp([echo], data_dir=tmp_path)
    async with second.running(workers=False):
        original, response = await second.replay(record.id)
    assert original.body == BODY
    assert response.status == 200
    assert seen == [BODY, BODY]


async def test_empty_body_writes_no_segment(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("r1", 1000.0, body=b"")])
    record = await storage.delivery_get("r1")
    await storage.close()
    assert record is not None
    assert record.body == b""
    assert segment_files(tmp_path) == []


async def test_missing_segment_marks_body_cut(tmp_path: Path) -> None:
    app = WebhookApp([echo], data_dir=tmp_path)
    async with app.running(workers=False):
        await app.handle(WebhookRequest("POST", "seg-echo", "/hook", body=BODY))
        await app.writer.flush()
        for path in segment_files(tmp_path):
            path.unlink()
        [record] = await app.storage.deliveries_list(None, None, 10)
        with pytest.raises(ValueError, match="lost from its segment file"):
            await app.replay(record.id)
    assert record.body == b""
    assert record.body_truncated


async def test_prune_deletes_unreferenced_stale_segment(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("r1", 1000.0)])
    await storage.close()
    make_stale(segment_files(tmp_path))

    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    removed = await storage.deliveries_prune(2000.0, 100)
    await storage.close()
    assert removed == 1
    assert segment_files(tmp_path) == []


async def test_prune_keeps_referenced_segment(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("r1", 1000.0), make_record("r2", 3000.0)])
    make_stale(segment_files(tmp_path))
    await storage.deliveries_prune(2000.0, 100)
    record = await storage.delivery_get("r2")
    await storage.close()
    assert len(segment_files(tmp_path)) == 1
    assert record is not None
    assert record.body == BODY


async def test_prune_keeps_recent_unreferenced_segment(tmp_path: Path) -> None:
    # A segment written moments ago may belong to rows another writer has not committed yet.
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("r1", 1000.0)])
    await storage.close()

    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_prune(2000.0, 100)
    await storage.close()
    assert len(segment_files(tmp_path)) == 1


async def test_log_from_before_segments_still_reads(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "plughook-deliveries.sqlite3") as db:
        db.execute(ROW_TABLE.format(extra=""))
        db.execute(
            "INSERT INTO deliveries VALUES ('old', 'd-old', 1000.0, 'seg-echo', '/hook', 'POST', "
            "'[]', '', ?, 0, 200, 1.0, '', '')",
            (BODY,),
        )
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("new", 2000.0)])
    old = await storage.delivery_get("old")
    new = await storage.delivery_get("new")
    await storage.close()
    assert old is not None
    assert old.body == BODY
    assert new is not None
    assert new.body == BODY


def test_segment_rotates_after_its_window(tmp_path: Path) -> None:
    now = [1_000_000.0]
    segments = BodySegments(tmp_path, clock=lambda: now[0])
    [(first, _)] = segments.append([b"one"])
    now[0] += SEGMENT_SECONDS
    [(second, offset)] = segments.append([b"two"])
    segments.close()
    assert first != second
    assert offset == 0
    assert segments.read(first, 0, 3) == b"one"
    assert segments.read(second, 0, 3) == b"two"


def test_segment_rotates_when_full(tmp_path: Path) -> None:
    segments = BodySegments(tmp_path, max_bytes=100)
    [(first, _)] = segments.append([b"x" * 90])
    [(second, _)] = segments.append([b"y" * 20])
    segments.close()
    assert first != second


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the file descriptors that segments sync instead of syncing them."""
    synced: list[int] = []
    monkeypatch.setattr(segments_module, "_sync", synced.append)
    return synced


@pytest.fixture
def drops(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record the (offset, length) ranges that segments drop from the page cache."""
    dropped: list[tuple[int, int]] = []

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        dropped.append((offset, length))

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    return dropped


def test_sync_drops_whole_synced_pages(tmp_path: Path, drops: list[tuple[int, int]]) -> None:
    page = mmap.PAGESIZE
    segments = BodySegments(tmp_path)
    segments.append([b"a" * (2 * page + 100)])
    segments.sync()
    segments.append([b"b" * page])
    segments.sync()
    segments.close()
    assert drops == [(0, 2 * page), (2 * page, page)]


def test_sync_keeps_partial_first_page(tmp_path: Path, drops: list[tuple[int, int]]) -> None:
    segments = BodySegments(tmp_path)
    segments.append([b"short body"])
    segments.sync()
    segments.close()
    assert drops == []


def test_close_drops_synced_pages(tmp_path: Path, drops: list[tuple[int, int]]) -> None:
    segments = BodySegments(tmp_path)
    segments.append([b"c" * mmap.PAGESIZE])
    segments.close()
    assert drops == [(0, mmap.PAGESIZE)]


def test_body_reads_back_after_pages_dropped(tmp_path: Path) -> None:
    segments = BodySegments(tmp_path)
    body = os.urandom(3 * mmap.PAGESIZE)
    [(name, offset)] = segments.append([body])
    segments.sync()
    assert segments.read(name, offset, len(body)) == body


def test_failed_page_drop_keeps_segment_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append(offset)
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    segments = BodySegments(tmp_path)
    first = os.urandom(mmap.PAGESIZE)
    [(name, offset)] = segments.append([first])
    segments.sync()
    [(later_name, later_offset)] = segments.append([b"a" * mmap.PAGESIZE])
    segments.close()
    assert segments.read(name, offset, len(first)) == first
    assert later_name == name
    assert segments.read(later_name, later_offset, 5) == b"aaaaa"
    assert calls == [0]
    assert caplog.text.count("from the page cache failed") == 1


def test_append_leaves_the_sync_for_later(tmp_path: Path, syncs: list[int]) -> None:
    segments = BodySegments(tmp_path)
    segments.append([b"abc"])
    assert syncs == []
    assert segments.unsynced


def test_sync_is_due_after_its_interval(tmp_path: Path, syncs: list[int]) -> None:
    now = [1_000_000.0]
    segments = BodySegments(tmp_path, clock=lambda: now[0])
    segments.append([b"abc"])
    now[0] += SYNC_SECONDS - 0.01
    early = segments.sync_due()
    now[0] += 0.01
    assert not early
    assert segments.sync_due()


def test_sync_skips_when_nothing_new(tmp_path: Path, syncs: list[int]) -> None:
    segments = BodySegments(tmp_path)
    segments.append([b"abc"])
    segments.sync()
    segments.sync()
    assert len(syncs) == 1
    assert not segments.unsynced


def test_close_syncs_what_was_appended(tmp_path: Path, syncs: list[int]) -> None:
    segments = BodySegments(tmp_path)
    segments.append([b"abc"])
    segments.close()
    assert len(syncs) == 1


def test_log_syncs_when_due(tmp_path: Path, syncs: list[int]) -> None:
    now = [1_000_000.0]
    log = BatchedLog(BodySegments(tmp_path / "bodies", clock=lambda: now[0]))
    with sqlite3.connect(tmp_path / "log.sqlite3", isolation_level=None) as db:
        db.executescript(BATCH_SCHEMA)
        log.write(db, [make_record("r1", 1000.0)])
        within_interval = len(syncs)
        now[0] += SYNC_SECONDS
        log.write(db, [make_record("r2", 1001.0)])
        (count,) = db.execute("SELECT COUNT(*) FROM delivery_batches").fetchone()
    assert within_interval == 0
    assert len(syncs) == 1
    assert count == 2


async def stored_record(folder: Path) -> tuple[SQLiteStorage, Path]:
    """Open a storage in ``folder``, write record r1, and return the storage and its segment."""
    storage = SQLiteStorage(folder / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("r1", 1000.0)])
    [segment] = segment_files(folder)
    return storage, segment


async def test_corrupt_body_reads_as_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage, segment = await stored_record(tmp_path)
    data = bytearray(segment.read_bytes())
    data[5] ^= 0xFF
    segment.write_bytes(bytes(data))
    record = await storage.delivery_get("r1")
    await storage.close()
    assert record is not None
    assert record.body == b""
    assert record.body_truncated
    assert "does not match its checksum" in caplog.text


async def test_listing_without_bodies_reads_no_segment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage, segment = await stored_record(tmp_path)
    segment.unlink()
    [record] = await storage.deliveries_list(None, None, 10, with_bodies=False)
    await storage.close()
    assert record.id == "r1"
    assert not record.body_truncated
    assert "missing from segment" not in caplog.text


@pytest.mark.parametrize(
    ("dropped", "verified"),
    [(1, True), (2, None), (3, None)],
    ids=["written-before-duplicate", "written-before-verified", "written-before-checksums"],
)
async def test_record_of_older_format_reads_back(
    tmp_path: Path, dropped: int, verified: bool | None
) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    written = make_record("r1", 1000.0)
    written.verified = True
    written.duplicate = True
    await storage.deliveries_write([written])
    await storage.close()
    # Drop the trailing fields that older batches lack: ``duplicate``,
    # ``verified``, then the checksum.
    with sqlite3.connect(tmp_path / "plughook-deliveries.sqlite3") as db:
        [(records,)] = db.execute("SELECT records FROM delivery_batches").fetchall()
        shortened = [record[:-dropped] for record in json.loads(records)]
        db.execute("UPDATE delivery_batches SET records=?", (json.dumps(shortened).encode(),))
    reopened = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await reopened.open()
    record = await reopened.delivery_get("r1")
    await reopened.close()
    assert record is not None
    assert record.body == BODY
    assert record.verified is verified
    assert record.duplicate is False


def test_segment_offsets_follow_each_other(tmp_path: Path) -> None:
    segments = BodySegments(tmp_path)
    places = segments.append([b"abc", b"", b"defg"])
    more = segments.append([b"hi"])
    segments.close()
    assert places[1] == ("", 0)
    assert [offset for _, offset in places] == [0, 0, 3]
    assert more[0][1] == 7
    assert segments.read(more[0][0], 7, 2) == b"hi"


def test_segment_read_rejects_path_outside_folder(tmp_path: Path) -> None:
    (tmp_path / "outside.seg").write_bytes(b"secret")
    segments = BodySegments(tmp_path / "bodies")
    assert segments.read("../outside.seg", 0, 6) is None


def test_segment_read_of_short_file_is_none(tmp_path: Path) -> None:
    segments = BodySegments(tmp_path)
    [(name, offset)] = segments.append([b"abc"])
    segments.close()
    assert segments.read(name, offset, 10) is None


async def test_log_of_rows_with_segments_converts(tmp_path: Path) -> None:
    bodies = BodySegments(tmp_path / "plughook-deliveries-bodies")
    [(segment, offset)] = bodies.append([BODY])
    bodies.close()
    with sqlite3.connect(tmp_path / "plughook-deliveries.sqlite3") as db:
        db.execute(ROW_TABLE.format(extra=SEGMENT_COLUMNS))
        db.execute(
            "INSERT INTO deliveries VALUES ('seg', 'd-seg', 1000.0, 'seg-echo', '/hook', 'POST', "
            "'[[\"X-Note\", \"n\"]]', 'a=1', x'', 0, 401, 1.0, 'e1', '', ?, ?, ?)",
            (segment, offset, len(BODY)),
        )
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    converted = await storage.delivery_get("seg")
    await storage.close()
    with sqlite3.connect(tmp_path / "plughook-deliveries.sqlite3") as db:
        [(left,)] = db.execute("SELECT COUNT(*) FROM deliveries").fetchall()
    assert converted == attrs.evolve(
        make_record("seg", 1000.0),
        delivery_id="d-seg",
        headers=[("X-Note", "n")],
        query="a=1",
        status=401,
        duration_ms=1.0,
        error_id="e1",
    )
    assert left == 0


async def test_list_orders_records_of_overlapping_batches(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("a1", 1.0), make_record("a3", 3.0)])
    await storage.deliveries_write([make_record("b2", 2.0), make_record("b4", 4.0)])
    newest = await storage.deliveries_list(None, None, 3)
    await storage.close()
    assert [record.id for record in newest] == ["b4", "a3", "b2"]


async def test_prune_by_count_cuts_inside_a_batch(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record(f"a{i}", float(i)) for i in range(3)])
    await storage.deliveries_write([make_record(f"b{i}", float(10 + i)) for i in range(3)])
    removed = await storage.deliveries_prune(0.0, 4)
    left = await storage.deliveries_list(None, None, 10)
    await storage.close()
    assert removed == 2
    assert [record.id for record in left] == ["b2", "b1", "b0", "a2"]


async def test_prune_by_age_drops_whole_and_straddling_batches(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record(f"a{i}", float(i)) for i in range(3)])
    await storage.deliveries_write([make_record(f"b{i}", float(10 + i)) for i in range(3)])
    removed = await storage.deliveries_prune(11.0, 100)
    left = await storage.deliveries_list(None, None, 10)
    await storage.close()
    assert removed == 4
    assert [record.id for record in left] == ["b2", "b1"]


async def test_old_table_rows_move_on_reopen(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "plughook-deliveries.sqlite3") as db:
        db.execute(ROW_TABLE.format(extra=SEGMENT_COLUMNS))
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.deliveries_write([make_record("new", 2000.0)])
    await storage.close()
    # An older plughook, still running, writes a row to its own table.
    with sqlite3.connect(tmp_path / "plughook-deliveries.sqlite3") as db:
        db.execute(
            "INSERT INTO deliveries VALUES ('late', 'd-late', 3000.0, 'seg-echo', '/hook', "
            "'POST', '[]', '', ?, 0, 200, 1.0, '', '', '', 0, 0)",
            (BODY,),
        )
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    listed = await storage.deliveries_list(None, None, 10)
    await storage.close()
    assert [(record.id, record.body) for record in listed] == [("late", BODY), ("new", BODY)]
