"""Run a webhook app behind one of the HTTP adapters on a listening socket.

``serve()`` starts the core app and the adapter's server and yields while
they accept requests. On exit it shuts them down gracefully. The server stops
accepting and gives in-flight handlers ``server.grace_period`` seconds, then
the core app leaves ``running()``, which waits for background work and writes
pending records.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import math
import socket
from collections.abc import AsyncIterator

from core import WebhookApp

__all__ = ["ADAPTERS", "BACKLOG", "bind_socket", "check_adapter", "serve"]

logger = logging.getLogger("plughook.server")

ADAPTERS = ("aiohttp", "litestar")
# Pending connections the kernel queues before accept(): uvicorn's default.
# aiohttp's sites default to 128, which a burst of deliveries can overflow.
BACKLOG = 2048


def check_adapter(name: str) -> str:
    """Return ``name`` if it is a known adapter; raise ``ValueError`` naming the choices."""
    if name not in ADAPTERS:
        msg = f"unknown adapter {name!r}; use one of: {', '.join(ADAPTERS)}"
        raise ValueError(msg)
    return name


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (port 0 picks a free port); raise ``OSError`` on failure.

    Binding before the app starts lets a busy port fail fast with the
    system's own error, and lets callers read the chosen port.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.create_server(address, family=family, backlog=BACKLOG)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serve(
    webhook_app: WebhookApp, adapter: str, sock: socket.socket, *, access_log: bool = False
) -> AsyncIterator[None]:
    """Serve ``webhook_app`` with ``adapter`` on the listening ``sock`` until the block exits.

    The socket is closed on exit, also when the start-up fails. Raises
    ``ValueError`` for an unknown adapter. Errors of the core app's start-up
    (for example ``core.errors.ConfigError``) propagate unchanged.
    """
    with sock:
        check_adapter(adapter)
        if adapter == "aiohttp":
            server = _serve_aiohttp(webhook_app, sock, access_log)
        else:
            server = _serve_litestar(webhook_app, sock, access_log)
        async with server:
            yield


@contextlib.asynccontextmanager
async def _serve_aiohttp(
    webhook_app: WebhookApp, sock: socket.socket, access_log: bool
) -> AsyncIterator[None]:
    from aiohttp import web

    from .aiohttp import create_server

    async with webhook_app.running():
        # ServerRunner passes its keyword arguments to no server, so the
        # access log is set on the server itself.
        server = create_server(
            webhook_app, access_log=logging.getLogger("aiohttp.access") if access_log else None
        )
        runner = web.ServerRunner(
            server,
            handle_signals=False,
            shutdown_timeout=webhook_app.settings.server.grace_period,
        )
        try:
            await runner.setup()
            await web.SockSite(runner, sock, backlog=BACKLOG).start()
        except BaseException:
            await runner.cleanup()
            raise
        try:
            yield
        finally:
            _log_shutdown(webhook_app)
            # The site stops accepting and in-flight requests get up to
            # shutdown_timeout. Leaving running() then stops the core.
            await runner.cleanup()


@contextlib.asynccontextmanager
async def _serve_litestar(
    webhook_app: WebhookApp, sock: socket.socket, access_log: bool
) -> AsyncIterator[None]:
    import uvicorn

    from .litestar import create_app
    from .uvicorn_server import UvicornServer

    app = create_app(webhook_app)
    config = uvicorn.Config(
        app,
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        ws="none",
        # The Litestar lifespan is entered below, so its errors reach the
        # caller as exceptions instead of uvicorn's log and sys.exit().
        lifespan="off",
        # Keep the logging set up by the caller.
        log_config=None,
        access_log=access_log,
        # The client address is the peer's, as with aiohttp: X-Forwarded-For
        # is a header for the handler to read, not a rewrite of the client.
        proxy_headers=False,
        backlog=BACKLOG,
        # uvicorn takes whole seconds here.
        timeout_graceful_shutdown=math.ceil(webhook_app.settings.server.grace_period),
    )
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(app.lifespan())
        except BaseExceptionGroup as group:
            # Litestar's lifespan runs in a task group; raise the core's own
            # start-up error (a ConfigError, say) as the aiohttp path does.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        server = UvicornServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="plughook uvicorn")
        await server.wait_started(task)
        try:
            yield
        finally:
            _log_shutdown(webhook_app)
            server.should_exit = True
            await task


def _log_shutdown(webhook_app: WebhookApp) -> None:
    """Mark the app as stopping, so ``/healthz`` returns 503, and log the grace period."""
    webhook_app.serving = False
    # The adapter waits for requests, then the core app for handlers that
    # returned 202 early, background tasks and outbox sends, each in turn.
    logger.info(
        "shutting down: no new connections; requests and handlers in flight, background "
        "tasks and chat messages being sent each get up to %.1f s to finish",
        webhook_app.settings.server.grace_period,
    )
