"""One suite, three transports: the in-process test client, aiohttp and Litestar.

Every case sends the same request and expects the same status, the headers
that matter (Content-Type, Allow) and body from all three. The HTTP
transports run real servers on a free loopback port (``tests/servers.py``)
and send real requests with an aiohttp ``ClientSession``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import anyio.to_thread
import attrs
import pytest
from multidict import CIMultiDictProxy

from core import Plugin, UploadFile, WebhookApp, WebhookRequest, WebhookResponse, setting
from core.errors import ConfigError
from core.routing import split_webhook_path
from core.testing import TestResponse, WebhookTestClient
from tests.servers import running_server

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
BASE = "/api/plugin/conformance/webhook"

conformance = Plugin("conformance", version="1.0.0", description="adapter conformance")


@conformance.mount_config()
class ConformanceConfig:
    UPLOAD_DIR: str = setting("", title="Where uploads are saved")
    TOKEN: str = setting("", title="A secret that listings must hide", secret=True)


RESULTS: dict[str, Any] = {
    "dict": {"kind": "dict", "text": "中文"},
    "list": [1, "two", "три"],
    "str": "plain text ünïcode",
    "bytes": b"\x00\x01binary",
    "none": None,
    "response": WebhookResponse(201, b"<p>hi</p>", {"X-Custom": "yes"}, "text/html"),
    "pair": ({"error": "nope"}, 401),
    "triple": ("created", 201, {"Location": "/things/1", "X-Custom": "1"}),
    "none-pair": (None, 202),
}

# Started-reading signals of the body-reading endpoint, keyed by a query id.
BODY_STARTED: dict[str, anyio.Event] = {}


@conformance.mount_webhook("/result", methods=["GET", "POST"])
async def result(request: WebhookRequest) -> Any:
    return RESULTS[request.query["kind"]]


@conformance.mount_webhook("/")
async def root(request: WebhookRequest) -> dict[str, str]:
    return {"path": request.path, "method": request.method}


@conformance.mount_webhook("/get-only", methods=["GET"])
async def get_only(request: WebhookRequest) -> dict[str, str]:
    return {"method": request.method}


# A path outside the characters that get an exact aiohttp route.
@conformance.mount_webhook("/caf\u00e9 menu", methods=["POST"])
async def unusual_path(request: WebhookRequest) -> dict[str, str]:
    return {"path": request.path}


@conformance.mount_webhook("/boom")
async def boom() -> None:
    msg = "secret detail of a failing handler"
    raise RuntimeError(msg)


@conformance.mount_webhook("/echo-query", methods=["GET"])
async def echo_query(request: WebhookRequest) -> dict[str, Any]:
    return {
        "tag": request.query.getall("tag"),
        "one": request.query.get("one"),
        "empty": request.query.get("empty"),
    }


@conformance.mount_webhook("/echo-headers")
async def echo_headers(request: WebhookRequest) -> dict[str, Any]:
    return {"multi": request.headers.getall("X-Multi"), "single": request.headers["x-single"]}


@conformance.mount_webhook("/echo-text", methods=["POST"])
async def echo_text(request: WebhookRequest) -> dict[str, Any]:
    return {"text": await request.text(), "bytes": len(await request.body())}


@conformance.mount_webhook("/client")
async def client_address(request: WebhookRequest) -> dict[str, Any]:
    return {"client": request.client}


@conformance.mount_webhook("/json", methods=["POST"])
async def parse_json(request: WebhookRequest) -> Any:
    return {"parsed": await request.json()}


@conformance.mount_webhook("/small-limit", methods=["POST"], max_body_size=1024)
async def small_limit(request: WebhookRequest) -> dict[str, int]:
    return {"bytes": len(await request.body())}


SLOW_RELEASE: dict[str, anyio.Event] = {}
SLOW_FINISHED: set[str] = set()


@conformance.mount_webhook("/slow", methods=["POST"], respond_within=0.2)
async def slow(request: WebhookRequest) -> dict[str, str]:
    probe = request.query["id"]
    await SLOW_RELEASE[probe].wait()
    SLOW_FINISHED.add(probe)
    return {"finished": probe}


@conformance.mount_webhook("/count", methods=["POST"], respond_within=None)
async def count_body(request: WebhookRequest) -> dict[str, int]:
    started = BODY_STARTED.get(request.query.get("id", ""))
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if started is not None:
            started.set()
    return {"bytes": received}


@conformance.mount_webhook(
    "/upload", methods=["POST"], max_body_size=200 * MIB, respond_within=None
)
async def upload(request: WebhookRequest) -> dict[str, Any]:
    form = await request.form()
    upload = form["file"]
    assert isinstance(upload, UploadFile)
    target = Path(conformance.config.UPLOAD_DIR) / f"{uuid.uuid4().hex}.bin"
    size = await upload.save(target)
    digest = await anyio.to_thread.run_sync(_sha256_of, target)
    target.unlink()
    return {"size": size, "sha256": digest, "filename": upload.filename}


@conformance.mount_webhook("/slow-echo", methods=["GET"])
async def slow_echo(request: WebhookRequest) -> dict[str, str]:
    await anyio.sleep(0.02)
    return {"n": request.query["n"]}


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(MIB):
            digest.update(block)
    return digest.hexdigest()


# Transports.


@attrs.frozen
class Reply:
    """What one transport received."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Body = bytes | AsyncIterable[bytes]
