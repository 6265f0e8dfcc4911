"""End-to-end tests of the file-upload plugin: storage, names, limits, notices."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from core.testing import TestResponse, WebhookTestClient
from plugins.file_upload import plugin
from plugins.file_upload.filenames import MAX_NAME_BYTES, InvalidName, sanitize_filename

URL = "/api/plugin/file-upload/webhook/upload"
TOKEN = "upload-token-123"
CHAT = "onebot_v11-group_123456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_config(**settings: Any) -> dict[str, dict[str, Any]]:
    values: dict[str, Any] = {"API_TOKEN": TOKEN}
    values.update(settings)
    return {"file-upload": values}


def upload_dir(data_dir: Path, chat_key: str = CHAT) -> Path:
    return data_dir / "plugins" / "file-upload" / "uploads" / chat_key


def files_named(root: Path, name: str = "*") -> list[Path]:
    return [path for path in root.rglob(name) if path.is_file()]


async def send(
    client: WebhookTestClient,
    filename: str,
    content: bytes,
    *,
    chat_key: str | None = CHAT,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    data = {} if chat_key is None else {"chat_key": chat_key}
    return await client.post(
        URL,
        data=data,
        files={"file": (filename, content, "text/plain")},
        headers=AUTH if headers is None else headers,
    )


@pytest.mark.anyio
async def test_upload_saved_with_digest(tmp_path: Path) -> None:
    content = "第一行\nsecond line\n".encode()
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await send(client, "report.txt", content)
        await client.drain()
    assert response.status_code == 200, response.text
    assert response.json() == {
        "filename": "report.txt",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    assert (upload_dir(tmp_path) / "report.txt").read_bytes() == content
    assert client.messages == []


@pytest.mark.anyio
async def test_collision_gets_suffix(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        first = await send(client, "report.txt", b"one")
        second = await send(client, "report.txt", b"two")
        third = await send(client, "report.txt", b"three")
    assert first.json()["filename"] == "report.txt"
    assert second.json()["filename"] == "report (1).txt"
    assert third.json()["filename"] == "report (2).txt"
    assert (upload_dir(tmp_path) / "report.txt").read_bytes() == b"one"
    assert (upload_dir(tmp_path) / "report (1).txt").read_bytes() == b"two"
    assert (upload_dir(tmp_path) / "report (2).txt").read_bytes() == b"three"


@pytest.mark.anyio
async def test_same_name_other_chat_no_suffix(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        await send(client, "a.txt", b"1")
        response = await send(client, "a.txt", b"2", chat_key="console-ops")
    assert response.json()["filename"] == "a.txt"
    assert (upload_dir(tmp_path, "console-ops") / "a.txt").read_bytes() == b"2"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd",
        "../outside.txt",
        "/etc/passwd",
        "dir/file.txt",
        "..",
        ".",
        "",
        "   ",
        "...",
    ],
)
async def test_unsafe_names_rejected(tmp_path: Path, filename: str) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await send(client, filename, b"data")
    assert response.status_code == 400, response.text
    assert [path for path in files_named(tmp_path) if "uploads" in path.parts] == []


@pytest.mark.anyio
async def test_traversal_name_writes_nothing_outside(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path / "data") as client:
        response = await send(client, "../../../escaped.txt", b"data")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "the file name '../../../escaped.txt' is a path; send the name alone, without directories"
    )
    assert files_named(tmp_path, "escaped.txt") == []


@pytest.mark.anyio
async def test_unsafe_chat_key_rejected(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await send(client, "a.txt", b"x", chat_key="console-../../x")
    assert response.status_code == 400
    assert "cannot name an upload directory" in response.json()["error"]


@pytest.mark.anyio
async def test_invalid_chat_key_rejected(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await send(client, "a.txt", b"x", chat_key="nodash")
    assert response.status_code == 400
    assert response.json()["error"].startswith("invalid chat key 'nodash'")


@pytest.mark.anyio
async def test_missing_chat_key_rejected(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await send(client, "a.txt", b"x", chat_key=None)
    assert response.status_code == 400
    assert "'chat_key'" in response.json()["error"]


@pytest.mark.anyio
async def test_missing_file_rejected(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await client.post(
            URL,
            data={"chat_key": CHAT, "file": "not a file"},
            files={"other": ("a.txt", b"x")},
            headers=AUTH,
        )
    assert response.status_code == 400
    assert response.json() == {"error": "form part 'file' must be a file (a part with a filename)"}


@pytest.mark.anyio
async def test_file_over_limit_is_413(tmp_path: Path) -> None:
    async with WebhookTestClient(
        [plugin], make_config(MAX_FILE_SIZE=1000), data_dir=tmp_path
    ) as client:
        response = await send(client, "big.bin", b"x" * 1001)
    assert response.status_code == 413
    assert response.json() == {
        "error": "the file is 1001 bytes, more than MAX_FILE_SIZE (1000 bytes)"
    }
    assert not upload_dir(tmp_path).exists()


@pytest.mark.anyio
async def test_file_at_limit_accepted(tmp_path: Path) -> None:
    async with WebhookTestClient(
        [plugin], make_config(MAX_FILE_SIZE=1000), data_dir=tmp_path
    ) as client:
        response = await send(client, "exact.bin", b"x" * 1000)
    assert response.status_code == 200
    assert response.json()["size"] == 1000


@pytest.mark.anyio
async def test_body_far_over_limit_rejected_early(tmp_path: Path) -> None:
    async with WebhookTestClient(
        [plugin], make_config(MAX_FILE_SIZE=1000), data_dir=tmp_path
    ) as client:
        response = await send(client, "huge.bin", b"x" * 200_000)
    assert response.status_code == 413
    assert "request body exceeds" in response.json()["error"]


@pytest.mark.anyio
async def test_missing_token_is_401(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await send(client, "a.txt", b"x", headers={})
    assert response.status_code == 401
    assert not upload_dir(tmp_path).exists()


@pytest.mark.anyio
async def test_empty_token_setting_is_503(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(API_TOKEN=""), data_dir=tmp_path) as client:
        response = await send(client, "a.txt", b"x")
    assert response.status_code == 503


@pytest.mark.anyio
async def test_notice_sent_when_enabled(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(NOTIFY=True), data_dir=tmp_path) as client:
        await send(client, "photo.jpg", b"x" * 1536)
        await client.drain()
    assert [(m.chat_key, m.text) for m in client.messages] == [
        (CHAT, "📎 收到文件：photo.jpg（1.5 KB）")
    ]


@pytest.mark.anyio
async def test_notice_english(tmp_path: Path) -> None:
    async with WebhookTestClient(
        [plugin], make_config(NOTIFY=True, LOCALE="en"), data_dir=tmp_path
    ) as client:
        await send(client, "notes.txt", b"hello")
        await client.drain()
    assert [m.text for m in client.messages] == ["📎 File received: notes.txt (5 B)"]


@pytest.mark.anyio
async def test_not_multipart_is_400(tmp_path: Path) -> None:
    async with WebhookTestClient([plugin], make_config(), data_dir=tmp_path) as client:
        response = await client.post(URL, json={"file": "x"}, headers=AUTH)
    assert response.status_code == 400


def test_sanitize_replaces_special_characters() -> None:
    assert sanitize_filename('a<b>c:d"e|f?g*h\x01.txt') == "a_b_c_d_e_f_g_h_.txt"


def test_sanitize_drops_leading_dots() -> None:
    assert sanitize_filename(".bashrc") == "bashrc"


def test_sanitize_keeps_unicode() -> None:
    assert sanitize_filename("报告 2024.pdf") == "报告 2024.pdf"


def test_sanitize_normalizes_to_nfc() -> None:
    assert sanitize_filename("cafe\u0301.txt") == "caf\u00e9.txt"


def test_sanitize_cuts_long_names_keeping_extension() -> None:
    name = sanitize_filename("文" * 200 + ".pdf")
    assert name.endswith("文.pdf")
    assert len(name.encode()) <= MAX_NAME_BYTES


def test_sanitize_rejects_backslash_path() -> None:
    with pytest.raises(InvalidName, match="is a path"):
        sanitize_filename("..\\..\\windows\\system.ini")
