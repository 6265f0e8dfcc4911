"""``plughook serve``: run the webhook app behind the aiohttp or Litestar adapter."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from core import WebhookApp

from ..loading import CommandError, override_settings
from ..server import bind_socket, serve
from . import load_app
from .endpoints import endpoint_lines

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

logger = logging.getLogger("plughook.serve")

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Exit status after a second SIGINT/SIGTERM cut the graceful shutdown short:
# 128 + SIGINT, what a shell reports for a process ended by Ctrl+C.
EXIT_FORCED = 128 + signal.SIGINT


def register(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        parents=[common],
        help="run the HTTP server",
        description="Run the webhook server until SIGINT or SIGTERM, then shut down "
        "gracefully: stop accepting, give requests and handlers in flight, background "
        "tasks and chat messages being sent up to server.grace_period seconds each to "
        "finish, and write pending records.",
    )
    parser.add_argument(
        "--adapter",
        help="HTTP server binding: aiohttp or litestar (default: server.adapter, aiohttp)",
    )
    parser.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        help="TCP port to listen on; 0 picks a free port (default: server.port, 8021)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until a shutdown signal; return 0 after a graceful shutdown."""
    loaded = load_app(args, host=args.host, port=args.port, adapter=args.adapter)
    app = loaded.app
    server = app.settings.server
    try:
        sock = bind_socket(server.host, server.port)
    except socket.gaierror as exc:
        msg = f"cannot resolve host {server.host!r}: {exc.strerror}; check --host or server.host"
        raise CommandError(msg) from exc
    except OSError as exc:
        # socket.create_server appends the address to strerror; the message names it already.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.EADDRINUSE:
            advice = "stop the program using that port or choose another with --port"
        else:
            advice = "check --host and --port (server.host, server.port)"
        msg = f"cannot listen on {server.host}:{server.port}: {reason}; {advice}"
        raise CommandError(msg) from exc
    if server.port == 0:
        app.settings = override_settings(app.settings, port=sock.getsockname()[1])

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve_until_signal(app, server.adapter, sock, access_log=args.debug))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return None
    return uvloop.new_event_loop


async def _serve_until_signal(
    app: WebhookApp, adapter: str, sock: socket.socket, *, access_log: bool
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in SHUTDOWN_SIGNALS:
        loop.add_signal_handler(signum, _on_signal, signum, stop)
    started = False
    try:
        async with serve(app, adapter, sock, access_log=access_log):
            started = True
            _print_banner(app, adapter, sock)
            await stop.wait()
    except Exception as exc:
        if started:
            raise
        msg = f"the {adapter} server failed to start: {type(exc).__name__}: {exc}"
        raise CommandError(msg) from exc
    finally:
        for signum in SHUTDOWN_SIGNALS:
            loop.remove_signal_handler(signum)
    logger.info("plughook stopped")


def _on_signal(signum: int, stop: asyncio.Event) -> None:
    name = signal.Signals(signum).name
    if stop.is_set():
        logger.warning("received %s again; exiting without waiting for in-flight requests", name)
        os._exit(EXIT_FORCED)
    logger.info("received %s; shutting down", name)
    stop.set()


def _print_banner(app: WebhookApp, adapter: str, sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"plughook: serving with {adapter} on http://{address} (Ctrl+C to stop)"]
    endpoints = endpoint_lines(app)
    if endpoints:
        lines.append("endpoints:")
        lines.extend(f"  {line}" for line in endpoints)
    else:
        lines.append("no webhook endpoints: no plugin is loaded (use --plugin MODULE)")
    print("\n".join(lines), flush=True)