HeaderPairs = Sequence[tuple[str, str]]


class InProcessTransport:
    """Drives ``WebhookApp.handle`` through ``core.testing.WebhookTestClient``."""

    name = "in-process"

    def __init__(self, client: WebhookTestClient) -> None:
        self.client = client
        self.app = client.app

    async def request(
        self, method: str, path: str, *, body: Body = b"", headers: HeaderPairs = ()
    ) -> Reply:
        if isinstance(body, bytes):
            response = await self.client.request(method, path, content=body, headers=headers)
            return Reply(response.status_code, response.headers, response.content)
        # The test client takes bytes only; a streamed body goes in as the
        # lazy body an adapter would pass.
        url = urlsplit(path)
        target = split_webhook_path(url.path)
        assert target is not None
        request = WebhookRequest(
            method,
            target[0],
            target[1],
            headers=list(headers),
            query=url.query,
            body=body,
            client="127.0.0.1",
            url=path,
        )
        response = TestResponse(await self.client.app.handle(request))
        return Reply(response.status_code, response.headers, response.content)


class HttpTransport:
    """Sends real HTTP to a server started with ``tests.servers.running_server``."""

    def __init__(
        self, name: str, app: WebhookApp, base_url: str, session: aiohttp.ClientSession
    ) -> None:
        self.name = name
        self.app = app
        self.base_url = base_url
        self.session = session

    @property
    def address(self) -> tuple[str, int]:
        url = urlsplit(self.base_url)
        assert url.hostname is not None
        assert url.port is not None
        return url.hostname, url.port

    async def request(
        self, method: str, path: str, *, body: Body = b"", headers: HeaderPairs = ()
    ) -> Reply:
        async with self.session.request(
            method, self.base_url + path, data=body or None, headers=list(headers)
        ) as response:
            return Reply(response.status, response.headers, await response.read())


Transport = InProcessTransport | HttpTransport


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=["in-process", "aiohttp", "litestar"])
async def transport(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Transport]:
    uploads = tmp_path_factory.mktemp("uploads")
    data_dir = tmp_path_factory.mktemp("data")
    config = {"conformance": {"UPLOAD_DIR": str(uploads), "TOKEN": "s3cret"}}
    if request.param == "in-process":
        async with WebhookTestClient([conformance], config, data_dir=data_dir) as client:
            yield InProcessTransport(client)
        return
    app = WebhookApp([conformance], config, data_dir=data_dir)
    connector = aiohttp.TCPConnector(limit=0)
    # aiohttp would add "Content-Type: application/octet-stream" to bytes
    # bodies; the in-process client sends none unless a test sets one.
    session = aiohttp.ClientSession(connector=connector, skip_auto_headers=["Content-Type"])
    async with running_server(app, request.param) as base_url, session:
        yield HttpTransport(request.param, app, base_url, session)


