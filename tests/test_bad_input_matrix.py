"""The bad-input matrix of verification and dedupe, in-process and over both adapters.

Every scheme gets a missing, a malformed and a wrong signature; the
timestamped ones a stale timestamp; then repeated and concurrent delivery
ids, an oversize body and a wrong content type. Every answer must carry the
fixed reason, the app must go on serving, and no response or log line may
contain the secret or the signature a correct sender would compute.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from core import Plugin, WebhookApp, WebhookRequest, message, signatures
from core.config import setting
from core.signatures import (
    sign_gitea,
    sign_github,
    sign_grafana,
    sign_hmac,
    sign_standard_webhooks,
    sign_stripe,
)
from core.testing import WebhookTestClient
from tests.servers import running_server

pytestmark = pytest.mark.anyio

SECRET = "matrix-secret-7f3c9a"
STANDARD_KEY = base64.b64encode(b"matrix-standard-key-0123456789ab").decode()
STANDARD_SECRET = f"whsec_{STANDARD_KEY}"
BODY = json.dumps({"event": "deploy", "note": "é ✓ \u001b"}, ensure_ascii=False).encode()
BASE = "/api/plugin/matrix/webhook"

matrix = Plugin("matrix", version="1.0")
CALLS: dict[str, int] = {}


@matrix.mount_config()
class MatrixConfig:
    WEBHOOK_SECRET: str = setting("", secret=True)
    STANDARD_SECRET: str = setting("", secret=True)


async def handle(request: WebhookRequest) -> dict[str, str]:
    key = request.headers.get("X-Probe", "")
    CALLS[key] = CALLS.get(key, 0) + 1
    if request.query.get("slow"):
        await anyio.sleep(0.3)
    await request.json()
    return {"status": "ok"}


VERIFIERS: dict[str, Any] = {
    "github": signatures.github(),
    "standard": signatures.standard_webhooks("STANDARD_SECRET"),
    "stripe": signatures.stripe(),
    "grafana": signatures.grafana(timestamp_header="X-Grafana-Alerting-Signature-Timestamp"),
    "gitea": signatures.gitea(),
    "gitlab": signatures.gitlab(),
    "hmac": signatures.hmac_signature(header="X-Signature", prefix="sha256="),
    "bearer": signatures.bearer_token(),
}
for _name, _verifier in VERIFIERS.items():
    matrix.mount_webhook(f"/{_name}", methods=["POST"], verify=_verifier)(handle)
matrix.mount_webhook("/small", methods=["POST"], verify=signatures.github(), max_body_size=64)(
    handle
)


@matrix.mount_webhook("/relay", methods=["POST"], verify=signatures.github())
async def relay(request: WebhookRequest) -> dict[str, str]:
    """Forward a header's text to a chat and echo it, as plugins do with X-GitHub-Event."""
    note = request.headers.get("X-Note", "")
    await message.send_text("console-ops", f"event {note}")
    return {"status": "ok", "event": note}


@matrix.mount_webhook("/form", methods=["POST"], verify=signatures.github())
async def form(request: WebhookRequest) -> dict[str, str]:
    fields = await request.form()
    return {"fields": ",".join(fields)}


CONFIG = {"matrix": {"WEBHOOK_SECRET": SECRET, "STANDARD_SECRET": STANDARD_SECRET}}


def signed_headers(scheme: str, body: bytes, now: int) -> dict[str, str]:
    """Headers a correct sender of ``scheme`` attaches to ``body`` at time ``now``."""
    if scheme in ("github", "small", "form"):
        return {"X-Hub-Signature-256": sign_github(body, SECRET)}
    if scheme == "standard":
        message_id = f"msg_{uuid.uuid4().hex}"
        signature = sign_standard_webhooks(body, STANDARD_SECRET, msg_id=message_id, timestamp=now)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(now),
            "webhook-signature": signature,
        }
    if scheme == "stripe":
        return {"Stripe-Signature": sign_stripe(body, SECRET, timestamp=now)}
    if scheme == "grafana":
        return {
            "X-Grafana-Alerting-Signature": sign_grafana(body, SECRET, timestamp=now),
            "X-Grafana-Alerting-Signature-Timestamp": str(now),
        }
    if scheme == "gitea":
        return {"X-Gitea-Signature": sign_gitea(body, SECRET)}
    if scheme == "gitlab":
        return {"X-Gitlab-Token": SECRET}
    if scheme == "hmac":
        return {"X-Signature": sign_hmac(body, SECRET, prefix="sha256=")}
    return {"Authorization": f"Bearer {SECRET}"}


