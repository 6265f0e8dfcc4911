"""End-to-end tests of the status plugin and maintenance mode across bundled plugins."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any

import pytest

from core.records import DeliveryRecord
from core.testing import WebhookTestClient
from plugins import file_upload, github_notifier, long_process, monitor_alert, status

URL = "/api/plugin/status/webhook/status"
TOKEN = "status-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALL_PLUGINS = [
    status.plugin,
    github_notifier.plugin,
    monitor_alert.plugin,
    file_upload.plugin,
    long_process.plugin,
]
CONFIG: dict[str, dict[str, Any]] = {
    "status": {"API_TOKEN": TOKEN},
    "github-notifier": {"WEBHOOK_SECRET": "gh", "NOTIFICATION_CHAT": "console-ops"},
    "monitor-alert": {"API_TOKEN": "mon", "ALERT_CHAT": "console-ops"},
    "file-upload": {"API_TOKEN": "up"},
    "long-process": {"API_TOKEN": "lp", "STEP_SECONDS": 0},
}
STATUS_CONFIG = {"status": CONFIG["status"]}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_get_reports_running() -> None:
    async with WebhookTestClient(ALL_PLUGINS, CONFIG) as client:
        response = await client.get(URL)
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "running"
    assert body["version"] == status.plugin.version
    assert isinstance(body["uptime"], float)
    assert 0 <= body["uptime"] < 60


@pytest.mark.anyio
async def test_get_needs_no_token_even_unconfigured() -> None:
    async with WebhookTestClient([status.plugin], {}) as client:
        response = await client.get(URL)
    assert response.status_code == 200


@pytest.mark.anyio
async def test_head_returns_no_body() -> None:
    async with WebhookTestClient([status.plugin], CONFIG) as client:
        response = await client.request("HEAD", URL)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.anyio
async def test_post_switches_to_maintenance() -> None:
    async with WebhookTestClient(ALL_PLUGINS, CONFIG) as client:
        response = await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
        after = await client.get(URL)
    assert response.status_code == 200
    assert response.json() == {"status": "maintenance", "previous": "running"}
    assert after.json()["status"] == "maintenance"


@pytest.mark.anyio
async def test_post_without_token_is_401() -> None:
    async with WebhookTestClient(ALL_PLUGINS, CONFIG) as client:
        response = await client.post(URL, json={"status": "maintenance"})
        after = await client.get(URL)
    assert response.status_code == 401
    assert after.json()["status"] == "running"


@pytest.mark.anyio
async def test_post_with_wrong_token_is_401() -> None:
    async with WebhookTestClient(ALL_PLUGINS, CONFIG) as client:
        response = await client.post(
            URL, json={"status": "maintenance"}, headers={"Authorization": "Bearer status-tokeN"}
        )
        after = await client.get(URL)
    assert response.status_code == 401
    assert after.json()["status"] == "running"


@pytest.mark.anyio
async def test_post_with_empty_token_setting_is_503() -> None:
    async with WebhookTestClient([status.plugin], {"status": {"API_TOKEN": ""}}) as client:
        response = await client.post(
            URL, json={"status": "maintenance"}, headers={"Authorization": "Bearer "}
        )
    assert response.status_code == 503


@pytest.mark.anyio
async def test_post_without_token_setting_names_it() -> None:
    async with WebhookTestClient([status.plugin], {}) as client:
        response = await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
    assert response.status_code == 503
    assert response.json() == {"error": "token is not configured: set plugins.status.API_TOKEN"}


@pytest.mark.anyio
async def test_unset_token_warns_for_post_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="plughook")
    async with WebhookTestClient([status.plugin], {}):
        pass
    warnings = [r.getMessage() for r in caplog.records if "returns 503" in r.getMessage()]
    assert warnings == [
        "endpoint status/status returns 503 to POST until plugins.status.API_TOKEN is set"
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("body", [{"status": "paused"}, {}, ["maintenance"]])
async def test_post_invalid_status_is_400(body: Any) -> None:
    async with WebhookTestClient([status.plugin], CONFIG) as client:
        response = await client.post(URL, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json() == {
        "error": 'expected a JSON body {"status": "maintenance"} or {"status": "running"}'
    }


@pytest.mark.anyio
async def test_put_not_allowed() -> None:
    async with WebhookTestClient([status.plugin], CONFIG) as client:
        response = await client.put(URL, json={"status": "running"}, headers=AUTH)
    assert response.status_code == 405


async def status_records(client: WebhookTestClient) -> list[DeliveryRecord]:
    """Return the status plugin's delivery records, oldest first."""
    await client.drain()
    records = await client.app.storage.deliveries_list("status", None, 20)
    return list(reversed(records))


