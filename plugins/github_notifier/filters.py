"""The ``EVENTS`` and ``BRANCHES`` filters of the GitHub notifier."""

from __future__ import annotations

from fnmatch import fnmatchcase

from .formatting import split_ref

__all__ = ["event_allowed", "parse_list", "ref_allowed"]


def parse_list(value: str) -> list[str]:
    """Split a comma-separated setting into its non-blank entries."""
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def event_allowed(allowed: list[str], event: str, action: str | None) -> bool:
    """Return whether ``EVENTS`` lets the delivery through; an empty list allows every event.

    An entry is an event name (``issues``) or an event and action
    (``issues.opened``), matched case-sensitively as GitHub spells them.
    """
    if not allowed:
        return True
    return event in allowed or (action is not None and f"{event}.{action}" in allowed)


def ref_allowed(patterns: list[str], ref: str | None) -> bool:
    """Return whether ``BRANCHES`` lets a push to ``ref`` through; no patterns allow every ref.

    A pattern is a shell-style glob (``main``, ``release/*``); ``*`` also
    matches ``/``. Patterns match the branch name of branch pushes. A pattern
    starting with ``refs/`` matches the full ref instead, which is the only way
    a tag push (``refs/tags/*``) passes a non-empty filter.
    """
    if not patterns:
        return True
    if ref is None:
        return False
    kind, name = split_ref(ref)
    for pattern in patterns:
        if pattern.startswith("refs/"):
            if fnmatchcase(ref, pattern):
                return True
        elif kind == "branch" and name is not None and fnmatchcase(name, pattern):
            return True
    return False
