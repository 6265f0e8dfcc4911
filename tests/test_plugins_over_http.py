"""Bundled plugins behind real aiohttp and Litestar servers, with real payloads.

Every GitHub fixture is sent over HTTP with the signature GitHub computes,
and an Alertmanager group with the bearer token Alertmanager sends; the chat
text must equal what the in-process tests expect, in both locales.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from core import WebhookApp
from core.channels import RecordingChannel
from plugins.github_notifier import plugin as github_plugin
from plugins.monitor_alert import plugin as monitor_plugin
from tests.servers import running_server
from tests.test_plugin_github import CHAT, EXPECTED_EN, EXPECTED_ZH, FIXTURES, sign

pytestmark = pytest.mark.anyio

GITHUB_URL = "/api/plugin/github-notifier/webhook/github"
ALERTMANAGER_URL = "/api/plugin/monitor-alert/webhook/alertmanager"
TOKEN = "alertmanager-bearer-token"
SECRET = "It's a Secret to Everybody"


def event_of(fixture: str) -> str:
    return fixture.split("/")[0]


async def wait_for_messages(recorder: RecordingChannel, count: int) -> None:
    with anyio.fail_after(10):
        while len(recorder.messages) < count:
            await anyio.sleep(0.01)


@pytest.mark.parametrize("adapter", ["aiohttp", "litestar"])
@pytest.mark.parametrize("locale", ["zh_CN", "en"])
async def test_github_fixtures_over_http(adapter: str, locale: str, tmp_path: Path) -> None:
    expected = EXPECTED_ZH if locale == "zh_CN" else EXPECTED_EN
    recorder = RecordingChannel()
    config = {
        "github-notifier": {"WEBHOOK_SECRET": SECRET, "NOTIFICATION_CHAT": CHAT, "LOCALE": locale}
    }
    app = WebhookApp([github_plugin], config, data_dir=tmp_path, default_channel=recorder)
    sent = 0
    async with running_server(app, adapter) as base_url, aiohttp.ClientSession() as session:
        for fixture, text in sorted(expected.items()):
            body = (FIXTURES / fixture).read_bytes()
            headers = {
                "X-GitHub-Event": event_of(fixture),
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(body, SECRET),
                "Content-Type": "application/json",
            }
            async with session.post(base_url + GITHUB_URL, data=body, headers=headers) as reply:
                assert reply.status == 200, await reply.text()
            if text is not None:
                sent += 1
                await wait_for_messages(recorder, sent)
                assert recorder.messages[-1].text == text, fixture
    assert sent == sum(1 for text in expected.values() if text is not None)


ALERTMANAGER_GROUP: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="DiskFull"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "plughook",
    "groupLabels": {"alertname": "DiskFull"},
    "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-1"},
            "annotations": {"summary": "disk 97% full"},
            "startsAt": "2026-12-04T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph",
            "fingerprint": "0a1b2c3d4e5f6789",
        }
    ],
}


@pytest.mark.parametrize("adapter", ["aiohttp", "litestar"])
async def test_alertmanager_group_over_http(adapter: str, tmp_path: Path) -> None:
    recorder = RecordingChannel()
    config = {"monitor-alert": {"API_TOKEN": TOKEN, "ALERT_CHAT": CHAT}}
    app = WebhookApp([monitor_plugin], config, data_dir=tmp_path, default_channel=recorder)
    body = json.dumps(ALERTMANAGER_GROUP).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with running_server(app, adapter) as base_url, aiohttp.ClientSession() as session:
        async with session.post(base_url + ALERTMANAGER_URL, data=body, headers=headers) as reply:
            status = reply.status
        await wait_for_messages(recorder, 1)
    text = recorder.messages[0].text
    assert status == 200
    assert text.splitlines()[0] == "🔴 告警触发 | Alertmanager"
    assert "DiskFull" in text
    assert "disk 97% full" in text