SIGNATURE_HEADER = {
    "github": "X-Hub-Signature-256",
    "standard": "webhook-signature",
    "stripe": "Stripe-Signature",
    "grafana": "X-Grafana-Alerting-Signature",
    "gitea": "X-Gitea-Signature",
    "gitlab": "X-Gitlab-Token",
    "hmac": "X-Signature",
    "bearer": "Authorization",
}
MALFORMED = {
    "github": "sha256=zz",
    "standard": "v1",
    "stripe": "t=abc,v1=zz",
    "grafana": "zz",
    "gitea": "not-hex",
    "gitlab": None,
    "hmac": "sha256=zz",
    "bearer": "Basic abc",
}
TOKEN_SCHEMES = {"gitlab", "bearer"}


def wrong_headers(scheme: str, body: bytes, now: int) -> dict[str, str]:
    headers = signed_headers(scheme, body + b" ", now)
    if scheme in TOKEN_SCHEMES:
        name = SIGNATURE_HEADER[scheme]
        headers[name] = headers[name].replace(SECRET, "not-the-secret")
    return headers


Sender = Callable[[str, bytes, Mapping[str, str]], Any]


@asynccontextmanager
async def transport(kind: str, data_dir: Path) -> AsyncIterator[Sender]:
    """Yield ``send(path, body, headers) -> (status, body bytes)`` for one transport."""
    if kind == "in-process":
        async with WebhookTestClient([matrix], CONFIG, data_dir=data_dir) as client:

            async def send_in_process(
                path: str, body: bytes, headers: Mapping[str, str]
            ) -> tuple[int, bytes]:
                response = await client.post(path, content=body, headers=dict(headers))
                return response.status_code, response.content

            yield send_in_process
        return
    app = WebhookApp([matrix], CONFIG, data_dir=data_dir)
    session = aiohttp.ClientSession(skip_auto_headers=["Content-Type"])
    async with running_server(app, kind) as base_url, session:

        async def send_http(
            path: str, body: bytes, headers: Mapping[str, str]
        ) -> tuple[int, bytes]:
            async with session.post(base_url + path, data=body, headers=dict(headers)) as reply:
                return reply.status, await reply.read()

        yield send_http


