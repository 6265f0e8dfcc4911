"""Text helpers shared by the bundled plugins: truncation, excerpts, chat-key lists."""

from __future__ import annotations

from core.splitting import truncate_text

__all__ = [
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "TRUNCATION_MARKER",
    "excerpt",
    "first_line",
    "format_size",
    "parse_chat_keys",
    "truncate_message",
]

# Long enough for a push with three commits and a link while a message stays
# about one screen of a chat window: a readability choice, not a platform limit.
DEFAULT_MAX_MESSAGE_LENGTH = 1500
TRUNCATION_MARKER = "…"


def truncate_message(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, ending in ``…``; ``limit <= 0`` keeps it whole.

    The cut never splits an emoji or a letter from its accents. A limit too
    small for the marker is raised to fit it.
    """
    if limit <= 0:
        return text
    return truncate_text(text, max(limit, len(TRUNCATION_MARKER)), TRUNCATION_MARKER)


def first_line(text: str) -> str:
    """Return the first non-blank line of ``text``, stripped; empty when there is none."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def excerpt(text: str, limit: int) -> str:
    """Return ``text`` on one line (whitespace runs become one space), cut to ``limit``."""
    return truncate_message(" ".join(text.split()), limit)


def parse_chat_keys(value: str) -> list[str]:
    """Split a comma-separated list of chat keys, dropping blanks and repeats, keeping order."""
    keys: list[str] = []
    for part in value.split(","):
        key = part.strip()
        if key and key not in keys:
            keys.append(key)
    return keys


def format_size(size: int) -> str:
    """Return a byte count for people: ``512 B``, ``1.5 KB``, ``12.3 MB`` (SI units)."""
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
