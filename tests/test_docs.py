"""Every code block of the plugin guides runs, in order, as the guide shows it."""

from __future__ import annotations

import ast
import inspect
import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDES = ["plugin-guide.md", "plugin-guide.zh-CN.md"]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(name: str, language: str) -> list[tuple[int, str]]:
    """Return ``(line number, source)`` of each fenced block in ``language``."""
    text = (DOCS / name).read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start()) + 2, match.group(2))
        for match in BLOCK.finditer(text)
        if match.group(1) == language
    ]


@pytest.mark.parametrize("guide", GUIDES)
async def test_python_blocks_run_in_order(guide: str) -> None:
    blocks = code_blocks(guide, "python")
    namespace: dict[str, object] = {"__name__": "plugin_guide"}
    for line, source in blocks:
        code = compile(source, f"{guide}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            await result
    assert len(blocks) >= 5


@pytest.mark.parametrize("guide", GUIDES)
def test_toml_blocks_parse(guide: str) -> None:
    for _, source in code_blocks(guide, "toml"):
        assert isinstance(tomllib.loads(source), dict)


def test_guides_have_the_same_code() -> None:
    english = [source for _, source in code_blocks(GUIDES[0], "python")]
    chinese = [source for _, source in code_blocks(GUIDES[1], "python")]
    assert len(english) == len(chinese)
