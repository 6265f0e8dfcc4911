"""Splitting and truncating chat texts to a platform's maximum message length.

Lengths are counted in one of three units, because platforms count differently:
``chars`` (Unicode code points, Python's ``len``), ``utf16`` (UTF-16 code
units, as JavaScript and Java count) and ``utf8`` (bytes of the UTF-8 encoding).

Cuts fall only between user-perceived characters, so an emoji with its skin
tone, a ZWJ family, a flag or a letter with its accents is never torn apart.
``iter_clusters`` finds those boundaries with a small, conservative subset of
the extended grapheme cluster rules of Unicode UAX #29: where it is unsure, it
keeps code points together.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Literal, get_args

__all__ = ["LengthUnit", "iter_clusters", "split_text", "text_length", "truncate_text"]

LengthUnit = Literal["chars", "utf16", "utf8"]

# Prefix of each part, counted inside the limit: "(1/3) ".
PART_PREFIX = "({index}/{total}) "
# Characters of PART_PREFIX besides the two numbers.
_PREFIX_OVERHEAD = len(PART_PREFIX.format(index="", total=""))

_CR = "\r"
_LF = "\n"
_ZWJ = "\u200d"
_ZWNJ = "\u200c"

# Code point ranges (inclusive) that UAX #29 counts as Extend beyond the
# combining-mark categories: emoji skin-tone modifiers and the tag characters
# of subdivision flags such as England's.
_EMOJI_MODIFIERS = (0x1F3FB, 0x1F3FF)
_TAGS = (0xE0020, 0xE007F)
_REGIONAL_INDICATORS = (0x1F1E6, 0x1F1FF)
# Hangul conjoining jamo: leading consonants (L), vowels (V) and trailing
# consonants (T), in the basic and the extended blocks.
_HANGUL_L = ((0x1100, 0x115F), (0xA960, 0xA97C))
_HANGUL_V_T = ((0x1160, 0x11FF), (0xD7B0, 0xD7FB))
_HANGUL_SYLLABLES = (0xAC00, 0xD7A3)
# Letters that UAX #29 treats as marks: Thai and Lao SARA AM (SpacingMark) and
# the halfwidth katakana sound marks (Extend).
_MARK_LETTERS = frozenset("\u0e33\u0eb3\uff9e\uff9f")
# Prepend characters (Arabic number signs, some Brahmic vowel signs), which
# attach to the character after them (UAX #29 rule GB9b).
_PREPEND = frozenset(
    "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\u0d4e"
    "\U000110bd\U000110cd\U000111c2\U000111c3\U0001193f\U00011941\U00011a84"
    "\U00011a85\U00011a86\U00011a87\U00011a88\U00011a89\U00011d46"
)
# Viramas that link two consonants into one conjunct in Devanagari, Bengali,
# Gujarati, Oriya, Telugu and Malayalam (UAX #29 rule GB9c).
_LINKERS = frozenset("\u094d\u09cd\u0acd\u0b4d\u0c4d\u0d4d")
_HIGH_SURROGATES = (0xD800, 0xDBFF)
_LOW_SURROGATES = (0xDC00, 0xDFFF)

_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})
# Cc covers CR, LF, tab and the C0/C1 controls; Zl and Zp are U+2028 and U+2029.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def text_length(text: str, unit: LengthUnit = "chars") -> int:
    """Return the length of ``text`` in ``unit``.

    Lone surrogates count as one UTF-16 unit or three UTF-8 bytes, as the
    ``surrogatepass`` error handler encodes them.
    """
    _check_unit(unit)
    if unit == "chars":
        return len(text)
    return sum(_char_length(char, unit) for char in text)


def iter_clusters(text: str) -> Iterator[str]:
    """Yield the user-perceived characters of ``text`` in order; they join back to ``text``.

    A cluster is a character with the combining marks, variation selectors,
    skin-tone modifiers, tag characters and ZWJ/ZWNJ after it. The character
    after a ZWJ, a prepend character or an Indic virama joins it too. Pairs of
    regional indicators (flags), Hangul jamo sequences, CR LF and a UTF-16
    surrogate pair left in a ``str`` are clusters. Other control characters and
    line separators stand alone.

    Every boundary found here is also an extended grapheme cluster boundary.
    Some of those are missed (after a ZWJ that follows no emoji, for example),
    which only makes parts a little shorter.
    """
    start = 0
    # Regional indicators in a row so far, to pair them into flags.
    regional_count = 0
    # Whether a virama came since the last letter, with only marks after it.
    linked = False
    for index, char in enumerate(text):
        if index and not _joins(text[index - 1], char, regional_count, linked):
            yield text[start:index]
            start = index
        regional_count = regional_count + 1 if _is_regional(char) else 0
        linked = char in _LINKERS or (linked and _is_extend(char))
    if text:
        yield text[start:]


def split_text(text: str, limit: int, *, unit: LengthUnit = "chars") -> list[str]:
    """Split ``text`` into numbered parts of at most ``limit`` (in ``unit``) each.

    A text within the limit, or any text when ``limit <= 0``, comes back as the
    only part, unchanged. Longer texts are cut after line breaks, and each part
    starts with a prefix such as ``(1/3) `` that counts towards the limit. A line
    longer than a part is cut after its last whitespace in the second half of
    the part, or else at the last cluster boundary (see ``iter_clusters``).
    Removing the prefixes and joining the parts gives back ``text``.

    Raises ``ValueError`` when ``limit`` leaves no room for text after the prefix.
    """
    _check_unit(unit)
    if limit <= 0 or text_length(text, unit) <= limit:
        return [text]

    digits = 1
    while True:
        space = limit - (_PREFIX_OVERHEAD + 2 * digits)
        bodies = _pack_lines(text, space, unit, limit)
        if len(str(len(bodies))) <= digits:
            break
        # More parts than the prefix width allowed for: redo with wider numbers.
        digits += 1

    total = len(bodies)
    return [
        PART_PREFIX.format(index=index, total=total) + body
        for index, body in enumerate(bodies, start=1)
    ]


def truncate_text(text: str, limit: int, marker: str = "…", *, unit: LengthUnit = "chars") -> str:
    """Cut ``text`` to at most ``limit`` (in ``unit``) with ``marker`` at the end.

    The cut falls between clusters (see ``iter_clusters``) and the marker counts
    towards the limit. A text within the limit, or any text when ``limit <= 0``,
    is returned unchanged. Raises ``ValueError`` when the marker alone is longer
    than the limit.
    """
    _check_unit(unit)
    if limit <= 0 or text_length(text, unit) <= limit:
        return text

    room = limit - text_length(marker, unit)
    if room < 0:
        msg = f"truncation marker {marker!r} is longer than the limit of {limit} {unit}"
        raise ValueError(msg)

    head_clusters: list[str] = []
    used = 0
    for cluster in iter_clusters(text):
        size = text_length(cluster, unit)
        if used + size > room:
            break
        head_clusters.append(cluster)
        used += size
    return "".join(head_clusters) + marker


def _check_unit(unit: str) -> None:
    if unit not in get_args(LengthUnit):
        msg = f"invalid length unit {unit!r}: expected 'chars', 'utf16' or 'utf8'"
        raise ValueError(msg)


def _char_length(char: str, unit: LengthUnit) -> int:
    code = ord(char)
    if unit == "utf16":
        return 2 if code > 0xFFFF else 1
    if unit == "utf8":
        if code < 0x80:
            return 1
        if code < 0x800:
            return 2
        return 3 if code < 0x10000 else 4
    return 1


def _in_range(char: str, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= ord(char) <= bounds[1]


def _is_regional(char: str) -> bool:
    return _in_range(char, _REGIONAL_INDICATORS)


def _is_hangul(char: str) -> bool:
    bounds = (*_HANGUL_L, *_HANGUL_V_T, _HANGUL_SYLLABLES)
    return any(_in_range(char, pair) for pair in bounds)


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL_CATEGORIES


def _is_extend(char: str) -> bool:
    """Return whether ``char`` attaches to the character before it (UAX #29 Extend)."""
    if char in (_ZWJ, _ZWNJ) or char in _MARK_LETTERS:
        return True
    if unicodedata.category(char) in _MARK_CATEGORIES:
        # Mn also covers the variation selectors U+FE00..FE0F and U+E0100..E01EF.
        return True
    return _in_range(char, _EMOJI_MODIFIERS) or _in_range(char, _TAGS)


def _joins(previous: str, char: str, regional_count: int, linked: bool) -> bool:
    """Return whether no cluster boundary lies between ``previous`` and ``char``."""
    if previous == _CR and char == _LF:
        return True
    if _is_control(previous) or _is_control(char):
        return False
    if previous == _ZWJ or previous in _PREPEND or _is_extend(char):
        return True
    if linked and unicodedata.category(char) == "Lo":
        return True
    if _is_regional(char) and _is_regional(previous):
        # Flags are pairs: a third indicator starts the next flag.
        return regional_count % 2 == 1
    if any(_in_range(char, bounds) for bounds in _HANGUL_V_T):
        return _is_hangul(previous)
    if _in_range(char, _HANGUL_SYLLABLES) or any(_in_range(char, b) for b in _HANGUL_L):
        return any(_in_range(previous, bounds) for bounds in _HANGUL_L)
    return _in_range(previous, _HIGH_SURROGATES) and _in_range(char, _LOW_SURROGATES)


def _pack_lines(text: str, space: int, unit: LengthUnit, limit: int) -> list[str]:
    """Fill parts of at most ``space`` with whole lines, cutting only lines that do not fit."""
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        size = text_length(line, unit)
        if used + size <= space:
            current.append(line)
            used += size
            continue

        if current:
            parts.append("".join(current))
        if size <= space:
            current, used = [line], size
            continue

        pieces = _split_line(line, space, unit, limit)
        parts.extend(pieces[:-1])
        current, used = [pieces[-1]], text_length(pieces[-1], unit)

    if current:
        parts.append("".join(current))
    return parts


def _split_line(line: str, space: int, unit: LengthUnit, limit: int) -> list[str]:
    """Cut one line longer than ``space`` into pieces of at most ``space``."""
    pieces: list[str] = []
    piece: list[str] = []
    used = 0
    # Number of clusters in ``piece`` up to and including its last whitespace.
    last_break = 0
    for cluster in iter_clusters(line):
        size = text_length(cluster, unit)
        if size > space:
            if piece:
                pieces.append("".join(piece))
            *whole, rest = _split_cluster(cluster, space, unit, limit)
            pieces.extend(whole)
            piece, used, last_break = [rest], text_length(rest, unit), 0
            continue

        if used + size > space:
            tail = piece[last_break:] if last_break else []
            tail_size = text_length("".join(tail), unit)
            if tail_size > space // 2:
                # The whitespace is too far back: a short piece would waste a part.
                tail, tail_size = [], 0
            pieces.append("".join(piece[: len(piece) - len(tail)]))
            piece, used, last_break = tail, tail_size, 0
            if used + size > space:
                pieces.append("".join(piece))
                piece, used = [], 0

        piece.append(cluster)
        used += size
        if cluster.isspace():
            last_break = len(piece)

    pieces.append("".join(piece))
    return pieces


def _split_cluster(cluster: str, space: int, unit: LengthUnit, limit: int) -> list[str]:
    """Cut a cluster longer than a whole part between its code points.

    NOTE: this is the one place where a user-perceived character is torn
    apart; it happens only for clusters longer than a part, such as a letter
    with hundreds of stacked combining marks.
    """
    pieces: list[str] = []
    piece = ""
    used = 0
    for char in cluster:
        size = _char_length(char, unit)
        if size > space:
            msg = (
                f"limit of {limit} {unit} leaves no room for text after the part "
                f"prefix; raise the limit to at least {limit - space + size}"
            )
            raise ValueError(msg)
        if used + size > space:
            pieces.append(piece)
            piece, used = "", 0
        piece += char
        used += size
    pieces.append(piece)
    return pieces
