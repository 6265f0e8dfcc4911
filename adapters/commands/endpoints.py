"""``plughook endpoints``: list the public URL of every endpoint without starting a server."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core import WebhookApp

from . import load_app

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["endpoint_lines", "register"]


def register(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the ``endpoints`` subcommand."""
    parser = subparsers.add_parser(
        "endpoints",
        parents=[common],
        help="print the URL of every webhook endpoint",
        description="Print the public URL of every webhook endpoint, built from "
        "server.public_url when it is set, so it can be pasted into the sender's settings.",
    )
    parser.add_argument(
        "--host", help="address the server listens on, as given to `plughook serve --host`"
    )
    parser.add_argument(
        "--port", type=int, help="port the server listens on, as given to `plughook serve --port`"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per endpoint."""
    loaded = load_app(
        args, host=args.host, port=args.port, check_plugins=False, builds_channels=False, quiet=True
    )
    lines = endpoint_lines(loaded.app)
    if not lines:
        print("no webhook endpoints: no plugin is loaded (use --plugin MODULE)")
    for line in lines:
        print(line)
    return 0


def endpoint_lines(app: WebhookApp) -> list[str]:
    """Format each endpoint as ``METHODS  URL  (plugin)``, ordered by plugin and path."""
    rows = []
    for endpoint in app.router.endpoints():
        methods = ",".join(sorted(endpoint.methods)) if endpoint.methods is not None else "ANY"
        rows.append(
            (methods, app.url_for(endpoint.plugin.name, endpoint.path), endpoint.plugin.name)
        )
    width = max((len(methods) for methods, _, _ in rows), default=0)
    return [f"{methods:<{width}}  {url}  ({plugin})" for methods, url, plugin in rows]
