"""Real HTTP servers for tests: a ``WebhookApp`` behind an adapter on a free loopback port.

The servers run in the test's event loop with the code ``plughook serve``
runs: aiohttp's low-level server through ``web.ServerRunner``, Litestar
through ``uvicorn.Server``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from adapters.server import bind_socket, serve
from core import WebhookApp

__all__ = ["LOOPBACK", "running_server"]

LOOPBACK = "127.0.0.1"


@asynccontextmanager
async def running_server(webhook_app: WebhookApp, adapter: str) -> AsyncIterator[str]:
    """Serve ``webhook_app`` with ``adapter`` on a free port; yield the base URL."""
    sock = bind_socket(LOOPBACK, 0)
    port = sock.getsockname()[1]
    async with serve(webhook_app, adapter, sock):
        yield f"http://{LOOPBACK}:{port}"
