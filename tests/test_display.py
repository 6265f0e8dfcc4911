"""Sender-controlled text printed on a terminal: escapes, column widths and cuts."""

from __future__ import annotations

import io

import pytest
import wcwidth

from adapters.commands import align_columns, fit_line, table_width
from core.channels import ConsoleChannel
from core.display import terminal_safe
from core.records import OutboxMessage


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("red \x1b[31mtext", "red \\x1b[31mtext"),
        ("title \x1b]0;owned\x07", "title \\x1b]0;owned\\x07"),
        ("8-bit \x9b2J", "8-bit \\x9b2J"),
        ("del \x7f", "del \\x7f"),
        ("back\rover", "back\\x0dover"),
        ("two\nlines\tand tab", "two\\x0alines\\x09and tab"),
        ("user\u202egnp.exe", "user\\u202egnp.exe"),
        ("isolate \u2066x\u2069", "isolate \\u2066x\\u2069"),
    ],
)
def test_controls_become_escapes(text: str, shown: str) -> None:
    assert terminal_safe(text) == shown


def test_plain_chinese_and_emoji_pass_unchanged() -> None:
    text = "构建失败 ❌ 👨‍👩‍👧 café"
    assert terminal_safe(text) == text


def test_keep_lines_keeps_newline_and_tab_only() -> None:
    assert terminal_safe("a\n\tb\r\x1bc", keep_lines=True) == "a\n\tb\\x0d\\x1bc"


def test_cut_counts_wide_characters_as_two_columns() -> None:
    cut = fit_line("部署" * 30, 40)
    assert cut == "部署" * 9 + "部…"
    assert wcwidth.width(cut) == 39


def test_cut_keeps_emoji_sequences_whole() -> None:
    family = "👨‍👩‍👧"
    cut = fit_line("abcd" + family + "tail", 6)
    assert cut == "abcd…"


def test_short_text_is_not_cut() -> None:
    assert fit_line("构建", 4) == "构建"


def test_cut_never_splits_an_escape() -> None:
    assert fit_line("ab\x1bcdef", 5) == "ab…"


def test_line_breaks_show_as_return_symbol() -> None:
    assert fit_line("one\r\ntwo\nthree") == "one ⏎ two ⏎ three"


def test_columns_line_up_with_chinese_cells() -> None:
    lines = align_columns([["CHAT", "TEXT"], ["运维群", "x"], ["ops", "y"]])
    assert lines == ["CHAT    TEXT", "运维群  x", "ops     y"]


def test_table_width_is_widest_aligned_line() -> None:
    rows = [["CHAT", "TEXT"], ["运维群", "a longer text"], ["ops", "y"]]
    widest = max(wcwidth.width(line) for line in align_columns(rows))
    assert table_width(rows) == widest


@pytest.mark.anyio
async def test_console_prints_controls_as_escapes() -> None:
    stream = io.StringIO()
    message = OutboxMessage("m-1", "console-ops", "push \x1b[2J\nby 张三", 0.0)
    await ConsoleChannel(stream=stream).send(message)
    assert stream.getvalue() == "[console-ops] push \\x1b[2J\nby 张三\n"