def _json_body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


async def _counted(chunks: int, chunk_size: int, sent: list[int]) -> AsyncIterator[bytes]:
    """Yield ``chunks`` chunks, adding each one's size to ``sent[0]`` as it is taken."""
    block = b"x" * chunk_size
    for _ in range(chunks):
        sent[0] += chunk_size
        yield block


class _LogWaiter(logging.Handler):
    """Collects records containing ``text`` and sets ``seen`` on the first one."""

    def __init__(self, text: str, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.text = text
        self.records: list[logging.LogRecord] = []
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.records.append(record)
            self.seen.set()


def _max_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# Handler results.

RESULT_CASES = [
    pytest.param("dict", 200, "application/json", _json_body(RESULTS["dict"]), id="dict"),
    pytest.param("list", 200, "application/json", _json_body(RESULTS["list"]), id="list"),
    pytest.param("str", 200, "text/plain; charset=utf-8", RESULTS["str"].encode(), id="str"),
    pytest.param("bytes", 200, "application/octet-stream", RESULTS["bytes"], id="bytes"),
    pytest.param("none", 204, None, b"", id="none"),
    pytest.param("response", 201, "text/html; charset=utf-8", b"<p>hi</p>", id="response"),
    pytest.param("pair", 401, "application/json", b'{"error":"nope"}', id="pair"),
    pytest.param("triple", 201, "text/plain; charset=utf-8", b"created", id="triple"),
    pytest.param("none-pair", 202, None, b"", id="none-pair"),
]


@pytest.mark.parametrize(("kind", "status", "content_type", "body"), RESULT_CASES)
async def test_result_type_status_type_and_body(
    transport: Transport, kind: str, status: int, content_type: str | None, body: bytes
) -> None:
    reply = await transport.request("POST", f"{BASE}/result?kind={kind}")

    assert reply.status == status
    assert reply.headers.get("Content-Type") == content_type
    assert reply.body == body


async def test_result_response_headers_kept(transport: Transport) -> None:
    response = await transport.request("GET", f"{BASE}/result?kind=response")
    triple = await transport.request("GET", f"{BASE}/result?kind=triple")

    assert response.headers.get("X-Custom") == "yes"
    assert triple.headers.get("Location") == "/things/1"
    assert triple.headers.get("X-Custom") == "1"


async def test_endpoint_without_path(transport: Transport) -> None:
    bare = await transport.request("PUT", BASE)
    slash = await transport.request("PUT", BASE + "/")

    assert bare.status == 200
    assert bare.json() == {"path": "/", "method": "PUT"}
    assert slash.json() == {"path": "/", "method": "PUT"}


async def test_trailing_slash_finds_endpoint(transport: Transport) -> None:
    reply = await transport.request("GET", f"{BASE}/get-only/")

    assert reply.status == 200
    assert reply.json() == {"method": "GET"}


@pytest.mark.parametrize(
    "transport", ["aiohttp", "litestar"], indirect=True, ids=["aiohttp", "litestar"]
)
async def test_encoded_path_finds_endpoint(transport: Transport) -> None:
    # The servers decode the URL path, but the in-process client takes it as given.
    reply = await transport.request("POST", f"{BASE}/caf%C3%A9%20menu")

    assert reply.status == 200
    assert reply.json() == {"path": "/caf\u00e9 menu"}


# Errors.


async def test_unknown_plugin_is_404(transport: Transport) -> None:
    reply = await transport.request("POST", "/api/plugin/nope/webhook/x")

    assert reply.status == 404
    assert reply.headers.get("Content-Type") == "application/json"
    assert reply.json() == {"error": "no plugin 'nope' is loaded"}


async def test_unknown_path_is_404(transport: Transport) -> None:
    reply = await transport.request("POST", f"{BASE}/missing")

    assert reply.status == 404
    assert reply.json() == {"error": "no webhook endpoint '/missing' in plugin 'conformance'"}


async def test_non_webhook_path_under_prefix_is_404(transport: Transport) -> None:
    reply = await transport.request("GET", "/api/plugin/conformance/other")

    assert reply.status == 404
    assert reply.headers.get("Content-Type") == "application/json"
    assert reply.json() == {"error": "not found"}


async def test_wrong_method_is_405_with_allow(transport: Transport) -> None:
    reply = await transport.request("POST", f"{BASE}/get-only", body=b"{}")

    assert reply.status == 405
    assert reply.headers.get("Allow") == "GET, HEAD"
    assert reply.headers.get("Content-Type") == "application/json"
    assert reply.json() == {"error": "method POST is not allowed on this endpoint"}


async def test_body_over_endpoint_limit_is_413(transport: Transport) -> None:
    reply = await transport.request("POST", f"{BASE}/small-limit", body=b"a" * 2048)

    assert reply.status == 413
    assert reply.json() == {"error": "request body exceeds the endpoint limit of 1024 bytes"}


async def test_body_at_endpoint_limit_is_accepted(transport: Transport) -> None:
    reply = await transport.request("POST", f"{BASE}/small-limit", body=b"a" * 1024)

    assert reply.status == 200
    assert reply.json() == {"bytes": 1024}


async def test_handler_error_is_500_with_error_id(transport: Transport) -> None:
    logged = _LogWaiter("handler of conformance/boom")
    core_logger = logging.getLogger("plughook")
    core_logger.addHandler(logged)
    try:
        reply = await transport.request("GET", f"{BASE}/boom")
    finally:
        core_logger.removeHandler(logged)

    assert reply.status == 500
    assert reply.headers.get("Content-Type") == "application/json"
    payload = reply.json()
    assert set(payload) == {"error", "error_id"}
    assert payload["error"] == "internal error"
    assert len(payload["error_id"]) == 16
    assert b"Traceback" not in reply.body
    assert b"secret detail" not in reply.body
    [record] = logged.records
    assert f"error {payload['error_id']}:" in record.getMessage()
    assert record.exc_info is not None


async def test_invalid_json_is_400(transport: Transport) -> None:
    reply = await transport.request(
        "POST", f"{BASE}/json", body=b"{not json", headers=[("Content-Type", "application/json")]
    )

    assert reply.status == 400
    assert reply.json() == {
        "error": "invalid JSON body: Expecting property name enclosed in double quotes "
        "at line 1 column 2 (char 1)"
    }


# Requests.


async def test_head_answers_like_get_without_body(transport: Transport) -> None:
    get = await transport.request("GET", f"{BASE}/get-only")
    head = await transport.request("HEAD", f"{BASE}/get-only")

    assert head.status == get.status == 200
    assert head.headers.get("Content-Type") == get.headers.get("Content-Type")
    assert head.body == b""


async def test_query_values_repeat(transport: Transport) -> None:
    reply = await transport.request("GET", f"{BASE}/echo-query?tag=a&tag=b&tag=c%26d&one=1&empty=")

    assert reply.status == 200
    assert reply.json() == {"tag": ["a", "b", "c&d"], "one": "1", "empty": ""}


async def test_repeated_headers_kept(transport: Transport) -> None:
    headers = [("X-Multi", "a"), ("X-Multi", "b, c"), ("X-Single", "z")]
    reply = await transport.request("GET", f"{BASE}/echo-headers", headers=headers)

    assert reply.status == 200
    assert reply.json() == {"multi": ["a", "b, c"], "single": "z"}


async def test_non_ascii_body(transport: Transport) -> None:
    text = "héllo, 世界 🎉"
    reply = await transport.request(
        "POST",
        f"{BASE}/echo-text",
        body=text.encode(),
        headers=[("Content-Type", "text/plain; charset=utf-8")],
    )

    assert reply.status == 200
    assert reply.json() == {"text": text, "bytes": len(text.encode())}


async def test_client_address_passed(transport: Transport) -> None:
    reply = await transport.request("GET", f"{BASE}/client")

    assert reply.json() == {"client": "127.0.0.1"}


# Service routes.


async def test_healthz_ok_while_serving(transport: Transport) -> None:
    reply = await transport.request("GET", "/healthz")

    assert reply.status == 200
    assert reply.headers.get("Content-Type") == "application/json"
    assert reply.json() == {"status": "ok"}


async def test_healthz_503_while_stopping(transport: Transport) -> None:
    # The adapters clear `serving` when shutdown starts; the core does at the latest.
    transport.app.serving = False
    try:
        reply = await transport.request("GET", "/healthz")
    finally:
        transport.app.serving = True

    assert reply.status == 503
    assert reply.json() == {"status": "unavailable"}


@pytest.mark.parametrize("path", ["/healthz", "/api/plugins"])
async def test_service_route_post_is_405(transport: Transport, path: str) -> None:
    reply = await transport.request("POST", path)

    assert reply.status == 405
    assert reply.headers.get("Allow") == "GET, HEAD"
    assert reply.headers.get("Content-Type") == "application/json"
    assert reply.json() == {"error": f"method POST is not allowed on {path}"}


async def test_head_healthz_has_no_body(transport: Transport) -> None:
    reply = await transport.request("HEAD", "/healthz")

    assert reply.status == 200
    assert reply.headers.get("Content-Type") == "application/json"
    assert reply.body == b""


async def test_plugins_listing_hides_secrets(transport: Transport) -> None:
    reply = await transport.request("GET", "/api/plugins")

    assert reply.status == 200
    [plugin] = reply.json()["plugins"]
    assert plugin["name"] == "conformance"
    assert plugin["config"]["TOKEN"] == "***"
    assert b"s3cret" not in reply.body
    paths = [endpoint["path"] for endpoint in plugin["endpoints"]]
    assert "/upload" in paths


# Large bodies.

OVERSIZED = 30 * MIB


async def test_oversized_declared_body_refused_unread(transport: Transport) -> None:
    sent = [0]
    rss_before = _max_rss_bytes()
    reply = await transport.request(
        "POST",
        f"{BASE}/count",
        body=_counted(OVERSIZED // MIB, MIB, sent),
        headers=[("Content-Length", str(OVERSIZED))],
    )

    assert reply.status == 413
    assert reply.json() == {"error": "request body exceeds the endpoint limit of 26214400 bytes"}
    # Only what the socket buffers took left the client; a server that read
    # the whole body would have let all 30 MiB through.
    assert sent[0] <= OVERSIZED // 2
    assert _max_rss_bytes() - rss_before < 16 * MIB


async def test_oversized_chunked_body_stops_at_limit(transport: Transport) -> None:
    total = 48 * MIB
    sent = [0]
    rss_before = _max_rss_bytes()
    reply = await transport.request("POST", f"{BASE}/count", body=_counted(total // MIB, MIB, sent))

    assert reply.status == 413
    assert reply.json() == {"error": "request body exceeds the endpoint limit of 26214400 bytes"}
    assert sent[0] < total
    assert _max_rss_bytes() - rss_before < 16 * MIB


async def test_server_keeps_serving_after_413(transport: Transport) -> None:
    sent = [0]
    await transport.request(
        "POST",
        f"{BASE}/count",
        body=_counted(OVERSIZED // MIB, MIB, sent),
        headers=[("Content-Length", str(OVERSIZED))],
    )
    reply = await transport.request("POST", f"{BASE}/count", body=b"after")

    assert reply.status == 200
    assert reply.json() == {"bytes": 5}


UPLOAD_SIZE = 100 * MIB


async def _multipart_upload(boundary: str, filename: str, digest: Any) -> AsyncIterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    block = bytes(range(256)) * (MIB // 256)
    for index in range(UPLOAD_SIZE // MIB):
        chunk = index.to_bytes(8, "big") + block[8:]
        digest.update(chunk)
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


async def test_multipart_upload_streams_to_disk(transport: Transport) -> None:
    boundary = uuid.uuid4().hex
    digest = hashlib.sha256()
    head = 2 * 1024
    rss_before = _max_rss_bytes()
    reply = await transport.request(
        "POST",
        f"{BASE}/upload",
        body=_multipart_upload(boundary, "big.bin", digest),
        headers=[("Content-Type", f"multipart/form-data; boundary={boundary}")],
    )

    assert reply.status == 200
    assert reply.json() == {
        "size": UPLOAD_SIZE,
        "sha256": digest.hexdigest(),
        "filename": "big.bin",
    }
    # The body went to disk in chunks; holding it in memory would add 100 MiB.
    assert _max_rss_bytes() - rss_before < 48 * MIB + head


# Connections.


@pytest.mark.parametrize(
    "transport", ["aiohttp", "litestar"], indirect=True, ids=["aiohttp", "litestar"]
)
async def test_client_disconnect_mid_body_logged(transport: Transport) -> None:
    # Only a real server has a connection to drop, so in-process is not a case here.
    assert isinstance(transport, HttpTransport)
    probe = uuid.uuid4().hex
    BODY_STARTED[probe] = anyio.Event()
    host, port = transport.address
    head = (
        f"POST {BASE}/count?id={probe} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Length: {8 * MIB}\r\n\r\n"
    ).encode()
    waiter = _LogWaiter("closed the connection")
    errors = _LogWaiter("", logging.ERROR)
    adapters_logger = logging.getLogger("plughook.adapters")
    adapters_logger.addHandler(waiter)
    logging.getLogger().addHandler(errors)
    try:
        stream = await anyio.connect_tcp(host, port)
        await stream.send(head + b"x" * MIB)
        with anyio.fail_after(5):
            await BODY_STARTED[probe].wait()
        await stream.aclose()
        with anyio.fail_after(5):
            await waiter.seen.wait()
        after = await transport.request("POST", f"{BASE}/count", body=b"next")
    finally:
        adapters_logger.removeHandler(waiter)
        logging.getLogger().removeHandler(errors)

    [record] = waiter.records
    assert record.levelno == logging.WARNING
    assert f"POST {BASE}/count" in record.getMessage()
    assert probe not in record.getMessage()
    assert [r.getMessage() for r in errors.records] == []
    assert after.status == 200
    assert after.json() == {"bytes": 4}


async def test_200_concurrent_requests(transport: Transport) -> None:
    replies: dict[int, Reply] = {}

    async def send(n: int) -> None:
        replies[n] = await transport.request("GET", f"{BASE}/slow-echo?n={n}")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for n in range(200):
                group.start_soon(send, n)

    assert sorted(replies) == list(range(200))
    assert {reply.status for reply in replies.values()} == {200}
    assert all(reply.json() == {"n": str(n)} for n, reply in replies.items())


# Start-up.


@pytest.mark.parametrize("adapter", ["aiohttp", "litestar"])
async def test_startup_config_error_raised(adapter: str, tmp_path: Path) -> None:
    config = {"conformance": {"UPLOAD_DIR": 5}}
    app = WebhookApp([conformance], config, data_dir=tmp_path)

    with pytest.raises(ConfigError) as info:
        async with running_server(app, adapter):
            pass

    assert info.value.problems == [("plugins.conformance.UPLOAD_DIR", "expected str, got int")]


# Deadlines.


async def test_slow_handler_answers_202_then_finishes(transport: Transport) -> None:
    probe = uuid.uuid4().hex
    SLOW_RELEASE[probe] = anyio.Event()
    with anyio.fail_after(5):
        reply = await transport.request("POST", f"{BASE}/slow?id={probe}")
    finished_early = probe in SLOW_FINISHED
    SLOW_RELEASE[probe].set()
    with anyio.fail_after(5):
        while probe not in SLOW_FINISHED:
            await anyio.sleep(0.01)
    follow_up = await transport.request("GET", f"{BASE}/client")
    assert reply.status == 202
    assert json.loads(reply.body) == {"status": "accepted"}
    assert finished_early is False
    assert follow_up.status == 200
