"""Sender-controlled text made safe to print on a terminal."""

from __future__ import annotations

import re

__all__ = ["terminal_safe"]

# C0 and C1 control characters and DEL can move the cursor, recolour, retitle
# or clear the terminal that prints them. The bidirectional embeddings,
# overrides and isolates reorder how the rest of the line is shown.
_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
# The same without tab and newline.
_UNSAFE_IN_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str, *, keep_lines: bool = False) -> str:
    """Return ``text`` with control characters written as escapes such as ``\\x1b``.

    Bidirectional controls are escaped too (``\\u202e``). With ``keep_lines``,
    newlines and tabs stay as they are, for text printed over several lines.
    """
    pattern = _UNSAFE_IN_LINES if keep_lines else _UNSAFE
    return pattern.sub(_escape, text)