@pytest.mark.anyio
async def test_records_carry_the_token_verdict(tmp_path: Path) -> None:
    async with WebhookTestClient([status.plugin], STATUS_CONFIG, data_dir=tmp_path) as client:
        await client.get(URL)
        await client.request("HEAD", URL)
        await client.post(URL, json={"status": "running"}, headers=AUTH)
        await client.post(
            URL, json={"status": "running"}, headers={"Authorization": "Bearer status-tokeN"}
        )
        await client.post(URL, json={"status": "running"})
        records = await status_records(client)
    # A successful GET or HEAD is not logged.
    assert [(r.method, r.status, r.verified) for r in records] == [
        ("POST", 200, True),
        ("POST", 401, False),
        ("POST", 401, False),
    ]


@pytest.mark.anyio
async def test_unconfigured_token_records_post_unverified(tmp_path: Path) -> None:
    async with WebhookTestClient([status.plugin], {}, data_dir=tmp_path) as client:
        report = await client.get(URL)
        switch = await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
        records = await status_records(client)
    assert (report.status_code, switch.status_code) == (200, 503)
    assert [r.verified for r in records] == [False]


@pytest.mark.anyio
async def test_replay_of_accepted_switch_switches_again(tmp_path: Path) -> None:
    async with WebhookTestClient([status.plugin], STATUS_CONFIG, data_dir=tmp_path) as client:
        await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
        await client.post(URL, json={"status": "running"}, headers=AUTH)
        first, _ = await status_records(client)
        _, response = await client.app.replay(first.id)
        after = await client.get(URL)
        replay = (await status_records(client))[2]
    assert response.status == 200
    assert after.json()["status"] == "maintenance"
    assert (replay.replay_of, replay.verified) == (first.id, True)


@pytest.mark.anyio
async def test_replay_of_rejected_switch_needs_allow_unverified(tmp_path: Path) -> None:
    async with WebhookTestClient([status.plugin], STATUS_CONFIG, data_dir=tmp_path) as client:
        await client.post(
            URL, json={"status": "maintenance"}, headers={"Authorization": "Bearer status-tokeN"}
        )
        [rejected] = await status_records(client)
        with pytest.raises(ValueError, match="did not pass its endpoint's verification"):
            await client.app.replay(rejected.id)
        running = await client.get(URL)
        _, response = await client.app.replay(rejected.id, allow_unverified=True)
        switched = await client.get(URL)
    assert running.json()["status"] == "running"
    assert response.status == 200
    assert switched.json()["status"] == "maintenance"


def github_push() -> tuple[bytes, dict[str, str]]:
    body = b'{"ref": "refs/heads/main", "commits": []}'
    signature = "sha256=" + hmac.new(b"gh", body, hashlib.sha256).hexdigest()
    return body, {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
    }


@pytest.mark.anyio
async def test_maintenance_blocks_other_plugins() -> None:
    body, headers = github_push()
    async with WebhookTestClient(ALL_PLUGINS, CONFIG) as client:
        await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
        github = await client.post(
            "/api/plugin/github-notifier/webhook/github", content=body, headers=headers
        )
        alert = await client.post(
            "/api/plugin/monitor-alert/webhook/alert",
            json={"service": "db", "level": "critical"},
            headers={"Authorization": "Bearer mon"},
        )
        upload = await client.post(
            "/api/plugin/file-upload/webhook/upload",
            data={"chat_key": "console-ops"},
            files={"file": ("a.txt", b"x")},
            headers={"Authorization": "Bearer up"},
        )
        task = await client.post(
            "/api/plugin/long-process/webhook/tasks",
            json={},
            headers={"Authorization": "Bearer lp"},
        )
        await client.drain()
    for response in (github, alert, upload, task):
        assert response.status_code == 503
        assert response.json() == {"error": "maintenance"}
    assert client.messages == []


