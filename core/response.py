"""Responses and the normalisation of handler results into them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .errors import HTTPError
from .jsoncodec import dumps

__all__ = ["InvalidResult", "WebhookResponse", "error_response", "json_response", "to_response"]

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain"
BYTES_TYPE = "application/octet-stream"


@attrs.define(slots=True)
class WebhookResponse:
    """A response ready for an adapter: status, raw body, extra headers and media type.

    ``media_type`` becomes the Content-Type header; a ``text/*`` type gets
    ``; charset=utf-8`` added by ``content_type``.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = attrs.field(factory=dict)
    media_type: str | None = None

    @property
    def content_type(self) -> str | None:
        """The full Content-Type value, or None for a body-less response."""
        if self.media_type is None:
            return None
        if self.media_type.startswith("text/") and "charset" not in self.media_type:
            return f"{self.media_type}; charset=utf-8"
        return self.media_type


class InvalidResult(TypeError):
    """Raised when a handler returns something that cannot become a response."""


def dump_json(value: Any) -> bytes:
    """Serialise ``value`` compactly as UTF-8 JSON, keeping non-ASCII characters readable."""
    return dumps(value)


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> WebhookResponse:
    """Build a JSON response."""
    return WebhookResponse(status, dump_json(value), dict(headers or {}), JSON_TYPE)


def error_response(error: HTTPError) -> WebhookResponse:
    """Build the ``{"error": message}`` response of an ``HTTPError``."""
    return WebhookResponse(
        error.status, dump_json({"error": error.message}), dict(error.headers), JSON_TYPE
    )


def _body_response(body: Any, status: int, headers: dict[str, str]) -> WebhookResponse:
    if isinstance(body, dict | list):
        try:
            data = dump_json(body)
        except (TypeError, ValueError) as exc:
            msg = f"handler returned a {type(body).__name__} that is not JSON-serialisable: {exc}"
            raise InvalidResult(msg) from None
        return WebhookResponse(status, data, headers, JSON_TYPE)
    if isinstance(body, str):
        return WebhookResponse(status, body.encode(), headers, TEXT_TYPE)
    if isinstance(body, bytes | bytearray | memoryview):
        return WebhookResponse(status, bytes(body), headers, BYTES_TYPE)
    if body is None:
        return WebhookResponse(status, b"", headers, None)
    msg = f"handler returned an unsupported body type {type(body).__name__}"
    raise InvalidResult(msg)


def _check_status(status: Any) -> int:
    if type(status) is not int or not 100 <= status <= 599:
        msg = f"handler returned an invalid HTTP status {status!r}"
        raise InvalidResult(msg)
    return status


def to_response(result: Any) -> WebhookResponse:
    """Turn a handler's return value into a ``WebhookResponse``.

    dict/list → JSON 200, str → text 200, bytes → octet-stream 200, None → 204,
    a ``WebhookResponse`` unchanged, and ``(body, status)`` or
    ``(body, status, headers)`` with the same body rules. Raises
    ``InvalidResult`` for anything else.
    """
    if isinstance(result, WebhookResponse):
        return result
    if result is None:
        return WebhookResponse(204)
    if isinstance(result, tuple):
        if len(result) == 2:
            body, status = result
            headers: Any = {}
        elif len(result) == 3:
            body, status, headers = result
        else:
            msg = (
                f"handler returned a tuple of {len(result)} items; "
                "expected (body, status[, headers])"
            )
            raise InvalidResult(msg)
        if not isinstance(headers, Mapping):
            msg = f"handler returned headers of type {type(headers).__name__}; expected a mapping"
            raise InvalidResult(msg)
        status = _check_status(status)
        return _body_response(body, status, {str(k): str(v) for k, v in headers.items()})
    return _body_response(result, 200, {})
