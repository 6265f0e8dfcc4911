"""Streaming form parsing with python-multipart, and uploaded files.

Multipart file parts are written to a spooled temporary file as the body
arrives, so an upload larger than ``SPOOL_MAX_SIZE`` never sits whole in memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote_to_bytes

import anyio
import anyio.to_thread
from multidict import MultiDict, MultiDictProxy
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import (
    MultipartParser,
    QuerystringParser,
    parse_options_header,
)

from .errors import BadRequest

__all__ = ["SPOOL_MAX_SIZE", "FormData", "UploadFile", "parse_form"]

# Parts up to 1 MiB stay in memory; larger ones roll over to a temporary file.
SPOOL_MAX_SIZE = 1024 * 1024
# Chunk size for copying an upload to its destination.
COPY_CHUNK_SIZE = 1024 * 1024


class UploadFile:
    """A file part of a multipart form, backed by a spooled temporary file."""

    def __init__(self, filename: str, content_type: str, headers: dict[str, str]) -> None:
        self.filename = filename
        self.content_type = content_type
        self.headers = headers
        self.size = 0
        # Closed by close(), which the app calls when the request is done.
        self.file: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MAX_SIZE
        )

    def __repr__(self) -> str:
        return (
            f"UploadFile(filename={self.filename!r}, content_type={self.content_type!r}, "
            f"size={self.size})"
        )

    @property
    def _in_memory(self) -> bool:
        return not getattr(self.file, "_rolled", True)

    async def write(self, data: bytes | memoryview) -> None:
        """Append ``data``; writes that reach the disk run in a worker thread."""
        self.size += len(data)
        if self._in_memory and self.size <= SPOOL_MAX_SIZE:
            self.file.write(data)
        else:
            await anyio.to_thread.run_sync(self.file.write, data)

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all remaining when negative) from the current position."""
        if self._in_memory:
            return self.file.read(size)
        return await anyio.to_thread.run_sync(self.file.read, size)

    async def seek(self, offset: int) -> None:
        """Move the read position to ``offset`` bytes from the start."""
        self.file.seek(offset)

    async def save(self, path: str | os.PathLike[str]) -> int:
        """Copy the whole upload to ``path`` in chunks and return the byte count."""
        self.file.seek(0)
        destination = Path(path)
        return await anyio.to_thread.run_sync(_copy_to, self.file, destination)

    async def close(self) -> None:
        """Delete the temporary file."""
        self.file.close()


def _copy_to(source: IO[bytes], destination: Path) -> int:
    with destination.open("wb") as target:
        shutil.copyfileobj(source, target, COPY_CHUNK_SIZE)
        return target.tell()


class FormData(MultiDictProxy[str | UploadFile]):
    """Fields and files of a parsed form; ``form.get("file")`` returns an ``UploadFile``."""

    def files(self) -> Iterator[UploadFile]:
        """Yield every uploaded file."""
        for value in self.values():
            if isinstance(value, UploadFile):
                yield value

    async def close(self) -> None:
        """Delete the temporary files of every upload."""
        for upload in self.files():
            await upload.close()


async def parse_form(
    content_type: str, chunks: AsyncIterator[bytes], *, charset: str = "utf-8"
) -> FormData:
    """Parse an urlencoded or multipart body as it arrives from ``chunks``."""
    media_type, options = parse_options_header(content_type)
    if media_type == b"application/x-www-form-urlencoded":
        return await _parse_urlencoded(chunks, charset)
    if media_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            msg = "multipart/form-data body without a boundary parameter in Content-Type"
            raise BadRequest(msg)
        return await _parse_multipart(boundary, chunks, charset)
    msg = (
        f"form body expected (application/x-www-form-urlencoded or multipart/form-data), "
        f"got Content-Type {content_type or '(none)'!r}"
    )
    raise BadRequest(msg)


def _decode(data: bytes, charset: str, what: str) -> str:
    try:
        return data.decode(charset)
    except UnicodeDecodeError as exc:
        msg = f"form {what} is not valid {charset} at byte {exc.start}"
        raise BadRequest(msg) from None


async def _parse_urlencoded(chunks: AsyncIterator[bytes], charset: str) -> FormData:
    pairs: list[tuple[bytes, bytes]] = []
    name = bytearray()
    value = bytearray()

    def on_field_start() -> None:
        name.clear()
        value.clear()

    def on_field_name(data: bytes, start: int, end: int) -> None:
        name.extend(data[start:end])

    def on_field_data(data: bytes, start: int, end: int) -> None:
        value.extend(data[start:end])

    def on_field_end() -> None:
        pairs.append((bytes(name), bytes(value)))

    parser = QuerystringParser(
        {
            "on_field_start": on_field_start,
            "on_field_name": on_field_name,
            "on_field_data": on_field_data,
            "on_field_end": on_field_end,
        }
    )
    async for chunk in chunks:
        parser.write(chunk)
    parser.finalize()

    fields: MultiDict[str | UploadFile] = MultiDict()
    for raw_name, raw_value in pairs:
        key = _decode(unquote_to_bytes(raw_name.replace(b"+", b" ")), charset, "field name")
        text = _decode(unquote_to_bytes(raw_value.replace(b"+", b" ")), charset, "field value")
        fields.add(key, text)
    return FormData(fields)


class _MultipartState:
    """Collects parser callbacks; the async side consumes ``events`` after each write."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        # A view, not a copy: slicing each chunk allocated a chunk-sized buffer,
        # and glibc kept those freed buffers as resident memory.
        self.events.append(("data", memoryview(data)[start:end]))

    def on_part_end(self) -> None:
        self.events.append(("end", None))

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field.extend(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value.extend(data[start:end])

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        self.events.append(("headers", self.headers))


async def _parse_multipart(boundary: bytes, chunks: AsyncIterator[bytes], charset: str) -> FormData:
    state = _MultipartState()
    parser = MultipartParser(boundary, state.callbacks())  # type: ignore[arg-type]
    fields: MultiDict[str | UploadFile] = MultiDict()
    name = ""
    upload: UploadFile | None = None
    text = bytearray()
    try:
        async for chunk in chunks:
            parser.write(chunk)
            for kind, payload in state.events:
                if kind == "headers":
                    name, upload = _start_part(payload, charset)
                    text.clear()
                elif kind == "data":
                    if upload is not None:
                        await upload.write(payload)
                    else:
                        text.extend(payload)
                else:
                    if upload is not None:
                        await upload.seek(0)
                        fields.add(name, upload)
                    else:
                        fields.add(name, _decode(bytes(text), charset, f"field {name!r}"))
                    upload = None
            state.events.clear()
        parser.finalize()
    except MultipartParseError as exc:
        await FormData(fields).close()
        msg = f"malformed multipart body: {exc}"
        raise BadRequest(msg) from None
    except BaseException:
        await FormData(fields).close()
        if upload is not None:
            await upload.close()
        raise
    return FormData(fields)


def _start_part(headers: dict[bytes, bytes], charset: str) -> tuple[str, UploadFile | None]:
    disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
    if disposition != b"form-data" or b"name" not in options:
        msg = "multipart part without a Content-Disposition: form-data name"
        raise BadRequest(msg)
    name = _decode(options[b"name"], charset, "part name")
    if b"filename" not in options:
        return name, None
    filename = _decode(options[b"filename"], charset, "file name")
    content_type = headers.get(b"content-type", b"application/octet-stream").decode("latin-1")
    text_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
    return name, UploadFile(filename, content_type, text_headers)