@pytest.mark.anyio
async def test_maintenance_rejection_records_the_delivery_id(tmp_path: Path) -> None:
    body, headers = github_push()
    headers["X-GitHub-Delivery"] = "5f2c8a10-0000-4000-8000-000000000001"
    github_url = "/api/plugin/github-notifier/webhook/github"
    async with WebhookTestClient(ALL_PLUGINS, CONFIG, data_dir=tmp_path) as client:
        await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
        rejected = await client.post(github_url, content=body, headers=headers)
        await client.post(URL, json={"status": "running"}, headers=AUTH)
        redelivered = await client.post(github_url, content=body, headers=headers)
        await client.drain()
        records = await client.app.storage.deliveries_list("github-notifier", None, 10)
    assert rejected.status_code == 503
    # The rejected delivery claimed nothing, so its redelivery runs the handler.
    assert redelivered.status_code == 200
    assert redelivered.json() != {"status": "duplicate"}
    assert len(client.messages) == 1
    assert [(r.status, r.delivery_id) for r in reversed(records)] == [
        (503, "5f2c8a10-0000-4000-8000-000000000001"),
        (200, "5f2c8a10-0000-4000-8000-000000000001"),
    ]


@pytest.mark.anyio
async def test_maintenance_rejected_delivery_replays_after(tmp_path: Path) -> None:
    body, headers = github_push()
    github_url = "/api/plugin/github-notifier/webhook/github"
    async with WebhookTestClient(ALL_PLUGINS, CONFIG, data_dir=tmp_path) as client:
        await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
        rejected = await client.post(github_url, content=body, headers=headers)
        await client.post(URL, json={"status": "running"}, headers=AUTH)
        await client.app.writer.flush()
        [record] = await client.app.storage.deliveries_list("github-notifier", None, 10)
        _, replayed = await client.app.replay(record.id)
        await client.drain()
    assert rejected.status_code == 503
    assert record.verified is True
    assert replayed.status == 200
    assert len(client.messages) == 1


@pytest.mark.anyio
async def test_maintenance_rejection_and_switch_logged(caplog: pytest.LogCaptureFixture) -> None:
    body, headers = github_push()
    headers["X-GitHub-Delivery"] = "5f2c8a10-0000-4000-8000-000000000002"
    with caplog.at_level(logging.INFO, "plughook"):
        async with WebhookTestClient(ALL_PLUGINS, CONFIG) as client:
            await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
            await client.post(
                "/api/plugin/github-notifier/webhook/github", content=body, headers=headers
            )
    messages = [record.getMessage() for record in caplog.records]
    assert "maintenance mode switched on" in messages
    assert (
        "delivery 5f2c8a10-0000-4000-8000-000000000002 to github-notifier/github rejected "
        "with 503: maintenance mode is on"
    ) in messages


@pytest.mark.anyio
async def test_bad_signature_in_maintenance_gets_401() -> None:
    body, headers = github_push()
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    async with WebhookTestClient(ALL_PLUGINS, CONFIG) as client:
        await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
        response = await client.post(
            "/api/plugin/github-notifier/webhook/github", content=body, headers=headers
        )
    assert response.status_code == 401


@pytest.mark.anyio
async def test_running_again_unblocks() -> None:
    body, headers = github_push()
    async with WebhookTestClient(ALL_PLUGINS, CONFIG) as client:
        await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
        back = await client.post(URL, json={"status": "running"}, headers=AUTH)
        github = await client.post(
            "/api/plugin/github-notifier/webhook/github", content=body, headers=headers
        )
        await client.drain()
    assert back.json() == {"status": "running", "previous": "maintenance"}
    assert github.status_code == 200
    assert len(client.messages) == 1


@pytest.mark.anyio
async def test_maintenance_survives_restart(tmp_path: Path) -> None:
    async with WebhookTestClient(ALL_PLUGINS, CONFIG, data_dir=tmp_path) as client:
        await client.post(URL, json={"status": "maintenance"}, headers=AUTH)
    async with WebhookTestClient(ALL_PLUGINS, CONFIG, data_dir=tmp_path) as client:
        report = await client.get(URL)
        alert = await client.post(
            "/api/plugin/monitor-alert/webhook/alert",
            json={"service": "db", "level": "critical"},
            headers={"Authorization": "Bearer mon"},
        )
    assert report.json()["status"] == "maintenance"
    assert alert.status_code == 503