TRANSPORTS = ["in-process", "aiohttp", "litestar"]


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_bad_input_matrix(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    answers: list[bytes] = []
    caplog.set_level(logging.DEBUG, "plughook")
    async with transport(kind, tmp_path) as send:

        async def expect(
            path: str, body: bytes, headers: Mapping[str, str], status: int, error: str | None
        ) -> None:
            got_status, got_body = await send(path, body, headers)
            answers.append(got_body)
            assert (path, got_status) == (path, status), got_body
            if error is not None:
                # A missing or malformed signature also names what to send.
                got_error = json.loads(got_body)["error"].partition(": expected ")[0]
                assert got_error == error, path

        json_type = {"Content-Type": "application/json"}
        for scheme in VERIFIERS:
            path = f"{BASE}/{scheme}"
            token = scheme in TOKEN_SCHEMES
            await expect(
                path, BODY, json_type, 401, "missing token" if token else "missing signature"
            )
            malformed = dict(signed_headers(scheme, BODY, now))
            if MALFORMED[scheme] is not None:
                malformed[SIGNATURE_HEADER[scheme]] = str(MALFORMED[scheme])
                await expect(
                    path,
                    BODY,
                    {**json_type, **malformed},
                    401,
                    "malformed token" if token else "malformed signature",
                )
            await expect(
                path,
                BODY,
                {**json_type, **wrong_headers(scheme, BODY, now)},
                401,
                "invalid token" if token else "signature mismatch",
            )
            await expect(path, BODY, {**json_type, **signed_headers(scheme, BODY, now)}, 200, None)
        for scheme in ("standard", "stripe", "grafana"):
            stale = signed_headers(scheme, BODY, now - 3600)
            await expect(
                f"{BASE}/{scheme}", BODY, {**json_type, **stale}, 401, "timestamp outside tolerance"
            )
            future = signed_headers(scheme, BODY, now + 3600)
            await expect(
                f"{BASE}/{scheme}",
                BODY,
                {**json_type, **future},
                401,
                "timestamp outside tolerance",
            )

        # A repeated delivery id, and a Standard Webhooks message sent twice.
        probe = uuid.uuid4().hex
        github = {
            **json_type,
            **signed_headers("github", BODY, now),
            "X-GitHub-Delivery": probe,
            "X-Probe": probe,
        }
        await expect(f"{BASE}/github", BODY, github, 200, None)
        await expect(f"{BASE}/github", BODY, github, 200, None)
        assert answers[-1] == b'{"status":"duplicate"}'
        standard = {**json_type, **signed_headers("standard", BODY, now), "X-Probe": "sw" + probe}
        await expect(f"{BASE}/standard", BODY, standard, 200, None)
        await expect(f"{BASE}/standard", BODY, standard, 200, None)
        assert answers[-1] == b'{"status":"duplicate"}'

        # Concurrent deliveries with one id: the handler runs once.
        concurrent = uuid.uuid4().hex
        headers = {
            **json_type,
            **signed_headers("github", BODY, now),
            "X-GitHub-Delivery": concurrent,
            "X-Probe": concurrent,
        }
        statuses: list[int] = []

        async def send_one() -> None:
            status, body = await send(f"{BASE}/github?slow=1", BODY, headers)
            statuses.append(status)
            answers.append(body)

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(send_one)

        # An oversize body, and a JSON body sent to a form endpoint.
        big = b"x" * 1000
        await expect(f"{BASE}/small", big, signed_headers("small", big, now), 413, None)
        await expect(
            f"{BASE}/form", BODY, {**json_type, **signed_headers("form", BODY, now)}, 400, None
        )
        # The app goes on serving after all of it.
        await expect(
            f"{BASE}/github", BODY, {**json_type, **signed_headers("github", BODY, now)}, 200, None
        )

    assert CALLS[probe] == 1
    assert CALLS["sw" + probe] == 1
    assert CALLS[concurrent] == 1
    assert sorted(statuses).count(200) >= 1
    assert set(statuses) <= {200, 409}
    revealing = [
        SECRET,
        STANDARD_KEY,
        sign_github(BODY, SECRET)[7:],
        sign_hmac(BODY, SECRET),
        sign_gitea(BODY, SECRET),
    ]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in revealing:
        assert all(text.encode() not in answer for answer in answers)
        assert text not in logged


async def _raw_post(base_url: str, path: str, body: bytes, header_lines: bytes) -> bytes:
    """Send one POST with header bytes as given; return the whole response."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    ).encode()
    writer.write(head + header_lines + b"\r\n" + body)
    try:
        return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize("kind", ["aiohttp", "litestar"])
async def test_non_utf8_headers_keep_log_writing(kind: str, tmp_path: Path) -> None:
    """A delivery id that is no UTF-8 text gets a 400; other headers are logged as sent."""
    app = WebhookApp([matrix], CONFIG, data_dir=tmp_path)
    signature = sign_github(BODY, SECRET).encode()
    async with running_server(app, kind) as base_url:
        bad_id = await _raw_post(
            base_url,
            f"{BASE}/github",
            BODY,
            b"X-Hub-Signature-256: " + signature + b"\r\nX-GitHub-Delivery: id-\xff\xfe\r\n",
        )
        odd_note = await _raw_post(
            base_url,
            f"{BASE}/github",
            BODY,
            b"X-Hub-Signature-256: "
            + signature
            + b"\r\nX-GitHub-Delivery: caf\xc3\xa9-1\r\nX-Note: caf\xc3\xa9 \xff\r\n",
        )
        await app.writer.flush()
        assert app.writer.pending == 0
        records = await app.storage.deliveries_list("matrix", None, 10)
    assert bad_id.split(b" ", 2)[1] == b"400"
    assert bad_id.endswith(b'{"error":"the X-GitHub-Delivery header is not valid UTF-8"}')
    assert odd_note.split(b" ", 2)[1] == b"200"
    assert len(records) == 2
    assert records[0].delivery_id == "café-1"
    notes = [value for name, value in records[0].headers if name.lower() == "x-note"]
    assert notes == ["café \udcff"]


async def test_non_utf8_header_reaches_chat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = WebhookApp([matrix], CONFIG, data_dir=tmp_path)
    signature = sign_github(BODY, SECRET).encode()
    async with running_server(app, "aiohttp") as base_url:
        reply = await _raw_post(
            base_url,
            f"{BASE}/relay",
            BODY,
            b"X-Hub-Signature-256: " + signature + b"\r\nX-Note: pu\xffsh\r\n",
        )
        await app.drain()
        dead = await app.storage.outbox_count("dead")
    assert reply.split(b" ", 2)[1] == b"200"
    assert reply.endswith(b'{"status":"ok","event":"pu\\udcffsh"}')
    assert dead == 0
    assert "[console-ops] event pu?sh\n" in capsys.readouterr().out
