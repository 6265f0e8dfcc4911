"""In-process test client: drives ``WebhookApp.handle`` without HTTP.

Every chat platform is routed to a recording channel, so tests read
``client.messages`` after ``await client.drain()``.
"""

from __future__ import annotations

import json as jsonlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

from .app import WebhookApp
from .channels import RecordingChannel, SentMessage
from .datastructures import make_headers
from .plugin import Plugin
from .request import WebhookRequest
from .response import WebhookResponse
from .routing import split_webhook_path
from .services import not_found_response, service_response
from .settings import Settings
from .store import Storage

__all__ = ["TestResponse", "WebhookTestClient"]

FileValue = bytes | tuple[str, bytes] | tuple[str, bytes, str]


class TestResponse:
    """Response received by the test client: ``status_code``, ``headers``, ``content``."""

    __test__ = False

    def __init__(self, response: WebhookResponse) -> None:
        self.status_code = response.status
        headers = dict(response.headers)
        if response.content_type is not None:
            headers["Content-Type"] = response.content_type
        self.headers = make_headers(headers)
        self.content = response.body

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code}>"

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.content.decode()

    def json(self) -> Any:
        """Parse the body as JSON."""
        return jsonlib.loads(self.content)


class WebhookTestClient:
    """Runs a ``WebhookApp`` in-process; use as ``async with WebhookTestClient(...) as client``."""

    __test__ = False

    def __init__(
        self,
        plugins: Iterable[Plugin],
        config: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        store: Storage | None = None,
        settings: Settings | None = None,
        client: str = "127.0.0.1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._plugins = list(plugins)
        self._config = config
        self._data_dir = data_dir
        self._store = store
        self._settings = settings
        self._client = client
        self._clock = clock
        self.recorder = RecordingChannel()
        self._stack = AsyncExitStack()
        self._app: WebhookApp | None = None

    @property
    def app(self) -> WebhookApp:
        """The running app."""
        if self._app is None:
            msg = "use the test client inside `async with`"
            raise RuntimeError(msg)
        return self._app

    @property
    def messages(self) -> list[SentMessage]:
        """Chat messages delivered so far, in delivery order."""
        return self.recorder.messages

    async def __aenter__(self) -> WebhookTestClient:
        data_dir = self._data_dir
        if data_dir is None:
            data_dir = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="plughook-"))
        app = WebhookApp(
            self._plugins,
            self._config,
            settings=self._settings,
            data_dir=Path(data_dir),
            store=self._store,
            default_channel=self.recorder,
            clock=self._clock,
        )
        try:
            await self._stack.enter_async_context(app.running())
        except BaseException:
            await self._stack.aclose()
            raise
        self._app = app
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._app = None
        await self._stack.__aexit__(exc_type, exc, traceback)

    async def drain(self) -> None:
        """Wait until queued messages are delivered and tasks have finished."""
        await self.app.drain()

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | str | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, FileValue] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        params: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> TestResponse:
        """Send one request through ``WebhookApp.handle`` and return the response."""
        parts = urlsplit(url)
        query = parts.query
        if params is not None:
            extra = urlencode(list(params.items()) if isinstance(params, Mapping) else list(params))
            query = f"{query}&{extra}" if query else extra
        header_pairs = list(headers.items() if isinstance(headers, Mapping) else headers or [])
        body, content_type = _encode_body(content, json, data, files)
        names = {name.lower() for name, _ in header_pairs}
        if content_type is not None and "content-type" not in names:
            header_pairs.append(("Content-Type", content_type))
        if body and "content-length" not in names:
            header_pairs.append(("Content-Length", str(len(body))))
        service = service_response(self.app, method, parts.path)
        if service is not None:
            if method == "HEAD":
                # Servers send the headers of a HEAD response without its body.
                service.body = b""
            return TestResponse(service)
        target = split_webhook_path(parts.path)
        if target is None:
            return TestResponse(not_found_response())
        request = WebhookRequest(
            method,
            target[0],
            target[1],
            headers=header_pairs,
            query=query,
            body=body,
            client=self._client,
            url=url,
        )
        return TestResponse(await self.app.handle(request))

    async def get(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a GET request."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a POST request."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a PUT request."""
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a DELETE request."""
        return await self.request("DELETE", url, **kwargs)


def _encode_body(
    content: bytes | str | None,
    json: Any,
    data: Mapping[str, Any] | None,
    files: Mapping[str, FileValue] | None,
) -> tuple[bytes, str | None]:
    if content is not None:
        return (content.encode() if isinstance(content, str) else content), None
    if json is not None:
        return jsonlib.dumps(json).encode(), "application/json"
    if files:
        return encode_multipart(data or {}, files)
    if data is not None:
        return urlencode(list(data.items()), doseq=True).encode(), (
            "application/x-www-form-urlencoded"
        )
    return b"", None


def encode_multipart(data: Mapping[str, Any], files: Mapping[str, FileValue]) -> tuple[bytes, str]:
    """Encode fields and files as multipart/form-data; return body and Content-Type."""
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in data.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        )
        chunks.append(str(value).encode() + b"\r\n")
    for name, file in files.items():
        if isinstance(file, bytes):
            filename, payload, media_type = name, file, "application/octet-stream"
        elif len(file) == 2:
            filename, payload = file[0], file[1]
            media_type = "application/octet-stream"
        else:
            filename, payload, media_type = file[0], file[1], file[2]
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {media_type}\r\n\r\n'.encode()
        )
        chunks.append(payload + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
