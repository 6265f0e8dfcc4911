"""Chat texts for alerts: pure functions of the structured payload and display settings."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

import attrs

from .._i18n import Locale
from .._text import excerpt
from .levels import ICONS, RESOLVED_ICON, UNKNOWN_ICON, Level, parse_level
from .messages import CATALOGUE
from .models import (
    AlertmanagerAlert,
    AlertmanagerNotification,
    GenericAlert,
    GrafanaAlert,
    GrafanaNotification,
)

__all__ = [
    "ALERTS_PER_SECTION",
    "Display",
    "alert_level",
    "format_alert_group",
    "format_generic_alert",
    "format_value",
]

# Alerts listed per section (firing, resolved) before "and N more": a storm
# of alerts should not become a wall of text in a chat.
ALERTS_PER_SECTION = 10
# Summaries are quoted up to this many characters, on one line.
SUMMARY_LIMIT = 200
# Labels that the message shows in other ways: as the alert's name and its icon.
_SHOWN_LABELS = frozenset({"alertname", "severity"})
# Annotations that hold the human-readable text of an alert, in order of preference.
_SUMMARY_ANNOTATIONS = ("summary", "description", "message")
# Alertmanager and Grafana send this "zero" time as endsAt of a firing alert.
_ZERO_TIME_YEAR = 1


@attrs.frozen
class Display:
    """How to render alerts: locale, time zone (and its name for the text), level filter."""

    locale: Locale = "zh_CN"
    timezone: tzinfo = UTC
    timezone_name: str = "UTC"
    min_level: Level = Level.INFO

    def text(self, key: str, /, **fields: object) -> str:
        """Return the catalogue text ``key`` in this locale."""
        return CATALOGUE.text(self.locale, key, **fields)

    def time(self, value: datetime, *, seconds: bool = False) -> str:
        """Return ``value`` in the display time zone, followed by the zone's name."""
        layout = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        return f"{value.astimezone(self.timezone).strftime(layout)} {self.timezone_name}"


def format_value(value: Any) -> str:
    """Return a metric or query value as text: ``44.2394``, ``true``, ``null``, JSON for objects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int | str):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def format_generic_alert(
    alert: GenericAlert, level: Level, received_at: datetime, display: Display
) -> str:
    """Return the text for a ``POST /alert`` body; ``received_at`` replaces a missing timestamp."""
    lines = [
        display.text(
            "alert_title", icon=ICONS[level], level=display.text(f"level_{level.name.lower()}")
        ),
        display.text("service_line", service=alert.service),
        display.text("time_line", time=display.time(alert.timestamp or received_at, seconds=True)),
        display.text("details_line", text=alert.message.strip() or display.text("no_details")),
    ]
    if alert.metrics:
        lines.append(display.text("metrics_header"))
        for name, value in alert.metrics.items():
            lines.append(display.text("metric_item", name=name, value=format_value(value)))
    return "\n".join(lines)


def alert_level(alert: AlertmanagerAlert) -> Level | None:
    """Return the level named by the alert's ``severity`` label, None when absent or unknown."""
    return parse_level(alert.labels.get("severity"))


def _level_icon(level: Level | None) -> str:
    return ICONS[level] if level is not None else UNKNOWN_ICON


def _shown(alert: AlertmanagerAlert, min_level: Level) -> bool:
    # An alert without a known severity cannot be ranked, so it is never hidden.
    level = alert_level(alert)
    return level is None or level >= min_level


def _labels_text(labels: Mapping[str, str], separator: str) -> str:
    return separator.join(f"{key}={labels[key]}" for key in sorted(labels))


def _summary(alert: AlertmanagerAlert) -> str:
    for name in _SUMMARY_ANNOTATIONS:
        text = alert.annotations.get(name, "").strip()
        if text:
            return excerpt(text, SUMMARY_LIMIT)
    return ""


def _is_set(value: datetime | None) -> bool:
    return value is not None and value.year > _ZERO_TIME_YEAR


