"""The aiohttp binding.

``create_server(webhook_app)`` returns an ``aiohttp.web.Server``, aiohttp's
low-level server, whose one handler finds the route from the path itself.
``plughook serve`` runs it. ``create_app(webhook_app)`` returns an
``aiohttp.web.Application`` with the same routes, to mount in an existing
aiohttp application. Both pass webhook requests to the same code.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from core import WebhookApp, WebhookRequest, WebhookResponse
from core.errors import BadRequest
from core.routing import WEBHOOK_PREFIX, split_webhook_path

from .common import (
    CLOSE_DELAY,
    HEALTH_PATH,
    PLUGINS_PATH,
    READ_CHUNK_SIZE,
    client_disconnected,
    discards_rest,
    health_response,
    not_found_response,
    plugins_response,
    service_response,
)

__all__ = ["WEBHOOK_APP_KEY", "create_app", "create_server", "to_aiohttp_response"]

WEBHOOK_APP_KEY = web.AppKey("plughook_webhook_app", WebhookApp)

# aiohttp would read and drop up to 10 s of an unread request body after the
# handler returns ("lingering close"), however large. The handler decides
# instead (see common.discards_rest): it drops a short rest itself, and
# otherwise closes the connection without reading further.
_HANDLER_ARGS: dict[str, Any] = {"lingering_time": 0.0}

_Handler = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]

# Plugin names and endpoint paths made of these characters mean the same to
# aiohttp's plain-route table as to the core router, so they get exact routes.
_PLAIN_ROUTE_TEXT = re.compile(r"[A-Za-z0-9._~/-]+")


def create_server(webhook_app: WebhookApp, **handler_args: Any) -> web.Server:
    """Build an aiohttp low-level server serving ``webhook_app``'s endpoints and service routes.

    The handler routes by the decoded path, where ``%2F`` is a ``/`` as in
    the Litestar adapter. Webhook URLs go to the core, ``/healthz`` and
    ``/api/plugins`` to the service routes (``common.service_response``), and
    any other path gets the JSON 404 of ``common.not_found_response``.
    ``Expect`` headers get the responses ``web.Application`` sends.

    The caller starts and stops the core app (``webhook_app.running()``).
    ``handler_args`` go to ``web.Server`` (``access_log``, for example) and
    override ``lingering_time=0``. Call it with the event loop running:
    ``web.Server`` keeps the running loop.
    """

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.headers.get(hdrs.EXPECT):
            await _answer_expect(request)
        path = request.path
        target = split_webhook_path(path)
        if target is not None:
            return await _serve_webhook(webhook_app, request, *target)
        response = service_response(webhook_app, request.method, path)
        return to_aiohttp_response(response or not_found_response())

    return web.Server(handle, **(_HANDLER_ARGS | handler_args))


async def _answer_expect(request: web.BaseRequest) -> None:
    """Send ``100 Continue`` for ``Expect: 100-continue``; raise a 417 for another expectation.

    ``web.Application`` runs the same check for every route, its 404 and 405
    included. HTTP/1.0 requests get neither.
    """
    if request.version != HttpVersion11:
        return
    expect = request.headers.get(hdrs.EXPECT, "")
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
    writer = request.writer
    await writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    # Reset so the response size in the access log leaves out the interim response.
    writer.output_size = 0
    await writer.drain()


def create_app(webhook_app: WebhookApp) -> web.Application:
    """Build an aiohttp application serving ``webhook_app``'s endpoints and service routes.

    The core app starts and stops with the aiohttp app (``cleanup_ctx``).
    Request bodies are streamed to the core, which enforces each endpoint's
    size limit, so ``client_max_size`` plays no part.
    """
    app = web.Application(handler_args=_HANDLER_ARGS)
    app[WEBHOOK_APP_KEY] = webhook_app

    async def run_core(app: web.Application) -> AsyncIterator[None]:
        async with webhook_app.running():
            yield

    app.cleanup_ctx.append(run_core)

    prefix = WEBHOOK_PREFIX.rstrip("/")
    # An exact route per endpoint. aiohttp 3.14 finds a plain route with one
    # dict lookup, which took 0.9 us against 2.1 us for the pattern below.
    for endpoint in webhook_app.router.endpoints():
        plugin, path = endpoint.plugin.name, endpoint.path
        if _PLAIN_ROUTE_TEXT.fullmatch(plugin + path):
            suffix = "" if path == "/" else path
            app.router.add_route(
                hdrs.METH_ANY,
                f"{prefix}/{plugin}/webhook{suffix}",
                _webhook_handler(webhook_app, (plugin, path)),
            )
    # The pattern takes every other request under a webhook URL, such as a
    # trailing slash or an unknown path. It matches ".../webhook" (path "")
    # and ".../webhook/<path>" (path "/<path>").
    app.router.add_route(
        hdrs.METH_ANY, prefix + "/{plugin}/webhook{path:(?:/.*)?}", _webhook_handler(webhook_app)
    )
    app.router.add_route(hdrs.METH_ANY, prefix + "/{tail:.*}", _not_found)
    app.router.add_get(HEALTH_PATH, _service_handler(health_response, webhook_app))
    app.router.add_get(PLUGINS_PATH, _service_handler(plugins_response, webhook_app))
    return app


def _webhook_handler(webhook_app: WebhookApp, target: tuple[str, str] | None = None) -> _Handler:
    """Build the handler of one exact endpoint ``target`` (plugin, path), or of the pattern."""
    if target is not None:
        plugin, path = target

        async def endpoint(request: web.Request) -> web.StreamResponse:
            return await _serve_webhook(webhook_app, request, plugin, path)

        return endpoint

    async def pattern(request: web.Request) -> web.StreamResponse:
        match_info = request.match_info
        return await _serve_webhook(
            webhook_app, request, match_info["plugin"], match_info["path"] or "/"
        )

    return pattern


async def _serve_webhook(
    webhook_app: WebhookApp, request: web.BaseRequest, plugin: str, path: str
) -> web.StreamResponse:
    """Pass a request for endpoint ``path`` of ``plugin`` to the core and return its response."""
    core_request = WebhookRequest(
        request.method,
        plugin,
        path,
        headers=request.headers,
        query=request.rel_url.raw_query_string,
        body=_body_source(request),
        client=request.remote,
        url=request.raw_path,
    )
    early = _EarlyResponse(request)
    final = await webhook_app.handle(core_request, respond_early=early.send)
    if early.task is not None:
        # The 202 went out while the handler ran; aiohttp finishes the
        # prepared response without sending anything more.
        return await early.task
    response = to_aiohttp_response(final)
    await _finish_body(request, response)
    return response


class _EarlyResponse:
    """Sends the core's 202 answer while the handler of the request goes on."""

    __slots__ = ("request", "task")

    def __init__(self, request: web.BaseRequest) -> None:
        self.request = request
        self.task: asyncio.Task[web.StreamResponse] | None = None

    def send(self, response: WebhookResponse) -> None:
        self.task = asyncio.get_running_loop().create_task(self._send(response))

    async def _send(self, response: WebhookResponse) -> web.StreamResponse:
        prepared = to_aiohttp_response(response)
        request = self.request
        if request.body_exists and not request.content.is_eof():
            # The handler may still be reading the body: leave it alone and do
            # not reuse the connection.
            prepared.force_close()
        await prepared.prepare(request)
        await prepared.write_eof()
        return prepared


