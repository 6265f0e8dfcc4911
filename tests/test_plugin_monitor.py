"""End-to-end tests of the monitor-alert plugin: generic alerts, Alertmanager, Grafana."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any

import pytest

from core.testing import TestResponse, WebhookTestClient
from plugins.monitor_alert import plugin

BASE = "/api/plugin/monitor-alert/webhook"
TOKEN = "s3cr3t-monitor-token"
CHAT = "onebot_v11-group_10001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_config(**settings: Any) -> dict[str, dict[str, Any]]:
    values: dict[str, Any] = {"API_TOKEN": TOKEN, "ALERT_CHAT": CHAT}
    values.update(settings)
    return {"monitor-alert": values}


async def post_json(
    path: str,
    payload: Any,
    config: dict[str, dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[TestResponse, list[str]]:
    body = json.dumps(payload).encode()
    async with WebhookTestClient([plugin], config or make_config()) as client:
        response = await client.post(
            f"{BASE}{path}",
            content=body,
            headers={"Content-Type": "application/json", **(AUTH if headers is None else headers)},
        )
        await client.drain()
    return response, [message.text for message in client.messages]


# The plugin's own format, as a monitoring script sends it.
GENERIC_ALERT = {
    "service": "payment-api",
    "level": "critical",
    "message": "Database connection pool exhausted",
    "timestamp": 1714564800,
    "metrics": {"cpu_percent": 93.5, "connections": 100, "healthy": False},
}

# An Alertmanager webhook (version 4) for one group of a latency rule, following
# the documented body: status, alerts[], groupLabels, commonLabels, externalURL, …
ALERTMANAGER: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity=~"critical|warning"}:{alertname="HighRequestLatency"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "plughook",
    "groupLabels": {"alertname": "HighRequestLatency"},
    "commonLabels": {"alertname": "HighRequestLatency", "job": "api"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.org:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "HighRequestLatency",
                "job": "api",
                "instance": "api-1:8080",
                "severity": "critical",
            },
            "annotations": {
                "summary": "p99 latency is 1.8s",
                "description": "p99 request latency above 1s for 10 minutes",
            },
            "startsAt": "2024-05-01T12:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=latency",
            "fingerprint": "1a30ba71cca2921f",
        },
        {
            "status": "firing",
            "labels": {
                "alertname": "HighRequestLatency",
                "job": "api",
                "instance": "api-2:8080",
                "severity": "warning",
            },
            "annotations": {"summary": "p99 latency is 1.1s"},
            "startsAt": "2024-05-01T12:03:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=latency",
            "fingerprint": "2b41cb82ddb3a32f",
        },
        {
            "status": "resolved",
            "labels": {
                "alertname": "HighRequestLatency",
                "job": "api",
                "instance": "api-3:8080",
                "severity": "warning",
            },
            "annotations": {"summary": "p99 latency is 0.9s"},
            "startsAt": "2024-05-01T11:00:00Z",
            "endsAt": "2024-05-01T11:45:00Z",
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=latency",
            "fingerprint": "3c52dc93eec4b43f",
        },
    ],
}

# A Grafana alerting webhook as the contact point documentation shows it, with
# severity labels added.
GRAFANA: dict[str, Any] = {
    "receiver": "plughook",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "High memory usage",
                "team": "blue",
                "zone": "us-1",
                "severity": "critical",
            },
            "annotations": {
                "description": "The system has high memory usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone us-1",
            },
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
        {
            "status": "firing",
            "labels": {
                "alertname": "High CPU usage",
                "team": "blue",
                "zone": "eu-1",
                "severity": "warning",
            },
            "annotations": {
                "description": "The system has high CPU usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone eu-1",
            },
            "startsAt": "2021-10-12T09:56:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:2]  (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = T2\n",
}


# ---------------------------------------------------------------------------
# POST /alert


@pytest.mark.anyio
async def test_generic_alert_chinese() -> None:
    response, texts = await post_json("/alert", GENERIC_ALERT)
    assert response.json() == {"status": "success", "notified": 1}
    assert texts == [
        "🔴 告警 | 严重\n"
        "服务：payment-api\n"
        "时间：2024-05-01 12:00:00 UTC\n"
        "详情：Database connection pool exhausted\n"
        "指标：\n"
        "- cpu_percent：93.5\n"
        "- connections：100\n"
        "- healthy：false"
    ]


@pytest.mark.anyio
async def test_generic_alert_english() -> None:
    _, texts = await post_json("/alert", GENERIC_ALERT, make_config(LOCALE="en"))
    assert texts == [
        "🔴 Alert | CRITICAL\n"
        "Service: payment-api\n"
        "Time: 2024-05-01 12:00:00 UTC\n"
        "Details: Database connection pool exhausted\n"
        "Metrics:\n"
        "- cpu_percent: 93.5\n"
        "- connections: 100\n"
        "- healthy: false"
    ]


@pytest.mark.anyio
async def test_generic_alert_minimal_fields() -> None:
    before = time.time()
    _, texts = await post_json(
        "/alert", {"service": "db", "level": "WARN"}, make_config(LOCALE="en")
    )
    lines = texts[0].splitlines()
    assert lines[0] == "🟡 Alert | WARNING"
    assert lines[3] == "Details: no details"
    match = re.fullmatch(r"Time: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", lines[2])
    assert match is not None
    assert match.group(1) >= time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(before - 1))


@pytest.mark.anyio
async def test_generic_alert_iso_timestamp_in_time_zone() -> None:
    payload = {**GENERIC_ALERT, "timestamp": "2024-05-01T12:00:00Z"}
    _, texts = await post_json("/alert", payload, make_config(TIMEZONE="Asia/Shanghai"))
    assert texts[0].splitlines()[2] == "时间：2024-05-01 20:00:00 Asia/Shanghai"


@pytest.mark.anyio
async def test_generic_alert_missing_fields_named() -> None:
    response, texts = await post_json("/alert", {"message": "disk full"})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid alert: missing required fields: level, service"}
    assert texts == []


@pytest.mark.anyio
async def test_generic_alert_wrong_types_named() -> None:
    response, _ = await post_json(
        "/alert", {"service": None, "level": "info", "timestamp": "yesterday", "metrics": [1]}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": (
            "invalid alert: invalid fields: service (expected a string, got null), "
            "timestamp (expected Unix seconds or an ISO 8601 time, got 'yesterday'), "
            "metrics (expected an object, got array)"
        )
    }


@pytest.mark.anyio
async def test_generic_alert_unknown_level_is_400() -> None:
    response, texts = await post_json("/alert", {"service": "db", "level": "apocalyptic"})
    assert response.status_code == 400
    assert "apocalyptic" in response.json()["error"]
    assert texts == []


@pytest.mark.anyio
async def test_generic_alert_not_an_object_is_400() -> None:
    response, _ = await post_json("/alert", ["service", "level"])
    assert response.status_code == 400
    assert response.json() == {"error": "invalid alert: expected a JSON object, got array"}


@pytest.mark.anyio
async def test_generic_alert_below_min_level_dropped() -> None:
    payload = {**GENERIC_ALERT, "level": "info"}
    response, texts = await post_json("/alert", payload, make_config(MIN_LEVEL="warning"))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": "level info is below MIN_LEVEL"}
    assert texts == []


@pytest.mark.anyio
async def test_generic_alert_at_min_level_sent() -> None:
    payload = {**GENERIC_ALERT, "level": "error"}
    _, texts = await post_json("/alert", payload, make_config(MIN_LEVEL="error"))
    assert texts[0].splitlines()[0] == "🟠 告警 | 错误"


@pytest.mark.anyio
async def test_generic_alert_truncated() -> None:
    payload = {**GENERIC_ALERT, "message": "x" * 5000}
    _, texts = await post_json("/alert", payload, make_config(MAX_MESSAGE_LENGTH=200))
    assert len(texts[0]) == 200
    assert texts[0].endswith("x…")


# ---------------------------------------------------------------------------
# Authentication (the same verifier guards all three endpoints)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/alert", "/alertmanager", "/grafana"])
async def test_missing_token_is_401(path: str) -> None:
    response, texts = await post_json(path, GENERIC_ALERT, headers={})
    assert response.status_code == 401
    assert texts == []


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/alert", "/alertmanager", "/grafana"])
async def test_wrong_token_is_401(path: str) -> None:
    response, texts = await post_json(
        path, ALERTMANAGER, headers={"Authorization": "Bearer not-the-token"}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "invalid token"}
    assert texts == []


@pytest.mark.anyio
async def test_basic_auth_scheme_is_401() -> None:
    response, _ = await post_json(
        "/alert", GENERIC_ALERT, headers={"Authorization": f"Basic {TOKEN}"}
    )
    assert response.status_code == 401


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/alert", "/alertmanager", "/grafana"])
async def test_empty_token_setting_fails_closed(path: str) -> None:
    response, texts = await post_json(
        path, GENERIC_ALERT, make_config(API_TOKEN=""), headers={"Authorization": "Bearer "}
    )
    assert response.status_code == 503
    assert response.json() == {
        "error": "token is not configured: set plugins.monitor-alert.API_TOKEN"
    }
    assert texts == []


# ---------------------------------------------------------------------------
# POST /alertmanager


@pytest.mark.anyio
async def test_alertmanager_group_chinese() -> None:
    response, texts = await post_json("/alertmanager", ALERTMANAGER)
    assert response.json() == {"status": "success", "notified": 1}
    assert texts == [
        "🔴 告警触发 | Alertmanager\n"
        "标签：job=api\n"
        "触发中（2）：\n"
        "- 🔴 HighRequestLatency instance=api-1:8080：p99 latency is 1.8s"
        "（开始于 2024-05-01 12:00 UTC）\n"
        "- 🟡 HighRequestLatency instance=api-2:8080：p99 latency is 1.1s"
        "（开始于 2024-05-01 12:03 UTC）\n"
        "已恢复（1）：\n"
        "- ✅ HighRequestLatency instance=api-3:8080：p99 latency is 0.9s"
        "（结束于 2024-05-01 11:45 UTC）\n"
        "链接：http://alertmanager.example.org:9093"
    ]


@pytest.mark.anyio
async def test_alertmanager_group_english() -> None:
    _, texts = await post_json("/alertmanager", ALERTMANAGER, make_config(LOCALE="en"))
    assert texts == [
        "🔴 Firing | Alertmanager\n"
        "Labels: job=api\n"
        "Firing (2):\n"
        "- 🔴 HighRequestLatency instance=api-1:8080: p99 latency is 1.8s"
        " (since 2024-05-01 12:00 UTC)\n"
        "- 🟡 HighRequestLatency instance=api-2:8080: p99 latency is 1.1s"
        " (since 2024-05-01 12:03 UTC)\n"
        "Resolved (1):\n"
        "- ✅ HighRequestLatency instance=api-3:8080: p99 latency is 0.9s"
        " (ended 2024-05-01 11:45 UTC)\n"
        "Link: http://alertmanager.example.org:9093"
    ]


@pytest.mark.anyio
async def test_alertmanager_min_level_keeps_critical_only() -> None:
    _, texts = await post_json(
        "/alertmanager", ALERTMANAGER, make_config(MIN_LEVEL="critical", LOCALE="en")
    )
    assert texts == [
        "🔴 Firing | Alertmanager\n"
        "Labels: job=api\n"
        "Firing (1):\n"
        "- 🔴 HighRequestLatency instance=api-1:8080: p99 latency is 1.8s"
        " (since 2024-05-01 12:00 UTC)\n"
        "Link: http://alertmanager.example.org:9093"
    ]


@pytest.mark.anyio
async def test_alertmanager_all_below_min_level_ignored() -> None:
    payload = copy.deepcopy(ALERTMANAGER)
    payload["alerts"] = payload["alerts"][1:]
    response, texts = await post_json("/alertmanager", payload, make_config(MIN_LEVEL="error"))
    assert response.json() == {"status": "ignored", "reason": "no alert at or above MIN_LEVEL"}
    assert texts == []


@pytest.mark.anyio
async def test_alertmanager_all_resolved() -> None:
    payload = copy.deepcopy(ALERTMANAGER)
    payload["status"] = "resolved"
    payload["alerts"] = payload["alerts"][2:]
    payload["commonLabels"] = payload["alerts"][0]["labels"]
    _, texts = await post_json("/alertmanager", payload)
    assert texts == [
        "✅ 告警恢复 | Alertmanager\n"
        "标签：instance=api-3:8080, job=api\n"
        "已恢复（1）：\n"
        "- ✅ HighRequestLatency：p99 latency is 0.9s（结束于 2024-05-01 11:45 UTC）\n"
        "链接：http://alertmanager.example.org:9093"
    ]


@pytest.mark.anyio
async def test_alertmanager_unknown_severity_never_filtered() -> None:
    payload = copy.deepcopy(ALERTMANAGER)
    payload["alerts"] = [payload["alerts"][0]]
    payload["alerts"][0]["labels"]["severity"] = "sev1"
    _, texts = await post_json("/alertmanager", payload, make_config(MIN_LEVEL="critical"))
    lines = texts[0].splitlines()
    assert lines[0] == "⚠️ 告警触发 | Alertmanager"
    assert lines[3].startswith("- ⚠️ HighRequestLatency instance=api-1:8080 severity=sev1")


@pytest.mark.anyio
async def test_alertmanager_long_group_and_truncated_alerts() -> None:
    payload = copy.deepcopy(ALERTMANAGER)
    template = payload["alerts"][1]
    payload["alerts"] = []
    for number in range(12):
        alert = copy.deepcopy(template)
        alert["labels"]["instance"] = f"api-{number}:8080"
        payload["alerts"].append(alert)
    payload["truncatedAlerts"] = 5
    _, texts = await post_json("/alertmanager", payload, make_config(LOCALE="en"))
    lines = texts[0].splitlines()
    assert lines[2] == "Firing (12):"
    assert lines[13] == "…and 2 more"
    assert lines[14] == "5 more alerts were truncated by Alertmanager"


@pytest.mark.anyio
async def test_alertmanager_invalid_body_names_fields() -> None:
    payload = {"status": "firing", "alerts": [{"status": "firing", "labels": {"a": 1}}, 7]}
    response, texts = await post_json("/alertmanager", payload)
    assert response.status_code == 400
    assert response.json() == {
        "error": (
            "invalid Alertmanager notification: invalid fields: "
            "alerts[0].labels['a'] (expected a string, got number), "
            "alerts[1] (expected an object, got number)"
        )
    }
    assert texts == []


@pytest.mark.anyio
async def test_alertmanager_missing_alerts_is_400() -> None:
    response, _ = await post_json("/alertmanager", {"version": "4"})
    assert response.status_code == 400
    assert response.json() == {
        "error": ("invalid Alertmanager notification: missing required fields: alerts, status")
    }


# ---------------------------------------------------------------------------
# POST /grafana


@pytest.mark.anyio
async def test_grafana_group_chinese() -> None:
    response, texts = await post_json("/grafana", GRAFANA)
    assert response.json() == {"status": "success", "notified": 1}
    assert texts == [
        "🔴 告警触发 | Grafana\n"
        "标题：[FIRING:2]  (blue)\n"
        "标签：team=blue\n"
        "触发中（2）：\n"
        "- 🔴 High memory usage zone=us-1：This alert was triggered for zone us-1"
        " [B=44.2394, C=1]（开始于 2021-10-12 07:51 UTC）\n"
        "- 🟡 High CPU usage zone=eu-1：This alert was triggered for zone eu-1"
        " [B=44.2394, C=1]（开始于 2021-10-12 07:56 UTC）\n"
        "链接：https://play.grafana.org/"
    ]


@pytest.mark.anyio
async def test_grafana_group_english() -> None:
    _, texts = await post_json("/grafana", GRAFANA, make_config(LOCALE="en"))
    assert texts == [
        "🔴 Firing | Grafana\n"
        "Title: [FIRING:2]  (blue)\n"
        "Labels: team=blue\n"
        "Firing (2):\n"
        "- 🔴 High memory usage zone=us-1: This alert was triggered for zone us-1"
        " [B=44.2394, C=1] (since 2021-10-12 07:51 UTC)\n"
        "- 🟡 High CPU usage zone=eu-1: This alert was triggered for zone eu-1"
        " [B=44.2394, C=1] (since 2021-10-12 07:56 UTC)\n"
        "Link: https://play.grafana.org/"
    ]


@pytest.mark.anyio
async def test_grafana_accepts_put() -> None:
    body = json.dumps(GRAFANA).encode()
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await client.put(
            f"{BASE}/grafana", content=body, headers={"Content-Type": "application/json", **AUTH}
        )
        await client.drain()
    assert response.status_code == 200
    assert len(client.messages) == 1


@pytest.mark.anyio
async def test_grafana_severity_filter() -> None:
    _, texts = await post_json("/grafana", GRAFANA, make_config(MIN_LEVEL="critical"))
    lines = texts[0].splitlines()
    assert lines[3] == "触发中（1）："
    assert lines[4].startswith("- 🔴 High memory usage")


def grafana_signature(body: bytes, secret: str, timestamp: str | None = None) -> str:
    """Compute the signature as Grafana does: hex HMAC-SHA256 of [timestamp ":"] body."""
    signed = body if timestamp is None else timestamp.encode() + b":" + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


async def post_grafana_signed(
    config: dict[str, dict[str, Any]], extra_headers: dict[str, str]
) -> tuple[TestResponse, int]:
    body = json.dumps(GRAFANA).encode()
    async with WebhookTestClient([plugin], config) as client:
        response = await client.post(
            f"{BASE}/grafana",
            content=body,
            headers={"Content-Type": "application/json", **AUTH, **extra_headers},
        )
        await client.drain()
    return response, len(client.messages)


@pytest.mark.anyio
async def test_grafana_hmac_signature_accepted() -> None:
    body = json.dumps(GRAFANA).encode()
    signature = grafana_signature(body, "grafana-hmac")
    response, sent = await post_grafana_signed(
        make_config(GRAFANA_SECRET="grafana-hmac"),
        {"X-Grafana-Alerting-Signature": signature},
    )
    assert response.status_code == 200
    assert sent == 1


@pytest.mark.anyio
async def test_grafana_signature_without_secret_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {"Content-Type": "application/json", **AUTH, "X-Grafana-Alerting-Signature": "ab"}
    with caplog.at_level(logging.WARNING):
        async with WebhookTestClient([plugin], make_config()) as client:
            first = await client.post(f"{BASE}/grafana", json=GRAFANA, headers=headers)
            second = await client.post(f"{BASE}/grafana", json=GRAFANA, headers=headers)
            await client.drain()
    warnings = [
        r.getMessage() for r in caplog.records if "GRAFANA_SECRET is empty" in r.getMessage()
    ]
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(warnings) == 1
    assert "set plugins.monitor-alert.GRAFANA_SECRET" in warnings[0]


@pytest.mark.anyio
async def test_grafana_without_signature_or_secret_logs_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        response, _ = await post_grafana_signed(make_config(), {})
    assert response.status_code == 200
    assert not [r for r in caplog.records if "GRAFANA_SECRET" in r.getMessage()]


@pytest.mark.anyio
async def test_grafana_hmac_missing_signature_rejected() -> None:
    response, sent = await post_grafana_signed(make_config(GRAFANA_SECRET="grafana-hmac"), {})
    assert response.status_code == 401
    assert response.json() == {
        "error": "missing signature: expected X-Grafana-Alerting-Signature: <hex HMAC-SHA256>"
    }
    assert sent == 0


@pytest.mark.anyio
async def test_grafana_hmac_wrong_secret_rejected() -> None:
    body = json.dumps(GRAFANA).encode()
    response, sent = await post_grafana_signed(
        make_config(GRAFANA_SECRET="grafana-hmac"),
        {"X-Grafana-Alerting-Signature": grafana_signature(body, "other")},
    )
    assert response.status_code == 401
    assert sent == 0


@pytest.mark.anyio
async def test_grafana_hmac_with_timestamp_header() -> None:
    body = json.dumps(GRAFANA).encode()
    timestamp = str(int(time.time()))
    response, sent = await post_grafana_signed(
        make_config(
            GRAFANA_SECRET="grafana-hmac",
            GRAFANA_TIMESTAMP_HEADER="X-Grafana-Time",
            GRAFANA_SIGNATURE_HEADER="X-Signature",
        ),
        {
            "X-Signature": grafana_signature(body, "grafana-hmac", timestamp),
            "X-Grafana-Time": timestamp,
        },
    )
    assert response.status_code == 200, response.text
    assert sent == 1


@pytest.mark.anyio
async def test_grafana_hmac_still_needs_token() -> None:
    body = json.dumps(GRAFANA).encode()
    async with WebhookTestClient([plugin], make_config(GRAFANA_SECRET="grafana-hmac")) as client:
        response = await client.post(
            f"{BASE}/grafana",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Grafana-Alerting-Signature": grafana_signature(body, "grafana-hmac"),
            },
        )
    assert response.status_code == 401


@pytest.mark.anyio
async def test_grafana_invalid_values_is_400() -> None:
    payload = copy.deepcopy(GRAFANA)
    payload["alerts"][0]["values"] = [1, 2]
    response, texts = await post_json("/grafana", payload)
    assert response.status_code == 400
    assert response.json() == {
        "error": (
            "invalid Grafana notification: invalid fields: alerts[0].values "
            "(expected an object, got array)"
        )
    }
    assert texts == []
