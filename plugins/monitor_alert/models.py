"""Alert payloads accepted by the monitor-alert plugin, structured with cattrs.

* ``GenericAlert``: the plugin's own JSON format for scripts and small monitors.
* ``AlertmanagerNotification``: Prometheus Alertmanager's webhook body
  (``version: "4"``), one notification per alert group.
* ``GrafanaNotification``: Grafana alerting's webhook contact point body, the
  Alertmanager fields plus ``title``, ``state``, ``message`` and per-alert ``values``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .._payload import make_strict_converter, register_object

__all__ = [
    "AlertmanagerAlert",
    "AlertmanagerNotification",
    "GenericAlert",
    "GrafanaAlert",
    "GrafanaNotification",
    "converter",
]


@attrs.frozen
class GenericAlert:
    """``POST /alert``: one alert from a script or a small monitor.

    ``timestamp`` is Unix seconds or ISO 8601 text (the receipt time when
    absent); ``metrics`` values are shown as sent.
    """

    service: str
    level: str
    message: str = ""
    timestamp: datetime | None = None
    metrics: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class AlertmanagerAlert:
    """One alert of an Alertmanager or Grafana notification.

    ``ends_at`` of a firing alert is in the future or the zero time
    ``0001-01-01T00:00:00Z``; the formatter shows it only for resolved alerts.
    """

    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = attrs.Factory(dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = ""
    fingerprint: str = ""


@attrs.frozen
class AlertmanagerNotification:
    """Alertmanager's webhook body: the alerts of one group and what they share.

    ``truncated_alerts`` counts the alerts left out by the receiver's
    ``max_alerts`` setting.
    """

    status: str
    alerts: list[AlertmanagerAlert]
    version: str = ""
    receiver: str = ""
    group_key: str = ""
    group_labels: dict[str, str] = attrs.Factory(dict)
    common_labels: dict[str, str] = attrs.Factory(dict)
    common_annotations: dict[str, str] = attrs.Factory(dict)
    external_url: str = ""
    truncated_alerts: int = 0


@attrs.frozen
class GrafanaAlert(AlertmanagerAlert):
    """One Grafana alert: ``values`` maps query refIds (``B``) to the values that fired."""

    values: dict[str, Any] | None = None
    silence_url: str = ""


@attrs.frozen
class GrafanaNotification:
    """Grafana's webhook body; ``title``, ``state`` and ``message`` are Grafana's own texts."""

    status: str
    alerts: list[GrafanaAlert]
    version: str = ""
    receiver: str = ""
    org_id: int = 0
    group_key: str = ""
    group_labels: dict[str, str] = attrs.Factory(dict)
    common_labels: dict[str, str] = attrs.Factory(dict)
    common_annotations: dict[str, str] = attrs.Factory(dict)
    external_url: str = ""
    truncated_alerts: int = 0
    title: str = ""
    state: str = ""
    message: str = ""


# JSON names of the fields whose Python names differ.
_JSON_NAMES = {
    "starts_at": "startsAt",
    "ends_at": "endsAt",
    "generator_url": "generatorURL",
    "silence_url": "silenceURL",
    "group_key": "groupKey",
    "group_labels": "groupLabels",
    "common_labels": "commonLabels",
    "common_annotations": "commonAnnotations",
    "external_url": "externalURL",
    "truncated_alerts": "truncatedAlerts",
    "org_id": "orgId",
}

converter = make_strict_converter()
for _cls in (
    GenericAlert,
    AlertmanagerAlert,
    AlertmanagerNotification,
    GrafanaAlert,
    GrafanaNotification,
):
    _names = {
        field.name: _JSON_NAMES[field.name]
        for field in attrs.fields(_cls)
        if field.name in _JSON_NAMES
    }
    register_object(converter, _cls, _names)
