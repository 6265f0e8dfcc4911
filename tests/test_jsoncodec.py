"""JSON bodies parse and serialise as with the standard library, through msgspec where it can."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import WebhookRequest
from core.errors import BadRequest
from core.jsoncodec import dumps, loads_utf8

pytestmark = pytest.mark.anyio

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_parse_matches_standard_library(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert loads_utf8(text.encode()) == json.loads(text)


@given(json_values)
def test_serialise_round_trips(value: Any) -> None:
    assert json.loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789012345678901234567890", 123456789012345678901234567890),
        (b"-18446744073709551617", -18446744073709551617),
        (b'{"a":1,"a":2}', {"a": 2}),
    ],
)
def test_parse_keeps_standard_library_values(data: bytes, expected: Any) -> None:
    assert loads_utf8(data) == expected


def test_parse_accepts_nan() -> None:
    assert math.isnan(loads_utf8(b"[NaN]")[0])


def test_parse_huge_number_is_infinity() -> None:
    assert loads_utf8(b"1E400") == math.inf


def test_parse_keeps_escaped_lone_surrogate() -> None:
    assert loads_utf8(b'"\\ud800"') == "\ud800"


def test_parse_error_names_position() -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        loads_utf8(b'{"a": }')
    assert info.value.pos == 6


def test_parse_rejects_invalid_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        loads_utf8(b'{"a": "\xff"}')


def test_serialise_is_compact_utf8() -> None:
    assert dumps({"text": "推送", "n": [1, 2]}) == '{"text":"推送","n":[1,2]}'.encode()


def test_serialise_bool_and_none_keys() -> None:
    assert dumps({True: 1, None: 2}) == b'{"true":1,"null":2}'


def test_serialise_rejects_unknown_type() -> None:
    with pytest.raises(TypeError):
        dumps({"value": object()})


def test_serialise_escapes_lone_surrogate() -> None:
    assert dumps({"value": "caf\u00e9 \udcff"}) == b'{"value":"caf\\u00e9 \\udcff"}'


def test_serialise_escapes_surrogate_under_odd_keys() -> None:
    assert dumps({True: "\udcff"}) == b'{"true":"\\udcff"}'


def test_serialise_writes_nan_as_null() -> None:
    assert dumps([math.nan]) == b"[null]"


async def _json_of(body: bytes, content_type: str = "application/json") -> Any:
    request = WebhookRequest("POST", "p", "/", headers={"Content-Type": content_type}, body=body)
    return await request.json()


async def test_request_json_reports_invalid_utf8_position() -> None:
    with pytest.raises(BadRequest) as info:
        await _json_of(b'{"a": "\xff"}')
    assert info.value.message == "request body is not valid utf-8: invalid byte at position 7"


async def test_request_json_reports_byte_order_mark() -> None:
    with pytest.raises(BadRequest) as info:
        await _json_of(b'\xef\xbb\xbf{"a": 1}')
    assert info.value.message.startswith("invalid JSON body: Unexpected UTF-8 BOM")


async def test_request_json_decodes_declared_charset() -> None:
    body = '{"name": "推送"}'.encode("utf-16")
    assert await _json_of(body, "application/json; charset=utf-16") == {"name": "推送"}


async def test_request_json_parses_utf8_body() -> None:
    assert await _json_of('{"name": "推送"}'.encode()) == {"name": "推送"}


@dataclasses.dataclass
class _Point:
    x: int
    y: int


def test_serialise_dataclass_datetime_and_uuid() -> None:
    value = {
        "point": _Point(1, 2),
        "at": datetime.datetime(2026, 12, 5, 8, 30),
        "id": uuid.UUID(int=1),
    }
    assert json.loads(dumps(value)) == {
        "point": {"x": 1, "y": 2},
        "at": "2026-12-05T08:30:00",
        "id": "00000000-0000-0000-0000-000000000001",
    }
