"""End-to-end tests of the long-process plugin: start, run, read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.settings import ServerSettings, Settings
from core.testing import WebhookTestClient
from plugins.long_process import plugin

URL = "/api/plugin/long-process/webhook/tasks"
TOKEN = "lp-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_config(**settings: Any) -> dict[str, dict[str, Any]]:
    values: dict[str, Any] = {"API_TOKEN": TOKEN, "STEP_SECONDS": 0}
    values.update(settings)
    return {"long-process": values}


@pytest.mark.anyio
async def test_task_starts_with_202() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await client.post(URL, json={"steps": 2}, headers=AUTH)
        await client.drain()
    body = response.json()
    assert response.status_code == 202
    assert body["status"] == "started"
    assert isinstance(body["task_id"], str)
    assert body["task_id"]


@pytest.mark.anyio
async def test_task_completes_and_reads_back() -> None:
    params = {"steps": 3, "label": "monthly report"}
    async with WebhookTestClient([plugin], make_config()) as client:
        started = await client.post(URL, json=params, headers=AUTH)
        await client.drain()
        task_id = started.json()["task_id"]
        response = await client.get(URL, params={"id": task_id}, headers=AUTH)
    record = response.json()
    assert response.status_code == 200
    assert record["id"] == task_id
    assert record["plugin"] == "long-process"
    assert record["state"] == "completed"
    assert record["result"] == {"steps": 3, "params": params}
    assert record["error"] is None
    assert record["progress"] == {"step": 3, "steps": 3}


# Shutdown cancels a task still running after this grace period.
SHORT_GRACE = Settings(server=ServerSettings(grace_period=0.05))


@pytest.mark.anyio
async def test_running_task_reports_running(tmp_path: Path) -> None:
    # A step of an hour keeps the task running while it is read.
    config = make_config(STEP_SECONDS=3600)
    async with WebhookTestClient(
        [plugin], config, data_dir=tmp_path, settings=SHORT_GRACE
    ) as client:
        started = await client.post(URL, json={"steps": 1}, headers=AUTH)
        task_id = started.json()["task_id"]
        running = await client.get(URL, params={"id": task_id}, headers=AUTH)
    async with WebhookTestClient([plugin], config, data_dir=tmp_path) as client:
        after_restart = await client.get(URL, params={"id": task_id}, headers=AUTH)
    assert running.json()["state"] == "running"
    assert running.json()["progress"] is None
    assert after_restart.json()["state"] == "interrupted"


@pytest.mark.anyio
async def test_task_record_survives_restart(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        started = await client.post(URL, json={"steps": 1}, headers=AUTH)
        await client.drain()
    task_id = started.json()["task_id"]
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await client.get(URL, params={"id": task_id}, headers=AUTH)
    assert response.json()["state"] == "completed"


@pytest.mark.anyio
async def test_empty_body_uses_default_steps() -> None:
    async with WebhookTestClient([plugin], make_config(DEFAULT_STEPS=4)) as client:
        started = await client.post(URL, headers=AUTH)
        await client.drain()
        response = await client.get(URL, params={"id": started.json()["task_id"]}, headers=AUTH)
    assert started.status_code == 202
    assert response.json()["result"] == {"steps": 4, "params": {}}


@pytest.mark.anyio
async def test_unknown_id_is_404() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await client.get(URL, params={"id": "0123456789abcdef"}, headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {"error": "no task with id '0123456789abcdef'"}


@pytest.mark.anyio
async def test_missing_id_is_400() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await client.get(URL, headers=AUTH)
    assert response.status_code == 400
    assert response.json() == {"error": "missing query parameter 'id': GET /tasks?id=<task_id>"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"steps": 0}, "invalid task request: steps must be between 1 and 100, got 0"),
        ({"steps": 101}, "invalid task request: steps must be between 1 and 100, got 101"),
        (
            {"steps": "3"},
            "invalid task request: invalid fields: steps (expected an integer, got string)",
        ),
        ([1, 2], "the task parameters must be a JSON object, got list"),
    ],
)
async def test_invalid_request_is_400(body: Any, error: str) -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await client.post(URL, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json() == {"error": error}


@pytest.mark.anyio
async def test_missing_token_is_401() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        started = await client.post(URL, json={"steps": 1})
        read = await client.get(URL, params={"id": "x"})
    assert started.status_code == 401
    assert read.status_code == 401


@pytest.mark.anyio
async def test_completion_notice() -> None:
    config = make_config(NOTIFY_CHAT="console-ops", LOCALE="en")
    async with WebhookTestClient([plugin], config) as client:
        started = await client.post(URL, json={"steps": 2}, headers=AUTH)
        await client.drain()
    task_id = started.json()["task_id"]
    assert [(m.chat_key, m.text) for m in client.messages] == [
        ("console-ops", f'✅ Task "{task_id}" completed (2 steps)')
    ]


@pytest.mark.anyio
async def test_completion_notice_chinese() -> None:
    async with WebhookTestClient([plugin], make_config(NOTIFY_CHAT="console-ops")) as client:
        started = await client.post(URL, json={"steps": 1}, headers=AUTH)
        await client.drain()
    task_id = started.json()["task_id"]
    assert [m.text for m in client.messages] == [f"✅ 任务「{task_id}」已完成（1 步）"]


@pytest.mark.anyio
async def test_completion_notice_names_label() -> None:
    async with WebhookTestClient([plugin], make_config(NOTIFY_CHAT="console-ops")) as client:
        await client.post(URL, json={"steps": 1, "label": "nightly report"}, headers=AUTH)
        await client.drain()
    assert [m.text for m in client.messages] == ["✅ 任务「nightly report」已完成（1 步）"]
