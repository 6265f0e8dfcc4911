"""Responses of the aiohttp adapter that the cross-adapter conformance suite leaves out.

``plughook serve`` runs ``create_server``, which routes by path itself. Its
service routes and 404s respond as the Litestar adapter's do (the tests run
over both), and its ``Expect`` handling as aiohttp's ``web.Application``.
``create_app`` still serves webhooks when mounted in another aiohttp
application. All servers are real, on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import anyio
import pytest
from aiohttp import web
from anyio.abc import ByteStream

from adapters.aiohttp import create_app
from core import Plugin, WebhookApp, WebhookRequest
from tests.servers import LOOPBACK, running_server

pytestmark = pytest.mark.anyio

PLUGIN = "aiohttp-adapter"
ECHO = f"/api/plugin/{PLUGIN}/webhook/echo"

adapter_plugin = Plugin(PLUGIN, version="1.0")


@adapter_plugin.mount_webhook("/echo", methods=["POST"])
async def echo(request: WebhookRequest) -> dict[str, str]:
    return {"body": await request.text()}


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    app = WebhookApp([adapter_plugin], {}, data_dir=tmp_path)
    async with running_server(app, "aiohttp") as url:
        yield url


@pytest.fixture(params=["aiohttp", "litestar"])
async def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Yield the base URL of a server on each adapter in turn."""
    app = WebhookApp([adapter_plugin], {}, data_dir=tmp_path)
    async with running_server(app, request.param) as url:
        yield url


async def _connect(base_url: str) -> ByteStream:
    url = urlsplit(base_url)
    assert url.hostname is not None
    assert url.port is not None
    return await anyio.connect_tcp(url.hostname, url.port)


async def _receive_until(stream: ByteStream, end: bytes) -> bytes:
    """Receive until the data read ends with ``end``, or until the server closes."""
    data = b""
    while not data.endswith(end):
        try:
            data += await stream.receive()
        except anyio.EndOfStream:
            break
    return data


async def _receive_all(stream: ByteStream) -> bytes:
    """Receive until the server closes the connection."""
    data = b""
    while True:
        try:
            data += await stream.receive()
        except anyio.EndOfStream:
            return data


async def _exchange(base_url: str, request: bytes) -> bytes:
    """Send one raw request with ``Connection: close`` and return everything the server sends."""
    with anyio.fail_after(5):
        async with await _connect(base_url) as stream:
            await stream.send(request)
            return await _receive_all(stream)


# Not found.


@pytest.mark.parametrize("path", ["/nope", "/", "/api/plugin", "/healthz/"])
async def test_path_outside_prefix_is_json_404(any_url: str, path: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(any_url + path) as response:
        body = await response.read()

    assert response.status == 404
    assert response.headers.get("Content-Type") == "application/json"
    assert json.loads(body) == {"error": "not found"}


@pytest.mark.parametrize("path", ["/api/plugin/", "/api/plugin//webhook"])
async def test_path_under_prefix_is_json_404(any_url: str, path: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(any_url + path) as response:
        body = await response.read()

    assert response.status == 404
    assert response.headers.get("Content-Type") == "application/json"
    assert json.loads(body) == {"error": "not found"}


async def test_encoded_slash_in_prefix_is_decoded(base_url: str) -> None:
    request = (
        f"POST /api%2Fplugin/{PLUGIN}/webhook/echo HTTP/1.1\r\n"
        "Host: test\r\nConnection: close\r\nContent-Length: 4\r\n\r\nping"
    ).encode()

    reply = await _exchange(base_url, request)

    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body) == {"body": "ping"}


# Expect headers.


async def test_expect_100_continue_before_body(base_url: str) -> None:
    head = (
        f"POST {ECHO} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
        "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    ).encode()

    with anyio.fail_after(5):
        async with await _connect(base_url) as stream:
            await stream.send(head)
            interim = await _receive_until(stream, b"\r\n\r\n")
            await stream.send(b"ping")
            final = await _receive_all(stream)

    final_head, _, body = final.partition(b"\r\n\r\n")
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final_head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body) == {"body": "ping"}


async def test_unknown_expectation_is_417(base_url: str) -> None:
    request = (
        f"POST {ECHO} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
        "Expect: bogus\r\nContent-Length: 4\r\n\r\nping"
    ).encode()

    reply = await _exchange(base_url, request)

    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 417 ")
    assert body == b"Unknown Expect: bogus"


# create_app inside another aiohttp application.


@pytest.fixture
async def mounted_url(tmp_path: Path) -> AsyncIterator[str]:
    """Serve a user's aiohttp app with plughook mounted at ``/hooks`` and yield its base URL."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    user_app = web.Application()
    user_app.router.add_get("/hello", hello)
    webhook_app = WebhookApp([adapter_plugin], {}, data_dir=tmp_path)
    user_app.add_subapp("/hooks", create_app(webhook_app))
    runner = web.AppRunner(user_app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()


# "echo" has an exact route in create_app, "echo/" goes through the pattern.
@pytest.mark.parametrize("path", ["echo", "echo/"])
async def test_mounted_app_serves_webhook(mounted_url: str, path: str) -> None:
    url = f"{mounted_url}/hooks/api/plugin/{PLUGIN}/webhook/{path}"

    async with aiohttp.ClientSession() as session, session.post(url, data=b"ping") as response:
        body = await response.read()

    assert response.status == 200
    assert json.loads(body) == {"body": "ping"}


async def test_mounted_app_starts_core(mounted_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{mounted_url}/hooks/healthz") as response,
    ):
        body = await response.read()

    assert response.status == 200
    assert json.loads(body) == {"status": "ok"}


async def test_mounted_app_keeps_user_routes(mounted_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{mounted_url}/hello") as response,
    ):
        body = await response.read()

    assert response.status == 200
    assert body == b"hello"
