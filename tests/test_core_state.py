"""Store, tasks, outbox, uploads and redaction across app restarts."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from core import Plugin, Settings, WebhookApp, WebhookRequest, context, message
from core.channels import ConsoleChannel
from core.config import setting
from core.forms import SPOOL_MAX_SIZE
from core.records import TaskRecord
from core.settings import ServerSettings
from core.sqlite import SQLiteStorage
from core.store import MemoryStorage
from core.testing import WebhookTestClient

pytestmark = pytest.mark.anyio

state = Plugin("state", version="0.1")
BASE = "/api/plugin/state/webhook"
release = anyio.Event()


@state.mount_config()
class StateConfig:
    TOKEN: str = setting("", title="Token", secret=True)
    CHAT: str = setting("console-ops")


@state.mount_webhook("/remember", methods=["POST"])
async def remember(request: WebhookRequest) -> Any:
    data = await request.json()
    await state.store.set(store_key=data["key"], value=data["value"], chat_key="c", user_key="u")
    return {"stored": data["key"]}


@state.mount_webhook("/recall")
async def recall(request: WebhookRequest) -> Any:
    value = await state.store.get(store_key=request.query["key"], chat_key="c", user_key="u")
    return {"value": value}


@state.mount_webhook("/notify", methods=["POST"])
async def notify(request: WebhookRequest) -> Any:
    text = await request.text()
    ctx = await context.create_temp_ctx(state.config.CHAT)
    await message.send_text(state.config.CHAT, text, ctx)
    return {"queued": True}


@state.mount_webhook("/bad-chat", methods=["POST"])
async def bad_chat() -> Any:
    await message.send_text("no-dash-missing".replace("-", ""), "x")
    return None  # pragma: no cover - send_text raises


async def double(value: int) -> int:
    await anyio.lowlevel.checkpoint()
    return value * 2


async def explode() -> None:
    raise ValueError("task went wrong")


async def wait_forever() -> None:
    await anyio.sleep(3600)


@state.mount_webhook("/tasks", methods=["POST"])
async def start_task(request: WebhookRequest) -> Any:
    kind = request.query["kind"]
    functions: dict[str, Callable[..., Awaitable[object]]] = {
        "double": double,
        "explode": explode,
        "forever": wait_forever,
    }
    function = functions[kind]
    args = (21,) if kind == "double" else ()
    return {"task_id": state.tasks.start(function, *args)}, 202


@state.mount_webhook("/upload", methods=["POST"])
async def upload(request: WebhookRequest) -> Any:
    form = await request.form()
    file = form["file"]
    assert not isinstance(file, str)
    in_memory = not getattr(file.file, "_rolled", True)
    target = Path(str(form["target"]))
    size = await file.save(target)
    return {"size": size, "in_memory": in_memory, "name": file.filename}


@state.mount_webhook("/slow", methods=["POST"], respond_within=0.05)
async def slow() -> Any:
    await release.wait()
    await message.send_text("console-ops", "slow finished")
    return {"done": True}


async def test_store_survives_restart(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        await client.post(f"{BASE}/remember", json={"key": "k", "value": "v1"})
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        response = await client.get(f"{BASE}/recall?key=k")
    assert response.json() == {"value": "v1"}


async def test_store_delete_and_namespaces(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        store = client.app.plugin_store("state")
        await store.set(store_key="k", value="plain")
        await store.set(store_key="k", value="chat", chat_key="group")
        deleted = await store.delete(store_key="k")
        plain = await store.get(store_key="k")
        chat = await store.get(store_key="k", chat_key="group")
    assert deleted is True
    assert plain is None
    assert chat == "chat"


async def test_store_rejects_non_string(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        store = client.app.plugin_store("state")
        with pytest.raises(TypeError, match="strings"):
            await store.set(store_key="k", value=5)  # type: ignore[arg-type]


async def test_send_text_is_delivered(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        await client.post(f"{BASE}/notify", content="部署完成 ✅")
        await client.drain()
    assert [(m.chat_key, m.text) for m in client.messages] == [("console-ops", "部署完成 ✅")]


async def test_send_text_commits_before_return(tmp_path: Path) -> None:
    blocked = anyio.Event()

    class Blocking(ConsoleChannel):
        async def send(self, message: Any) -> None:
            await blocked.wait()

    app = WebhookApp([state], data_dir=tmp_path, default_channel=Blocking())
    async with app.running():
        await app.handle(WebhookRequest("POST", "state", "/notify", body=b"hello"))
        with sqlite3.connect(tmp_path / "plughook.sqlite3") as db:
            rows = db.execute("SELECT chat_key, text FROM outbox").fetchall()
        blocked.set()
    assert rows == [("console-ops", "hello")]


async def test_pending_message_survives_restart(tmp_path: Path) -> None:
    class Down(ConsoleChannel):
        async def send(self, message: Any) -> None:
            await anyio.sleep(3600)

    settings = Settings(server=ServerSettings(grace_period=0.1))
    app = WebhookApp([state], data_dir=tmp_path, default_channel=Down(), settings=settings)
    async with app.running():
        await app.handle(WebhookRequest("POST", "state", "/notify", body=b"survivor"))
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        await client.drain()
    assert [m.text for m in client.messages] == ["survivor"]


# The outbox table as written before workers recorded their claims.
OUTBOX_WITHOUT_CLAIMS = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, chat_key TEXT NOT NULL,
    text TEXT NOT NULL, created_at REAL NOT NULL, plugin TEXT NOT NULL,
    attempts INTEGER NOT NULL, next_attempt_at REAL NOT NULL, state TEXT NOT NULL,
    last_error TEXT NOT NULL, possible_duplicates INTEGER NOT NULL
);
INSERT INTO outbox (id, chat_key, text, created_at, plugin, attempts, next_attempt_at, state,
    last_error, possible_duplicates)
VALUES ('old-1', 'console-ops', 'queued before', 1.0, 'state', 0, 1.0, 'pending', '', 0);
"""


