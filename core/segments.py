"""Append-only segment files that hold the request bodies of the SQLite delivery log.

A 2 KiB body stored as a SQLite blob fills most of a page, which SQLite
writes to the WAL and again at each checkpoint. Appending it to a plain file
costs less than half the CPU time (measured on the 2-core benchmark VM of
``benchmarks/README.md``: about 5 µs against 12 µs per body). The
delivery-log row keeps the segment's name, the body's offset and its length.

Each ``BodySegments`` object writes its own segment files (the name carries a
random token), so a server and a command-line replay beside it never append
to the same file. A writer starts a new segment every ``SEGMENT_SECONDS`` or
``SEGMENT_BYTES``. Pruning deletes a whole segment once no delivery-log row
refers to it and it has not been modified for ``STALE_SECONDS``. A writer
never appends to a segment older than ``SEGMENT_SECONDS``, so a segment
deleted that late can have no writer left.

Durability: ``append`` writes to the page cache, so a body survives a crash
of the process at once. Only ``sync`` flushes it to the disk (``fdatasync``),
and the log calls it before it commits a batch whenever ``SYNC_SECONDS`` have
passed since the last sync, and after a second without writes. One
``fdatasync`` per batch cost about 5 µs of system time per request under load
on the benchmark VM, which is why the log syncs at most about once a second
while busy. A power
loss may therefore lose the bodies of about the last second of deliveries
while their rows survive (SQLite's ``synchronous=NORMAL`` gives the rows the
same kind of guarantee). Each row keeps the CRC-32 of its body, so a body
lost or torn that way reads as missing instead of as wrong bytes.

After each sync the whole pages of synced bodies are dropped from the page
cache (``posix_fadvise`` ``DONTNEED``, where the platform has it): bodies
are rarely read again, and a reader gets them from the disk. Under sustained
load on the benchmark VM, appending to a page cache that kept growing cost
about 7 µs per 2.3 KB body once it had grown by about 900 MB, against 1.3–2.8
µs with the pages dropped, where new pages reuse the freed ones.
"""

from __future__ import annotations

import logging
import mmap
import os
import secrets
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

__all__ = ["SEGMENT_BYTES", "SEGMENT_SECONDS", "STALE_SECONDS", "SYNC_SECONDS", "BodySegments"]

logger = logging.getLogger("plughook.segments")

# A writer starts a new segment when its current one is this old or this large.
SEGMENT_SECONDS = 600.0
SEGMENT_BYTES = 64 * 1024 * 1024
# A segment that no row refers to is deleted once unmodified for this long.
STALE_SECONDS = 2 * SEGMENT_SECONDS
# Appended bodies reach the disk at least this often while the log is written.
SYNC_SECONDS = 1.0
SUFFIX = ".seg"
# fdatasync skips the metadata flush that fsync adds; not every platform has it.
_sync = getattr(os, "fdatasync", os.fsync)
# os.posix_fadvise is missing on some platforms, Windows among them.
_CAN_DROP_PAGES = hasattr(os, "posix_fadvise")


