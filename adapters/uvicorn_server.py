"""A ``uvicorn.Server`` for running inside a caller's event loop and signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

__all__ = ["UvicornServer", "UvicornStartupError"]


class UvicornStartupError(RuntimeError):
    """Raised by ``wait_started`` when the server stopped before it accepted connections."""


class UvicornServer(uvicorn.Server):
    """A uvicorn server that leaves signal handlers alone; ``wait_started`` awaits its listeners."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._started = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would install its own SIGINT/SIGTERM handlers and raise the
        # signal again after shutdown, ending the process by that signal
        # instead of with exit status 0.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._started.set()

    async def wait_started(self, serving: asyncio.Task[None]) -> None:
        """Return once ``serving`` (the task running ``serve()``) accepts connections."""
        waiter = asyncio.create_task(self._started.wait())
        await asyncio.wait({serving, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if self._started.is_set():
            return
        waiter.cancel()
        serving.result()
        msg = "uvicorn stopped before it started accepting connections"
        raise UvicornStartupError(msg)
