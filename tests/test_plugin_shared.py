"""Tests of the helpers shared by the bundled plugins: text, catalogues, payload errors."""

from __future__ import annotations

import attrs
import pytest

from core.errors import BadRequest
from plugins._i18n import Catalogue, resolve_locale
from plugins._payload import make_strict_converter, register_object, structure_body
from plugins._text import excerpt, first_line, format_size, parse_chat_keys, truncate_message


def test_truncate_keeps_emoji_whole() -> None:
    # U+1F5D1 and the variation selector U+FE0F form one visible character.
    text = "ab🗑️cd"
    assert truncate_message(text, 4) == "ab…"


def test_truncate_keeps_accent_with_letter() -> None:
    assert truncate_message("cafe\u0301 noir", 5) == "caf…"


def test_truncate_result_within_limit() -> None:
    cut = truncate_message("告警" * 100, 50)
    assert len(cut) == 50
    assert cut.endswith("…")


def test_truncate_short_text_unchanged() -> None:
    assert truncate_message("short", 10) == "short"


def test_truncate_zero_limit_disables() -> None:
    assert truncate_message("x" * 5000, 0) == "x" * 5000


def test_first_line_skips_blank_lines() -> None:
    assert first_line("\n  \n  Fix bug  \nbody") == "Fix bug"


def test_excerpt_joins_lines() -> None:
    assert excerpt("a\n\nb   c", 100) == "a b c"


def test_parse_chat_keys_drops_blanks_and_repeats() -> None:
    assert parse_chat_keys(" console-a, ,console-b,console-a ") == ["console-a", "console-b"]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (1536, "1.5 KB"),
        (12_300_000, "12.3 MB"),
        (5 * 10**12, "5.0 TB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_catalogue_rejects_missing_key() -> None:
    with pytest.raises(ValueError, match="differs from zh_CN in keys"):
        Catalogue({"zh_CN": {"a": "甲", "b": "乙"}, "en": {"a": "A"}})


def test_catalogue_rejects_other_fields() -> None:
    with pytest.raises(ValueError, match="uses other fields"):
        Catalogue({"zh_CN": {"a": "{name}"}, "en": {"a": "{nme}"}})


def test_catalogue_fills_fields() -> None:
    catalogue = Catalogue({"zh_CN": {"a": "你好 {name}"}, "en": {"a": "Hello {name}"}})
    assert catalogue.text("en", "a", name="Ada") == "Hello Ada"


def test_unknown_locale_resolves_to_chinese() -> None:
    assert resolve_locale("de_DE", "test") == "zh_CN"


def test_english_locale_resolves() -> None:
    assert resolve_locale("en", "test") == "en"


@attrs.frozen
class Sample:
    name: str
    count: int = 0
    tags: list[str] = attrs.Factory(list)


def test_structure_body_names_every_problem() -> None:
    converter = make_strict_converter()
    register_object(converter, Sample)
    with pytest.raises(BadRequest) as caught:
        structure_body(converter, {"count": True, "tags": "x"}, Sample, "sample")
    assert caught.value.message == (
        "invalid sample: missing required fields: name; invalid fields: "
        "count (expected an integer, got boolean), tags (expected an array, got string)"
    )


def test_structure_body_accepts_valid_object() -> None:
    converter = make_strict_converter()
    register_object(converter, Sample)
    sample = structure_body(converter, {"name": "a", "tags": ["x"], "extra": 1}, Sample, "sample")
    assert sample == Sample("a", 0, ["x"])