async def _finish_body(request: web.BaseRequest, response: web.Response) -> None:
    """Drop a short unread rest of the body, or send the response and close the connection."""
    content = request.content
    transport = request.transport
    if not request.body_exists or content.is_eof() or transport is None or transport.is_closing():
        return
    if discards_rest(response.status, request.content_length, content.total_bytes):
        await request.release()
        return
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    # With the response sent, the pause lets the client read it before the
    # close resets the connection; aiohttp reads nothing more meanwhile.
    await asyncio.sleep(CLOSE_DELAY)


def _body_source(request: web.BaseRequest) -> bytes | AsyncIterator[bytes]:
    """Return the body as bytes when all of it has arrived, else a stream of its chunks."""
    if not request.body_exists:
        return b""
    content = request.content
    if content.is_eof():
        # The whole body arrived before the handler ran. aiohttp pauses
        # reading at 128 KiB buffered, so this is about that size at most.
        return content.read_nowait()
    return _stream_body(request)


async def _stream_body(request: web.BaseRequest) -> AsyncIterator[bytes]:
    received = 0
    try:
        async for chunk in request.content.iter_chunked(READ_CHUNK_SIZE):
            received += len(chunk)
            yield chunk
    except ConnectionError:
        raise client_disconnected(request.method, request.path, request.remote, received) from None
    except HttpProcessingError as exc:
        msg = f"invalid request body framing after {received} bytes: {exc.message}"
        raise BadRequest(msg) from None


def _service_handler(
    build: Callable[[WebhookApp], WebhookResponse], webhook_app: WebhookApp
) -> _Handler:
    async def service(request: web.Request) -> web.StreamResponse:
        return to_aiohttp_response(build(webhook_app))

    return service


async def _not_found(request: web.Request) -> web.StreamResponse:
    return to_aiohttp_response(not_found_response())


def to_aiohttp_response(response: WebhookResponse) -> web.Response:
    """Convert a core response; its media type wins over a ``Content-Type`` in its headers."""
    headers = CIMultiDict(response.headers)
    content_type = response.content_type
    if content_type is not None:
        headers[hdrs.CONTENT_TYPE] = content_type
    # aiohttp sets Content-Length from the body itself.
    headers.popall(hdrs.CONTENT_LENGTH, None)
    return web.Response(status=response.status, body=response.body, headers=headers)
