"""Tests of splitting and truncating texts to a platform's maximum message length."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.splitting import LengthUnit, iter_clusters, split_text, text_length, truncate_text

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # ZWJ sequence: 7 code points, 11 UTF-16 units
THUMBS_UP_DARK = "👍🏽"  # emoji + skin-tone modifier
FLAG_CN = "🇨🇳"  # regional-indicator pair
KEYCAP_ONE = "1\ufe0f\u20e3"  # digit + variation selector + enclosing keycap
E_ACUTE = "e\u0301"  # letter + combining acute accent
RAINBOW_FLAG = "🏳\ufe0f\u200d🌈"  # variation selector inside a ZWJ sequence
ENGLAND = "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"  # tag sequence
HANGUL_JAMO = "\u1100\u1161\u11a8"  # L + V + T conjoining jamo

# The third-party ``regex`` package matches extended grapheme clusters with
# ``\X``; it is an independent check when installed, not a dependency.
grapheme_regex: ModuleType | None
try:
    grapheme_regex = importlib.import_module("regex")
except ImportError:  # pragma: no cover - depends on the environment
    grapheme_regex = None

PREFIX = re.compile(r"\((\d+)/(\d+)\) ")
UNITS: list[LengthUnit] = ["chars", "utf16", "utf8"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def measure(text: str, unit: LengthUnit) -> int:
    """Measure independently of the module under test."""
    if unit == "utf16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    if unit == "utf8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text)


def strip_prefixes(parts: list[str]) -> list[str]:
    bodies = []
    for index, part in enumerate(parts, start=1):
        match = PREFIX.match(part)
        assert match is not None, f"part {index} has no prefix: {part!r}"
        assert match.groups() == (str(index), str(len(parts)))
        bodies.append(part[match.end() :])
    return bodies


def cut_offsets(bodies: list[str]) -> set[int]:
    offsets, position = set(), 0
    for body in bodies[:-1]:
        position += len(body)
        offsets.add(position)
    return offsets


def offsets_of(pieces: list[str]) -> set[int]:
    offsets, position = set(), 0
    for piece in pieces:
        position += len(piece)
        offsets.add(position)
    return offsets


def cluster_offsets(text: str) -> set[int]:
    return offsets_of(list(iter_clusters(text)))


# Clusters


@pytest.mark.parametrize(
    "cluster",
    [FAMILY, THUMBS_UP_DARK, FLAG_CN, KEYCAP_ONE, E_ACUTE, RAINBOW_FLAG, ENGLAND, HANGUL_JAMO],
    ids=["zwj", "skin-tone", "flag", "keycap", "combining", "vs16-zwj", "tags", "jamo"],
)
def test_iter_clusters_keeps_sequence(cluster: str) -> None:
    assert list(iter_clusters(f"a{cluster}b")) == ["a", cluster, "b"]


def test_iter_clusters_pairs_regional_indicators() -> None:
    assert list(iter_clusters(FLAG_CN * 3)) == [FLAG_CN] * 3


def test_iter_clusters_odd_regional_indicator() -> None:
    lone = FLAG_CN[0]
    assert list(iter_clusters(FLAG_CN + lone)) == [FLAG_CN, lone]


def test_iter_clusters_crlf_together() -> None:
    assert list(iter_clusters("a\r\nb")) == ["a", "\r\n", "b"]


def test_iter_clusters_mark_after_newline_stands_alone() -> None:
    assert list(iter_clusters("\n\u0301")) == ["\n", "\u0301"]


def test_iter_clusters_empty() -> None:
    assert list(iter_clusters("")) == []


# Lengths


@pytest.mark.parametrize(("unit", "expected"), [("chars", 8), ("utf16", 12), ("utf8", 26)])
def test_text_length_units(unit: LengthUnit, expected: int) -> None:
    assert text_length("a" + FAMILY, unit) == expected


def test_text_length_invalid_unit() -> None:
    with pytest.raises(ValueError, match="invalid length unit"):
        text_length("a", "bytes")  # type: ignore[arg-type]


# Splitting


def test_split_short_text_unchanged() -> None:
    assert split_text("hello\nworld", 11) == ["hello\nworld"]


@pytest.mark.parametrize("limit", [0, -1])
def test_split_no_limit(limit: int) -> None:
    text = "x" * 10_000
    assert split_text(text, limit) == [text]


def test_split_on_line_boundaries() -> None:
    text = "first line\nsecond line\nthird line\n"
    parts = split_text(text, 30)

    assert parts == ["(1/2) first line\nsecond line\n", "(2/2) third line\n"]


def test_split_prefix_counts_within_limit() -> None:
    text = "\n".join(f"line {n:02d}" for n in range(40))
    parts = split_text(text, 30)

    assert max(len(part) for part in parts) <= 30


def test_split_two_digit_numbering() -> None:
    parts = split_text("abcd\n" * 40, 13)

    assert len(parts) == 40
    assert parts[0] == "(1/40) abcd\n"
    assert parts[-1] == "(40/40) abcd\n"


def test_split_keeps_line_whole_when_it_fits() -> None:
    text = "short\n" + "y" * 20 + "\nend"
    bodies = strip_prefixes(split_text(text, 28))

    assert "y" * 20 + "\n" in bodies


def test_split_long_line_at_whitespace() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta"
    bodies = strip_prefixes(split_text(text, 26))

    assert bodies == ["alpha beta gamma ", "delta epsilon zeta ", "eta theta"]


def test_split_long_line_without_whitespace() -> None:
    text = "构建失败" * 10
    bodies = strip_prefixes(split_text(text, 16))

    assert all(len(body) == 10 for body in bodies)
    assert "".join(bodies) == text


def test_split_crlf_not_separated() -> None:
    text = "a" * 9 + "\r\n" + "b" * 9
    bodies = strip_prefixes(split_text(text, 16))

    assert not any(body.endswith("\r") for body in bodies)


@pytest.mark.parametrize(
    "cluster",
    [FAMILY, THUMBS_UP_DARK, FLAG_CN, KEYCAP_ONE, E_ACUTE, RAINBOW_FLAG, ENGLAND],
    ids=["zwj", "skin-tone", "flag", "keycap", "combining", "vs16-zwj", "tags"],
)
@pytest.mark.parametrize("unit", UNITS)
def test_split_never_cuts_cluster(cluster: str, unit: LengthUnit) -> None:
    text = "x" + cluster * 30
    # Every limit from "two clusters fit" up to a few more, so a boundary
    # falls at each position inside the cluster at least once.
    smallest = 8 + 2 * measure(cluster, unit)
    for limit in range(smallest, smallest + measure(cluster, unit) + 3):
        bodies = strip_prefixes(split_text(text, limit, unit=unit))
        for body in bodies:
            assert body.lstrip("x") == cluster * body.lstrip("x").count(cluster), (limit, body)


@pytest.mark.parametrize("unit", ["utf16", "utf8"])
def test_split_astral_characters_whole(unit: LengthUnit) -> None:
    text = "😀" * 25
    for limit in range(12, 24):
        parts = split_text(text, limit, unit=unit)
        assert all(measure(part, unit) <= limit for part in parts), limit
        assert "".join(strip_prefixes(parts)) == text


def test_split_utf16_counts_surrogate_pairs() -> None:
    parts = split_text("😀" * 5, 8, unit="utf16")

    assert parts == [f"({index}/5) 😀" for index in range(1, 6)]


def test_split_utf8_counts_bytes() -> None:
    parts = split_text("é" * 10, 12, unit="utf8")

    assert all(len(part.encode()) <= 12 for part in parts)


def test_split_oversized_cluster_at_code_points() -> None:
    zalgo = "a" + "\u0301" * 50
    parts = split_text(zalgo, 20)

    assert all(len(part) <= 20 for part in parts)
    assert "".join(strip_prefixes(parts)) == zalgo


def test_split_limit_too_small_raises() -> None:
    with pytest.raises(ValueError, match="leaves no room"):
        split_text("x" * 20, 6)


def test_split_invalid_unit() -> None:
    with pytest.raises(ValueError, match="invalid length unit"):
        split_text("x", 10, unit="words")  # type: ignore[arg-type]


# Truncating


def test_truncate_short_text_unchanged() -> None:
    assert truncate_text("hello", 5) == "hello"


def test_truncate_appends_marker_within_limit() -> None:
    assert truncate_text("hello world", 8) == "hello w…"


def test_truncate_never_cuts_cluster() -> None:
    assert truncate_text("ab" + FAMILY + "cd", 8) == "ab…"


def test_truncate_utf8_unit() -> None:
    result = truncate_text("日本語のテキスト", 10, unit="utf8")

    assert result == "日本…"


def test_truncate_custom_marker() -> None:
    assert truncate_text("abcdefghij", 7, marker=" [...]") == "a [...]"


def test_truncate_marker_longer_than_limit() -> None:
    with pytest.raises(ValueError, match="longer than the limit"):
        truncate_text("abcdefghij", 3, marker="[truncated]")


@pytest.mark.parametrize("limit", [0, -5])
def test_truncate_no_limit(limit: int) -> None:
    assert truncate_text("abc", limit) == "abc"


# Properties

_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        " ",
        "\n",
        "\r\n",
        "\t",
        "中",
        "é",
        E_ACUTE,
        "😀",
        FAMILY,
        THUMBS_UP_DARK,
        FLAG_CN,
        FLAG_CN[0],
        KEYCAP_ONE,
        RAINBOW_FLAG,
        ENGLAND,
        HANGUL_JAMO,
        "\u200d",
        "\ufe0f",
        "\u0301",
        "word ",
        "[CQ:at,qq=all]",
    ]
)
_TEXTS = st.one_of(
    st.lists(_PIECES, max_size=120).map("".join),
    st.text(max_size=300),
)


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, limit=st.integers(min_value=16, max_value=120), unit=st.sampled_from(UNITS))
def test_split_property_round_trip(text: str, limit: int, unit: LengthUnit) -> None:
    parts = split_text(text, limit, unit=unit)

    assert "".join(strip_prefixes(parts) if len(parts) > 1 else parts) == text


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, limit=st.integers(min_value=16, max_value=120), unit=st.sampled_from(UNITS))
def test_split_property_parts_within_limit(text: str, limit: int, unit: LengthUnit) -> None:
    parts = split_text(text, limit, unit=unit)

    assert all(measure(part, unit) <= limit for part in parts)


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, limit=st.integers(min_value=16, max_value=120), unit=st.sampled_from(UNITS))
def test_split_property_cuts_at_cluster_boundaries(text: str, limit: int, unit: LengthUnit) -> None:
    parts = split_text(text, limit, unit=unit)
    if len(parts) == 1:
        return
    bodies = strip_prefixes(parts)
    space = limit - (4 + 2 * len(str(len(parts))))
    longest_cluster = max(measure(cluster, unit) for cluster in iter_clusters(text))
    if longest_cluster > space:
        return  # a cluster longer than a part must be cut: covered by its own test

    assert cut_offsets(bodies) <= cluster_offsets(text)


@settings(max_examples=200, deadline=None)
@given(text=_TEXTS, limit=st.integers(min_value=3, max_value=80), unit=st.sampled_from(UNITS))
def test_truncate_property_within_limit(text: str, limit: int, unit: LengthUnit) -> None:
    assert measure(truncate_text(text, limit, unit=unit), unit) <= limit


@settings(max_examples=200, deadline=None)
@given(text=_TEXTS, limit=st.integers(min_value=3, max_value=80), unit=st.sampled_from(UNITS))
def test_truncate_property_cuts_at_cluster_boundary(
    text: str, limit: int, unit: LengthUnit
) -> None:
    result = truncate_text(text, limit, unit=unit)
    if result == text:
        return
    head = result.removesuffix("…")

    assert text.startswith(head)
    assert len(head) in cluster_offsets(text) | {0}


_ANY_ASSIGNED = st.characters(exclude_categories=("Cn", "Cs", "Co"))


@pytest.mark.skipif(grapheme_regex is None, reason="the regex package is not installed")
@settings(max_examples=500, deadline=None)
@given(text=st.lists(st.one_of(_PIECES, _ANY_ASSIGNED), max_size=40).map("".join))
def test_iter_clusters_boundaries_are_grapheme_boundaries(text: str) -> None:
    assert grapheme_regex is not None
    reference = grapheme_regex.findall(r"\X", text)

    assert cluster_offsets(text) <= offsets_of(reference)
