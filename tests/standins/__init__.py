"""Stand-ins for the servers plughook's channels talk to, run on loopback in tests.

Each stand-in is an aiohttp server on 127.0.0.1 with a free port that records
what it received and can be scripted to fail. ``script`` contains the responses
to send next, and ``failure_ratio`` makes a seeded share of the other requests fail.
"""

from __future__ import annotations

import abc
import asyncio
import random
import socket
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import attrs
from aiohttp import web

__all__ = ["LoopbackServer", "ScriptedResponse"]

# Seconds the server waits for handlers when it stops; scripted delays that
# outlive a client's timeout are cancelled after this.
_SHUTDOWN_TIMEOUT = 0.5


@attrs.frozen
class ScriptedResponse:
    """One response a stand-in sends instead of its normal one.

    ``retcode`` only matters to the OneBot stand-in (0 ok, 1 async, anything
    else a ``failed`` status). ``delay`` is in seconds before responding;
    ``close_connection`` drops the connection without any response. ``raw_body``
    replaces the body the stand-in would send.
    """

    http_status: int = 200
    retcode: int = 0
    delay: float = 0.0
    close_connection: bool = False
    headers: Mapping[str, str] = attrs.field(factory=dict)
    raw_body: str | None = None

    @property
    def delivers(self) -> bool:
        """Whether a request with this response counts as delivered (and is recorded)."""
        accepted = 200 <= self.http_status < 300 and self.retcode in (0, 1)
        return accepted and not self.close_connection


class LoopbackServer(abc.ABC):
    """Base of the stand-ins: start, stop, URL and the failure script.

    Use as ``async with Server(...) as server:``; ``server.url`` is the base URL.
    """

    def __init__(
        self,
        *,
        failure_ratio: float = 0.0,
        failure: ScriptedResponse | None = None,
        seed: int = 0,
    ) -> None:
        self.script: deque[ScriptedResponse] = deque()
        self.failure_ratio = failure_ratio
        self.failure = failure or ScriptedResponse(http_status=500)
        self.request_count = 0
        self._rng = random.Random(seed)
        self._runner: web.AppRunner | None = None
        self._url = ""

    @property
    def url(self) -> str:
        """Base URL of the running server, ``http://127.0.0.1:<port>``."""
        if not self._url:
            msg = f"{type(self).__name__} is not running; use it as 'async with'"
            raise RuntimeError(msg)
        return self._url

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on 127.0.0.1 with a port the system picks."""
        app = web.Application()
        app.add_routes(self.routes())
        # Cancel a handler when its client disconnects, so scripted delays end
        # with the client's timeout instead of outliving the test.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        port = sock.getsockname()[1]
        self._url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._url = ""

    @abc.abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """Return the routes the stand-in serves."""

    def next_scripted(self) -> ScriptedResponse | None:
        """Return the scripted response for the current request, or ``None`` for a normal one."""
        if self.script:
            return self.script.popleft()
        if self.failure_ratio and self._rng.random() < self.failure_ratio:
            return self.failure
        return None

    async def respond(
        self,
        request: web.Request,
        scripted: ScriptedResponse,
        body: Mapping[str, Any] | None,
    ) -> web.StreamResponse:
        """Respond to ``request`` as ``scripted`` specifies, with the JSON ``body`` if given."""
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        if scripted.close_connection:
            transport = request.transport
            if transport is not None:
                transport.close()
            # The connection is gone; aiohttp drops this response.
            return web.Response()
        headers = dict(scripted.headers)
        if scripted.raw_body is not None:
            return web.Response(
                text=scripted.raw_body, status=scripted.http_status, headers=headers
            )
        if body is None:
            return web.Response(status=scripted.http_status, headers=headers)
        return web.json_response(body, status=scripted.http_status, headers=headers)
