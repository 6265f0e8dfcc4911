"""Alert levels, their order and icons, and the severity names senders use for them."""

from __future__ import annotations

import enum

__all__ = ["ICONS", "RESOLVED_ICON", "UNKNOWN_ICON", "Level", "parse_level"]


class Level(enum.IntEnum):
    """Alert level; a higher value is more severe (critical > error > warning > info)."""

    INFO = 1
    WARNING = 2
    ERROR = 3
    CRITICAL = 4


# Severity label values seen in Prometheus rule sets and Grafana, mapped to a level.
_ALIASES = {
    "critical": Level.CRITICAL,
    "crit": Level.CRITICAL,
    "fatal": Level.CRITICAL,
    "page": Level.CRITICAL,
    "error": Level.ERROR,
    "err": Level.ERROR,
    "high": Level.ERROR,
    "major": Level.ERROR,
    "warning": Level.WARNING,
    "warn": Level.WARNING,
    "medium": Level.WARNING,
    "minor": Level.WARNING,
    "info": Level.INFO,
    "informational": Level.INFO,
    "notice": Level.INFO,
    "low": Level.INFO,
    "none": Level.INFO,
}

ICONS = {
    Level.CRITICAL: "🔴",
    Level.ERROR: "🟠",
    Level.WARNING: "🟡",
    Level.INFO: "🔵",
}
# An alert whose severity is missing or not one of the names above.
UNKNOWN_ICON = "⚠️"
RESOLVED_ICON = "✅"


def parse_level(value: str | None) -> Level | None:
    """Return the level of a severity name (case-insensitive), or None if it is unknown."""
    if value is None:
        return None
    return _ALIASES.get(value.strip().lower())