async def test_outbox_without_claim_column_opens(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "plughook.sqlite3") as db:
        db.executescript(OUTBOX_WITHOUT_CLAIMS)
    db.close()
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    try:
        [listed] = await storage.outbox_list(None, 10)
        [due] = await storage.outbox_due(2.0, 10, frozenset())
        claimed = await storage.outbox_get("old-1")
    finally:
        await storage.close()
    assert listed.text == "queued before"
    assert not listed.is_sending(2.0)
    assert due.id == "old-1"
    assert claimed is not None
    assert claimed.is_sending(2.0)


async def test_invalid_chat_key_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid chat key 'nodashmissing'"):
        await context.create_temp_ctx("nodashmissing")


async def test_invalid_chat_key_in_handler_is_500(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        response = await client.post(f"{BASE}/bad-chat")
    assert response.status_code == 500


async def test_task_completes_with_result(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        response = await client.post(f"{BASE}/tasks?kind=double")
        task_id = response.json()["task_id"]
        await client.drain()
        record = await client.app.plugin_tasks("state").get(task_id)
    assert response.status_code == 202
    assert record is not None
    assert record.state == "completed"
    assert record.result == "42"


async def test_task_failure_is_recorded(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        response = await client.post(f"{BASE}/tasks?kind=explode")
        await client.drain()
        record = await client.app.plugin_tasks("state").get(response.json()["task_id"])
    assert record is not None
    assert record.state == "failed"
    assert record.error == "ValueError: task went wrong"


async def test_task_record_survives_restart(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        response = await client.post(f"{BASE}/tasks?kind=double")
        await client.drain()
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        record = await client.app.plugin_tasks("state").get(response.json()["task_id"])
    assert record is not None
    assert record.state == "completed"


async def test_shutdown_marks_running_task_interrupted(tmp_path: Path) -> None:
    settings = Settings(server=ServerSettings(grace_period=0.05))
    async with WebhookTestClient([state], data_dir=tmp_path, settings=settings) as client:
        response = await client.post(f"{BASE}/tasks?kind=forever")
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        record = await client.app.plugin_tasks("state").get(response.json()["task_id"])
    assert record is not None
    assert record.state == "interrupted"


async def test_crashed_process_tasks_become_interrupted(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "plughook.sqlite3")
    await storage.open()
    await storage.tasks_write([TaskRecord("t1", "state", "work", "running", 1.0, 1.0)])
    await storage.close()
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        record = await client.app.plugin_tasks("state").get("t1")
    assert record is not None
    assert record.state == "interrupted"


async def test_other_plugin_cannot_read_task(tmp_path: Path) -> None:
    other = Plugin("other", version="1")
    async with WebhookTestClient([state, other], data_dir=tmp_path) as client:
        response = await client.post(f"{BASE}/tasks?kind=double")
        await client.drain()
        record = await client.app.plugin_tasks("other").get(response.json()["task_id"])
    assert record is None


async def test_small_upload_stays_in_memory(tmp_path: Path) -> None:
    target = tmp_path / "small.bin"
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        response = await client.post(
            f"{BASE}/upload", data={"target": str(target)}, files={"file": ("a.txt", b"hi")}
        )
    assert response.json() == {"size": 2, "in_memory": True, "name": "a.txt"}


async def test_large_upload_streams_to_disk(tmp_path: Path) -> None:
    payload = bytes(range(256)) * (SPOOL_MAX_SIZE // 256 * 3 + 7)
    target = tmp_path / "large.bin"
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        response = await client.post(
            f"{BASE}/upload",
            data={"target": str(target)},
            files={"file": ("big.bin", payload, "application/octet-stream")},
        )
    assert response.json()["in_memory"] is False
    assert response.json()["size"] == len(payload)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(payload).digest()


async def test_upload_parsed_from_small_chunks(tmp_path: Path) -> None:
    from core.testing import encode_multipart

    body, content_type = encode_multipart(
        {"target": str(tmp_path / "chunked.bin")}, {"file": ("c.bin", b"x" * 5000)}
    )

    async def chunks() -> Any:
        stream = io.BytesIO(body)
        while chunk := stream.read(7):
            yield chunk

    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        request = WebhookRequest(
            "POST", "state", "/upload", headers={"Content-Type": content_type}, body=chunks()
        )
        response = await client.app.handle(request)
    assert response.status == 200
    assert (tmp_path / "chunked.bin").read_bytes() == b"x" * 5000


async def test_secret_is_redacted_in_repr_and_listing(tmp_path: Path) -> None:
    config = {"state": {"TOKEN": "hunter2-secret"}}
    async with WebhookTestClient([state], config, data_dir=tmp_path) as client:
        shown = repr(client.app.plugin_config("state"))
        listing = (await client.get("/api/plugins")).text
    assert "hunter2-secret" not in shown
    assert "TOKEN='***'" in shown
    assert "hunter2-secret" not in listing
    assert '"TOKEN":"***"' in listing


async def test_slow_handler_answers_202_then_finishes(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        response = await client.post(f"{BASE}/slow")
        release.set()
        await client.drain()
    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    assert [m.text for m in client.messages] == ["slow finished"]


async def test_memory_storage_serves_the_app() -> None:
    async with WebhookTestClient([state], store=MemoryStorage()) as client:
        await client.post(f"{BASE}/remember", json={"key": "k", "value": "mem"})
        response = await client.get(f"{BASE}/recall?key=k")
    assert response.json() == {"value": "mem"}


async def test_deliveries_are_logged_without_secrets(tmp_path: Path) -> None:
    async with WebhookTestClient([state], data_dir=tmp_path) as client:
        await client.post(
            f"{BASE}/remember",
            json={"key": "k", "value": "v"},
            headers={"Authorization": "Bearer top-secret", "X-GitHub-Delivery": "d-1"},
        )
        await client.drain()
        records = await client.app.storage.deliveries_list("state", None, 10)
    assert len(records) == 1
    assert records[0].delivery_id == "d-1"
    assert ("Authorization", "[redacted]") in records[0].headers
    assert records[0].status == 200


announcer = Plugin("announcer", version="1")


async def announce_later(text: str) -> None:
    await message.send_text("console-ops", text)


@announcer.mount_webhook("/now")
async def announce_now() -> dict[str, str]:
    await message.send_text("console-ops", "from the handler")
    announcer.tasks.start(announce_later, "from a task")
    return {"status": "queued"}


async def test_queued_messages_name_their_plugin(tmp_path: Path) -> None:
    async with WebhookTestClient([announcer], data_dir=tmp_path) as client:
        await client.post("/api/plugin/announcer/webhook/now")
        await client.drain()
    senders = {sent.text: sent.plugin for sent in client.messages}
    assert senders == {"from the handler": "announcer", "from a task": "announcer"}
