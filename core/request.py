"""The request a webhook handler receives, with a lazily read body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from python_multipart.multipart import parse_options_header

from .datastructures import Headers, HeadersInput, QueryInput, QueryParams, make_headers, make_query
from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from .forms import FormData, parse_form
from .jsoncodec import loads_utf8

__all__ = ["DEFAULT_MAX_BODY_SIZE", "WebhookRequest"]

# GitHub caps webhook payloads at 25 MB, the largest common sender.
DEFAULT_MAX_BODY_SIZE = 25 * 1024 * 1024

BodySource = bytes | AsyncIterable[bytes]


class WebhookRequest:
    """One inbound webhook delivery, as passed to the handler.

    The adapter supplies the body as bytes or as an async iterable of chunks;
    it is read only when the handler (or a verifier) asks for it, counted
    against the endpoint's limit while it streams, and cached after ``body()``.
    """

    __slots__ = (
        "_body",
        "_consumed",
        "_duplicate",
        "_form",
        "_json",
        "_query",
        "_source",
        "client",
        "delivery_id",
        "headers",
        "max_body_size",
        "method",
        "path",
        "plugin",
        "raw_query",
        "replay",
        "replay_of",
        "url",
        "verified",
    )

    def __init__(
        self,
        method: str,
        plugin: str,
        path: str,
        *,
        headers: HeadersInput = None,
        query: QueryInput = None,
        body: BodySource = b"",
        client: str | None = None,
        url: str = "",
    ) -> None:
        self.method = method.upper()
        self.plugin = plugin
        self.path = path
        self.headers: Headers = make_headers(headers)
        self.raw_query = query
        self._query: QueryParams | None = None
        self.client = client
        self.url = url
        self.max_body_size = DEFAULT_MAX_BODY_SIZE
        self.delivery_id = ""
        # Set for a replay from the delivery log, which bypasses duplicate detection.
        self.replay = False
        self.replay_of = ""
        # True once the endpoint's verifier accepted the request, False while
        # it has not (or rejected it), None when nothing was checked (no
        # verifier, or one that lets unsigned requests through).
        self.verified: bool | None = None
        # Set by duplicate detection for the delivery log.
        self._duplicate = False
        self._source = body
        self._body: bytes | None = body if isinstance(body, bytes) else None
        self._consumed = False
        self._json: Any = _UNSET
        self._form: FormData | None = None

    def __repr__(self) -> str:
        return f"<WebhookRequest {self.method} {self.plugin}{self.path}>"

    @property
    def query(self) -> QueryParams:
        """Query parameters, multi-valued (``request.query.getall("tag")``)."""
        if self._query is None:
            self._query = make_query(self.raw_query)
        return self._query

    @property
    def query_string(self) -> str:
        """The query as a string, for the delivery log."""
        raw = self.raw_query
        if raw is None or isinstance(raw, str):
            return raw or ""
        from urllib.parse import urlencode

        return urlencode(list(self.query.items()))

    @property
    def cached_body(self) -> bytes | None:
        """The body if it has been read already, else None; never starts a read."""
        return self._body

    @property
    def content_type(self) -> str:
        """The media type of the body without parameters, lower-cased."""
        value = self.headers.get("Content-Type", "")
        return value.partition(";")[0].strip().lower()

    @property
    def charset(self) -> str:
        """The charset parameter of Content-Type, ``utf-8`` when absent."""
        value = self.headers.get("Content-Type", "")
        if ";" not in value:
            # A media type without parameters has no charset, so the parser is skipped.
            return "utf-8"
        _, options = parse_options_header(value)
        charset = options.get(b"charset")
        return charset.decode("latin-1").lower() if charset else "utf-8"

    def check_declared_length(self) -> None:
        """Raise ``PayloadTooLarge`` before reading when Content-Length exceeds the limit."""
        declared = self.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_size:
            raise self._too_large()

    def _too_large(self) -> PayloadTooLarge:
        msg = f"request body exceeds the endpoint limit of {self.max_body_size} bytes"
        return PayloadTooLarge(msg)

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks as it arrives, enforcing the size limit.

        After ``body()`` this yields the cached bytes; otherwise the body can be
        streamed only once.
        """
        if self._body is not None:
            if len(self._body) > self.max_body_size:
                raise self._too_large()
            yield self._body
            return
        if self._consumed:
            msg = "the request body was already streamed and cannot be read again"
            raise RuntimeError(msg)
        self._consumed = True
        self.check_declared_length()
        received = 0
        source = self._source
        assert not isinstance(source, bytes)
        async for chunk in source:
            received += len(chunk)
            if received > self.max_body_size:
                raise self._too_large()
            yield chunk

    async def body(self) -> bytes:
        """Return the raw body bytes, reading them on the first call."""
        if self._body is None:
            self._body = b"".join([chunk async for chunk in self.stream()])
        elif len(self._body) > self.max_body_size:
            raise self._too_large()
        return self._body

    async def text(self) -> str:
        """Return the body decoded with the Content-Type charset (UTF-8 by default)."""
        data = await self.body()
        charset = self.charset
        try:
            return data.decode(charset)
        except LookupError:
            msg = f"unknown charset {charset!r} in Content-Type"
            raise UnsupportedMediaType(msg) from None
        except UnicodeDecodeError as exc:
            raise _not_decodable(charset, exc) from None

    async def json(self) -> Any:
        """Return the body parsed as JSON; invalid JSON raises ``BadRequest`` with its position."""
        if self._json is _UNSET:
            try:
                if self.charset == "utf-8":
                    data = await self.body()
                    try:
                        self._json = loads_utf8(data)
                    except UnicodeDecodeError as exc:
                        raise _not_decodable("utf-8", exc) from None
                else:
                    self._json = json.loads(await self.text())
            except json.JSONDecodeError as exc:
                msg = (
                    f"invalid JSON body: {exc.msg} at line {exc.lineno} column {exc.colno} "
                    f"(char {exc.pos})"
                )
                raise BadRequest(msg) from None
        return self._json

    async def form(self) -> FormData:
        """Parse an urlencoded or multipart body, streaming file parts to temporary files."""
        if self._form is None:
            self._form = await parse_form(
                self.headers.get("Content-Type", ""), self.stream(), charset=self.charset
            )
        return self._form

    async def close(self) -> None:
        """Release temporary files of a parsed form."""
        if self._form is not None:
            await self._form.close()


def _not_decodable(charset: str, exc: UnicodeDecodeError) -> BadRequest:
    msg = f"request body is not valid {charset}: invalid byte at position {exc.start}"
    return BadRequest(msg)


class _Unset:
    __slots__ = ()


_UNSET: Any = _Unset()