def _alert_item(
    alert: AlertmanagerAlert, common_labels: Mapping[str, str], firing: bool, display: Display
) -> str:
    level = alert_level(alert)
    icon = _level_icon(level) if firing else RESOLVED_ICON
    name = alert.labels.get("alertname") or display.text("unknown")

    # The icon stands for a known severity; an unknown one is shown as a label.
    hidden = _SHOWN_LABELS if level is not None else _SHOWN_LABELS - {"severity"}
    own_labels = {
        key: value
        for key, value in alert.labels.items()
        if key not in hidden and common_labels.get(key) != value
    }
    details = "".join(f" {key}={own_labels[key]}" for key in sorted(own_labels))
    summary = _summary(alert)
    if summary:
        details += display.text("summary_part", text=summary)
    values = alert.values if isinstance(alert, GrafanaAlert) else None
    if values:
        pairs = ", ".join(f"{key}={format_value(value)}" for key, value in values.items())
        details += display.text("values_part", values=pairs)
    if firing and _is_set(alert.starts_at):
        assert alert.starts_at is not None
        details += display.text("since_part", time=display.time(alert.starts_at))
    if not firing and _is_set(alert.ends_at):
        assert alert.ends_at is not None
        details += display.text("ended_part", time=display.time(alert.ends_at))
    return display.text("alert_item", icon=icon, name=name, details=details)


def _section(
    header: str,
    alerts: Sequence[AlertmanagerAlert],
    common_labels: Mapping[str, str],
    firing: bool,
    display: Display,
) -> list[str]:
    if not alerts:
        return []
    lines = [display.text(header, count=len(alerts))]
    for alert in alerts[:ALERTS_PER_SECTION]:
        lines.append(_alert_item(alert, common_labels, firing, display))
    if len(alerts) > ALERTS_PER_SECTION:
        lines.append(display.text("more_alerts", count=len(alerts) - ALERTS_PER_SECTION))
    return lines


def _title(firing: Sequence[AlertmanagerAlert], source: str, display: Display) -> str:
    if not firing:
        return display.text("resolved_title", icon=RESOLVED_ICON, source=source)
    levels = [level for level in map(alert_level, firing) if level is not None]
    icon = _level_icon(max(levels) if levels else None)
    return display.text("firing_title", icon=icon, source=source)


def format_alert_group(
    notification: AlertmanagerNotification | GrafanaNotification, source: str, display: Display
) -> str | None:
    """Return one text for a notification's alert group, or None when ``MIN_LEVEL`` hides all.

    Firing alerts are listed before resolved ones, each with its severity icon,
    the labels that set it apart from the group, its summary and since when it
    fires (or when it ended). ``source`` names the sender in the title.
    """
    kept = [alert for alert in notification.alerts if _shown(alert, display.min_level)]
    firing = [alert for alert in kept if alert.status != "resolved"]
    resolved = [alert for alert in kept if alert.status == "resolved"]
    if not kept:
        return None

    lines = [_title(firing, source, display)]
    title = notification.title.strip() if isinstance(notification, GrafanaNotification) else ""
    if title:
        lines.append(display.text("title_line", title=title))
    common_labels = notification.common_labels
    known_severity = parse_level(common_labels.get("severity")) is not None
    hidden = _SHOWN_LABELS if known_severity else _SHOWN_LABELS - {"severity"}
    common = {key: value for key, value in common_labels.items() if key not in hidden}
    if common:
        lines.append(display.text("labels_line", labels=_labels_text(common, ", ")))
    lines += _section("firing_header", firing, notification.common_labels, True, display)
    lines += _section("resolved_header", resolved, notification.common_labels, False, display)
    if notification.truncated_alerts > 0:
        lines.append(
            display.text("truncated_line", count=notification.truncated_alerts, source=source)
        )
    if notification.external_url:
        lines.append(display.text("link_line", url=notification.external_url))
    return "\n".join(lines)