class BodySegments:
    """The segment folder of one delivery log; not thread-safe (one worker thread at a time)."""

    def __init__(
        self,
        folder: Path,
        clock: Callable[[], float] = time.time,
        max_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.folder = folder
        self._clock = clock
        self._max_bytes = max_bytes
        self._fd: int | None = None
        self._name = ""
        self._size = 0
        # Bytes of the current segment whose pages were dropped from the cache.
        self._dropped = 0
        self._drop_pages = _CAN_DROP_PAGES
        self._opened_at = 0.0
        self._unsynced = False
        self._synced_at = clock()

    @property
    def unsynced(self) -> bool:
        """True when bodies were appended since the last ``sync``."""
        return self._unsynced

    def sync_due(self) -> bool:
        """Return whether appended bodies have waited ``SYNC_SECONDS`` or more for a sync."""
        return self._unsynced and self._clock() - self._synced_at >= SYNC_SECONDS

    def sync(self) -> None:
        """Flush the bodies appended so far to the disk."""
        if self._unsynced and self._fd is not None:
            try:
                _sync(self._fd)
            except OSError:
                # Whether the data reached the disk is unknown, so the next
                # append starts a new segment.
                self._unsynced = False
                self.close()
                raise
            self._drop_synced_pages(self._fd)
        self._unsynced = False
        self._synced_at = self._clock()

    def append(self, bodies: Sequence[bytes]) -> list[tuple[str, int]]:
        """Write ``bodies`` to the current segment and return (segment, offset) of each.

        An empty body is not written and gets ``("", 0)``.
        """
        offsets: list[int | None] = []
        chunks: list[bytes] = []
        total = 0
        for body in bodies:
            if body:
                offsets.append(total)
                chunks.append(body)
                total += len(body)
            else:
                offsets.append(None)
        if not chunks:
            return [("", 0)] * len(offsets)
        self._rotate_if_due(total)
        name, base = self._name, self._size
        self._write(b"".join(chunks))
        return [("", 0) if offset is None else (name, base + offset) for offset in offsets]

    def read(self, name: str, offset: int, length: int, crc: int | None = None) -> bytes | None:
        """Return the body at ``offset``, or None when it is gone, cut short or not ``crc``.

        A ``crc`` of None skips the check (rows written before checksums).
        """
        if not _valid_name(name):
            return None
        try:
            fd = os.open(self.folder / name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length or (crc is not None and zlib.crc32(data) != crc):
            return None
        return data

    def remove_unreferenced(self, referenced: Collection[str]) -> int:
        """Delete stale segments that no row refers to; return how many were deleted."""
        if not self.folder.is_dir():
            return 0
        stale_before = self._clock() - STALE_SECONDS
        removed = 0
        for path in self.folder.iterdir():
            name = path.name
            if not _valid_name(name) or name in referenced or name == self._name:
                continue
            try:
                if path.stat().st_mtime >= stale_before:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    def close(self) -> None:
        """Sync and close the current segment; the next ``append`` starts a new one."""
        if self._fd is not None:
            fd = self._fd
            try:
                if self._unsynced:
                    _sync(fd)
                    self._drop_synced_pages(fd)
            finally:
                self._fd = None
                self._name = ""
                self._unsynced = False
                os.close(fd)

    def _rotate_if_due(self, incoming: int) -> None:
        if self._fd is not None:
            too_old = self._clock() - self._opened_at >= SEGMENT_SECONDS
            too_large = self._size > 0 and self._size + incoming > self._max_bytes
            if not (too_old or too_large):
                return
            self.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        now = self._clock()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        name = f"{stamp}-{secrets.token_hex(6)}{SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.folder / name, flags, 0o600)
        self._name = name
        self._size = 0
        self._dropped = 0
        self._opened_at = now

    def _drop_synced_pages(self, fd: int) -> None:
        """Drop the whole pages synced since the last drop from the page cache.

        The last page, partly filled, stays: the next append writes into it.
        """
        end = self._size - self._size % mmap.PAGESIZE
        if not self._drop_pages or end <= self._dropped:
            return
        try:
            os.posix_fadvise(fd, self._dropped, end - self._dropped, os.POSIX_FADV_DONTNEED)
        except OSError as exc:
            # Only a hint: the pages stay cached and nothing is lost. One
            # warning is logged, and this writer drops no more pages.
            self._drop_pages = False
            logger.warning(
                "dropping synced delivery bodies of segment %s from the page cache failed, "
                "so they stay cached: %s",
                self._name,
                exc,
            )
            return
        self._dropped = end

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        self._unsynced = True
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                self._size += written
                view = view[written:]
        except OSError:
            # The offsets of a partly written segment are no longer known for
            # sure, so the next append starts a new segment.
            self.close()
            raise


def _valid_name(name: str) -> bool:
    """Return whether ``name`` is a segment file name, so no path can leave the folder."""
    return name.endswith(SUFFIX) and "/" not in name and "\\" not in name and name[0] != "."
