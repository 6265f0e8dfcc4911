"""Upload file names: rejecting paths, sanitising the rest, and picking a free name."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import PurePosixPath

__all__ = [
    "MAX_NAME_BYTES",
    "InvalidName",
    "candidate_names",
    "check_chat_directory",
    "sanitize_filename",
]

# ext4 and most Linux file systems allow 255 bytes per name (NAME_MAX); the
# rest is kept free for a collision suffix such as " (12)".
MAX_NAME_BYTES = 240
# Names that collide get " (1)" … " (MAX_COLLISION_SUFFIX)" before the extension.
MAX_COLLISION_SUFFIX = 9999

# Characters that Windows, shells or URLs treat specially; replaced by "_".
_UNSAFE = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
_CHAT_DIRECTORY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class InvalidName(ValueError):
    """Raised for a file name or chat key that cannot be stored; the message gives the reason."""


def sanitize_filename(name: str) -> str:
    """Return a safe file name for ``name`` or raise ``InvalidName``.

    Names that are paths (with ``/`` or ``\\``, absolute ones included),
    ``.``/``..`` and empty names are rejected rather than repaired, because the
    sender meant something this endpoint does not do. Otherwise the name is
    normalised to NFC, control and shell-special characters become ``_``,
    leading dots (hidden files) and trailing dots and spaces are dropped, and
    it is cut to ``MAX_NAME_BYTES`` bytes of UTF-8, keeping the extension.
    """
    if not name.strip():
        msg = "the file name is empty"
        raise InvalidName(msg)
    if "/" in name or "\\" in name:
        msg = f"the file name {name!r} is a path; send the name alone, without directories"
        raise InvalidName(msg)
    if name.strip() in (".", ".."):
        msg = f"the file name {name!r} is not a file name"
        raise InvalidName(msg)

    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name))
    cleaned = cleaned.strip().lstrip(".").rstrip(". ")
    if not cleaned:
        msg = f"the file name {name!r} has no usable characters"
        raise InvalidName(msg)
    return _shorten(cleaned)


def _shorten(name: str) -> str:
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    path = PurePosixPath(name)
    suffix = path.suffix if len(path.suffix.encode()) < MAX_NAME_BYTES // 2 else ""
    stem = name[: len(name) - len(suffix)]
    room = MAX_NAME_BYTES - len(suffix.encode())
    # Cut on a character boundary: drop trailing bytes of a split character.
    cut = stem.encode()[:room].decode(errors="ignore")
    return cut.rstrip(". ") + suffix


def candidate_names(name: str) -> Iterator[str]:
    """Yield ``name``, then ``stem (1).ext``, ``stem (2).ext``, … to try in order."""
    suffix = PurePosixPath(name).suffix
    stem = name[: len(name) - len(suffix)]
    yield name
    for number in range(1, MAX_COLLISION_SUFFIX + 1):
        yield f"{stem} ({number}){suffix}"


def check_chat_directory(chat_key: str) -> str:
    """Return ``chat_key`` if it is usable as a directory name, else raise ``InvalidName``."""
    if not _CHAT_DIRECTORY.fullmatch(chat_key):
        msg = (
            f"chat key {chat_key!r} cannot name an upload directory: use letters, digits, "
            "'_', '-' and '.', as in onebot_v11-group_123456"
        )
        raise InvalidName(msg)
    return chat_key
