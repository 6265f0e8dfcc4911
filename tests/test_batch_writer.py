"""The batch writer goes on writing when the storage rejects one record or is down."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio
import pytest

from core import writer
from core.records import DeliveryRecord
from core.store import MemoryStorage
from core.writer import BatchWriter
from tests.records import delivery_record

pytestmark = pytest.mark.anyio


class PickyStorage(MemoryStorage):
    """Rejects every batch that contains the record ``poison``, or every batch while down."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def deliveries_write(self, records: Sequence[DeliveryRecord]) -> None:
        if self.down or any(record.id == "poison" for record in records):
            msg = "storage rejects the batch"
            raise ValueError(msg)
        await super().deliveries_write(records)


def record(record_id: str) -> DeliveryRecord:
    return delivery_record(record_id)


@pytest.fixture(autouse=True)
def fast_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "RETRY_DELAY", 0.01)


async def run_until_idle(batch_writer: BatchWriter, seconds: float = 0.3) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(batch_writer.run)
        await anyio.sleep(seconds)
        group.cancel_scope.cancel()


async def test_rejected_record_dropped_rest_written(caplog: pytest.LogCaptureFixture) -> None:
    storage = PickyStorage()
    batch_writer = BatchWriter(storage)
    for record_id in ("r1", "poison", "r2"):
        batch_writer.add_delivery(record(record_id))

    await run_until_idle(batch_writer)

    assert sorted(storage.deliveries) == ["r1", "r2"]
    assert batch_writer.pending == 0
    assert "dropped delivery record poison (delivery d-poison)" in caplog.text
    assert "ValueError: storage rejects the batch" in caplog.text


async def test_records_kept_while_storage_down(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "plughook.writer")
    storage = PickyStorage()
    storage.down = True
    batch_writer = BatchWriter(storage)
    for index in range(5):
        batch_writer.add_delivery(record(f"r{index}"))

    await run_until_idle(batch_writer)

    assert batch_writer.pending == 5
    assert "dropped" not in caplog.text
    storage.down = False
    await batch_writer.flush()
    assert len(storage.deliveries) == 5


class SyncCountingStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.syncs = 0

    async def deliveries_sync(self) -> None:
        self.syncs += 1


async def test_idle_writer_syncs_written_records_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "SYNC_AFTER_IDLE", 0.05)
    storage = SyncCountingStorage()
    batch_writer = BatchWriter(storage)
    batch_writer.add_delivery(record("r1"))

    await run_until_idle(batch_writer)

    assert storage.syncs == 1


async def test_writer_without_records_does_not_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "SYNC_AFTER_IDLE", 0.05)
    storage = SyncCountingStorage()

    await run_until_idle(BatchWriter(storage))

    assert storage.syncs == 0


async def test_new_records_delay_idle_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "SYNC_AFTER_IDLE", 0.2)
    storage = SyncCountingStorage()
    batch_writer = BatchWriter(storage)
    async with anyio.create_task_group() as group:
        group.start_soon(batch_writer.run)
        for index in range(6):
            batch_writer.add_delivery(record(f"r{index}"))
            await anyio.sleep(0.05)
        syncs_while_busy = storage.syncs
        await anyio.sleep(0.4)
        group.cancel_scope.cancel()
    assert syncs_while_busy == 0
    assert storage.syncs == 1
    assert len(storage.deliveries) == 6


class FailingSyncStorage(MemoryStorage):
    async def deliveries_sync(self) -> None:
        msg = "device gone"
        raise OSError(msg)


async def test_failed_sync_logged_writes_continue(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(writer, "SYNC_AFTER_IDLE", 0.05)
    storage = FailingSyncStorage()
    batch_writer = BatchWriter(storage)
    async with anyio.create_task_group() as group:
        group.start_soon(batch_writer.run)
        batch_writer.add_delivery(record("r1"))
        await anyio.sleep(0.2)
        batch_writer.add_delivery(record("r2"))
        await anyio.sleep(0.2)
        group.cancel_scope.cancel()
    assert sorted(storage.deliveries) == ["r1", "r2"]
    assert "syncing the delivery log to disk failed: OSError: device gone" in caplog.text
    assert "Traceback" not in caplog.text
