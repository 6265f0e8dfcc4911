"""File upload: saves multipart uploads under the data directory, per chat.

Endpoint: ``POST /api/plugin/file-upload/webhook/upload`` with
``Authorization: Bearer <API_TOKEN>`` and a ``multipart/form-data`` body of a
``file`` part and a ``chat_key`` field. The file is streamed to
``<data_dir>/plugins/file-upload/uploads/<chat key>/<name>``; a name already
taken gets `` (1)``, `` (2)``, … before its extension. The response is
``{"filename", "size", "sha256"}`` with the name the file was saved under.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO, Any, cast

import anyio.to_thread

from core import Plugin, UploadFile, WebhookRequest, current_app, signatures
from core.channels import split_chat_key
from core.config import setting
from core.errors import BadRequest, PayloadTooLarge

from .._chat import send_to_chats
from .._i18n import LOCALES, resolve_locale
from .._text import format_size
from .filenames import candidate_names, check_chat_directory, sanitize_filename
from .messages import CATALOGUE

__all__ = ["UPLOAD_ROOT", "UploadConfig", "plugin", "upload"]

# Below the app's data directory.
UPLOAD_ROOT = Path("plugins", "file-upload", "uploads")
FILE_FIELD = "file"
CHAT_KEY_FIELD = "chat_key"
DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
# Multipart boundaries, part headers and the chat_key field on top of the file.
MULTIPART_OVERHEAD = 64 * 1024
# The endpoint's hard body limit; MAX_FILE_SIZE can only lower it per request.
MAX_BODY_CEILING = 1024 * 1024 * 1024
COPY_CHUNK_SIZE = 1024 * 1024

plugin = Plugin(
    "file-upload",
    version="1.0.0",
    description="Stores files uploaded for a chat under the data directory",
    maintenance_aware=True,
)


@plugin.mount_config()
class UploadConfig:
    """Settings of the file-upload plugin."""

    API_TOKEN: str = setting(
        "",
        title="API 令牌",
        description="Bearer token uploaders must present; requests get 503 while it is empty",
        secret=True,
    )
    MAX_FILE_SIZE: int = setting(
        DEFAULT_MAX_FILE_SIZE,
        title="文件大小上限",
        description=f"Largest accepted file in bytes (413 above it); at most {MAX_BODY_CEILING}",
    )
    NOTIFY: bool = setting(
        False,
        title="通知会话",
        description="Send a notice to the upload's chat when a file arrives",
    )
    LOCALE: str = setting(
        "zh_CN", title="语言", description="Notice language: zh_CN or en", choices=LOCALES
    )


def _config() -> UploadConfig:
    return cast(UploadConfig, plugin.config)


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    msg = f"the file is {size} bytes, more than MAX_FILE_SIZE ({limit} bytes)"
    return PayloadTooLarge(msg)


def _store(source: IO[bytes], directory: Path, name: str) -> tuple[str, int, str]:
    """Write ``source`` to the first free candidate name; return name, size and SHA-256.

    The name is claimed with an exclusive create, so two uploads of the same
    name at once never overwrite each other.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for candidate in candidate_names(name):
        path = directory / candidate
        try:
            target = path.open("xb")
        except FileExistsError:
            continue
        digest = hashlib.sha256()
        size = 0
        try:
            with target:
                source.seek(0)
                while chunk := source.read(COPY_CHUNK_SIZE):
                    digest.update(chunk)
                    target.write(chunk)
                    size += len(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return candidate, size, digest.hexdigest()
    msg = f"every name from {name!r} to its last numbered variant is taken in {directory}"
    raise FileExistsError(msg)


def _form_fields(form: Any) -> tuple[UploadFile, str]:
    upload = form.get(FILE_FIELD)
    if upload is None:
        msg = f"missing form part {FILE_FIELD!r} with the file"
        raise BadRequest(msg)
    if not isinstance(upload, UploadFile):
        msg = f"form part {FILE_FIELD!r} must be a file (a part with a filename)"
        raise BadRequest(msg)
    chat_key = form.get(CHAT_KEY_FIELD)
    if not isinstance(chat_key, str) or not chat_key.strip():
        msg = f"missing form field {CHAT_KEY_FIELD!r} naming the chat, e.g. onebot_v11-group_123456"
        raise BadRequest(msg)
    return upload, chat_key.strip()


@plugin.mount_webhook(
    "/upload",
    methods=["POST"],
    verify=signatures.bearer_token("API_TOKEN"),
    max_body_size=MAX_BODY_CEILING,
)
async def upload(request: WebhookRequest) -> dict[str, Any]:
    """Save the uploaded file for the chat; 400 for bad names, 413 above ``MAX_FILE_SIZE``."""
    config = _config()
    limit = min(config.MAX_FILE_SIZE, MAX_BODY_CEILING)
    # Stop reading as soon as the body cannot hold a file within the limit.
    request.max_body_size = min(request.max_body_size, limit + MULTIPART_OVERHEAD)
    request.check_declared_length()

    upload_file, chat_key = _form_fields(await request.form())
    if upload_file.size > limit:
        raise _too_large(upload_file.size, limit)
    try:
        split_chat_key(chat_key)
        directory = current_app().data_dir / UPLOAD_ROOT / check_chat_directory(chat_key)
        name = sanitize_filename(upload_file.filename)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None

    saved, size, digest = await anyio.to_thread.run_sync(_store, upload_file.file, directory, name)
    plugin.logger.info(
        "delivery %s: saved %s (%d bytes) for chat %s", request.delivery_id, saved, size, chat_key
    )

    if config.NOTIFY:
        locale = resolve_locale(config.LOCALE, plugin.name)
        notice = CATALOGUE.text(locale, "received", filename=saved, size=format_size(size))
        await send_to_chats(chat_key, notice, plugin.logger, CHAT_KEY_FIELD)
    return {"filename": saved, "size": size, "sha256": digest}
