"""The Litestar binding: ``create_app(webhook_app)`` returns a ``litestar.Litestar`` app.

Webhook requests skip Litestar's request parsing and response building: a
plain ASGI handler mounted at ``/api/plugin`` turns the ASGI scope into a
``core.WebhookRequest`` and sends the core's response itself, so the
per-request cost is the core's dispatch plus Litestar's routing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from litestar import Litestar, Request, Response, asgi
from litestar.enums import ScopeType
from litestar.exceptions import NotFoundException
from multidict import CIMultiDict, CIMultiDictProxy

from core import WebhookApp, WebhookRequest, WebhookResponse
from core.routing import WEBHOOK_PREFIX, split_webhook_path

from .common import (
    CLOSE_DELAY,
    SERVICE_PATHS,
    client_disconnected,
    discards_rest,
    not_found_response,
    service_response,
)

if TYPE_CHECKING:
    from litestar.types import HTTPReceiveMessage, HTTPScope, Receive, Scope, Send

__all__ = ["create_app"]

_MOUNT_PATH = WEBHOOK_PREFIX.rstrip("/")
# Statuses whose responses carry no body and no Content-Length (RFC 9110, section 8.6).
_BODILESS_STATUSES = frozenset({204, 304})
# WebSocket close code 1008 (policy violation, RFC 6455): webhooks are plain HTTP.
_WS_POLICY_VIOLATION = 1008


def create_app(webhook_app: WebhookApp) -> Litestar:
    """Build a Litestar app serving ``webhook_app``'s endpoints and service routes.

    The core app starts and stops in the Litestar lifespan. Litestar's own
    ``request_max_body_size`` is off: the core enforces each endpoint's limit
    while the body streams.
    """

    async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
        await _serve_webhook(webhook_app, scope, receive, send)

    def run_core(app: Litestar) -> AbstractAsyncContextManager[WebhookApp]:
        return webhook_app.running()

    async def service(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION, "reason": ""})
            return
        # Litestar's router ignores a trailing slash; the path as sent decides.
        _, url_path = _original_path(scope, mount_path="")
        response = service_response(webhook_app, scope["method"], url_path)
        await _send_response(send, response or not_found_response(), close=False)

    mount = asgi(_MOUNT_PATH, is_mount=True, copy_scope=False)(webhook)
    # Plain ASGI handlers take every method, so the 405 and HEAD answers come
    # from common.service_response as under aiohttp.
    services = [asgi(path, copy_scope=False, name=path)(service) for path in SERVICE_PATHS]
    return Litestar(
        route_handlers=[mount, *services],
        exception_handlers={NotFoundException: _not_found},
        lifespan=[run_core],
        request_max_body_size=None,
        openapi_config=None,
        logging_config=None,
    )


def _not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[bytes]:
    """Build the JSON 404 for a path outside every route, as the aiohttp adapter sends it."""
    response = not_found_response()
    return Response(response.body, status_code=404, media_type=response.content_type)


async def _serve_webhook(app: WebhookApp, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != ScopeType.HTTP:
        await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION, "reason": ""})
        return
    raw_path, url_path = _original_path(scope)
    target = split_webhook_path(url_path)
    if target is None:
        await _send_response(send, not_found_response(), close=False)
        return

    headers = CIMultiDictProxy(
        CIMultiDict(
            [(name.decode("latin-1"), _header_text(value)) for name, value in scope["headers"]]
        )
    )
    query = scope["query_string"].decode("latin-1")
    client = scope.get("client")
    method = scope["method"]
    body = _RequestBody(receive, headers, method, url_path, client[0] if client else None)
    request = WebhookRequest(
        method,
        target[0],
        target[1],
        headers=headers,
        query=query,
        body=body.stream() if body.expected else b"",
        client=body.client,
        url=f"{raw_path}?{query}" if query else raw_path,
    )
    early: list[asyncio.Task[None]] = []

    def respond_early(response: WebhookResponse) -> None:
        # The handler may still be reading the body, so the connection closes.
        sending = _send_response(send, response, close=not body.complete)
        early.append(asyncio.get_running_loop().create_task(sending))

    response = await app.handle(request, respond_early=respond_early)
    if early:
        await early[0]
        return
    await _send_response(send, response, close=body.must_close(response.status))


def _header_text(value: bytes) -> str:
    """Decode a header value as aiohttp's parser does: UTF-8, other bytes as lone surrogates.

    Both adapters then give a handler, and the duplicate check, the same text.
    """
    return value.decode("utf-8", "surrogateescape")


def _original_path(scope: HTTPScope, mount_path: str = _MOUNT_PATH) -> tuple[str, str]:
    """Return the request path as sent and decoded, before a mount cut ``mount_path`` off."""
    raw_path = scope.get("raw_path")
    if raw_path is None:
        # NOTE: without raw_path (an ASGI server that omits it) Litestar's
        # rewritten path is used; it may carry or lose a trailing slash.
        path = mount_path + scope["path"]
        return path, path
    sent = raw_path.decode("latin-1")
    return sent, unquote(sent) if "%" in sent else sent


class _RequestBody:
    """Streams the body from ASGI ``receive`` and tracks how much of it arrived."""

    __slots__ = (
        "client",
        "complete",
        "declared",
        "expected",
        "method",
        "path",
        "receive",
        "received",
    )

    def __init__(
        self,
        receive: Receive,
        headers: CIMultiDictProxy[str],
        method: str,
        path: str,
        client: str | None,
    ) -> None:
        self.receive = receive
        self.method = method
        self.path = path
        self.client = client
        length = headers.get("Content-Length")
        self.declared = int(length) if length is not None and length.isdigit() else None
        self.expected = bool(self.declared) or "Transfer-Encoding" in headers
        self.complete = not self.expected
        self.received = 0

    async def stream(self) -> AsyncIterator[bytes]:
        while not self.complete:
            message = cast("HTTPReceiveMessage", await self.receive())
            if message["type"] == "http.disconnect":
                raise client_disconnected(self.method, self.path, self.client, self.received)
            chunk = message.get("body", b"")
            self.received += len(chunk)
            self.complete = not message.get("more_body", False)
            if chunk:
                yield chunk

    def must_close(self, status: int) -> bool:
        """Return whether to close the connection instead of letting uvicorn drop the rest.

        Uvicorn reads and drops an unread body to keep the connection open.
        """
        return not self.complete and not discards_rest(status, self.declared, self.received)


async def _send_response(send: Send, response: WebhookResponse, *, close: bool) -> None:
    content_type = response.content_type
    headers: list[tuple[bytes, bytes]] = []
    for name, value in response.headers.items():
        lower = name.lower()
        if lower == "content-length" or (content_type is not None and lower == "content-type"):
            continue
        # UTF-8 for values outside Latin-1, as aiohttp encodes them.
        headers.append((lower.encode("latin-1"), value.encode()))
    if content_type is not None:
        headers.append((b"content-type", content_type.encode("latin-1")))
    if response.status >= 200 and response.status not in _BODILESS_STATUSES:
        headers.append((b"content-length", str(len(response.body)).encode("latin-1")))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if close:
        # The response is complete after this message (Content-Length), but
        # uvicorn closes only after the last one: the pause lets the client
        # read the response before the close resets the connection.
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        await asyncio.sleep(CLOSE_DELAY)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    await send({"type": "http.response.body", "body": response.body, "more_body": False})
