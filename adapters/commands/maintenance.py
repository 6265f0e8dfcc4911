"""``plughook maintenance [on|off]``: show or switch maintenance mode in the stored data."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import anyio

from core import WebhookApp

from . import load_app

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

_STATES = {"on": True, "off": False}


def register(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the ``maintenance`` subcommand."""
    parser = subparsers.add_parser(
        "maintenance",
        parents=[common],
        help="show or switch maintenance mode",
        description="Show maintenance mode, or switch it on or off. While it is on, the "
        "endpoints of maintenance-aware plugins (every bundled one but status) return 503 "
        '{"error": "maintenance"}. The mode is stored with plughook\'s data, so it outlives '
        "a restart, and a running server (or every instance sharing Redis) follows a switch "
        "within a second. This works when the status plugin is disabled too.",
    )
    parser.add_argument(
        "state", nargs="?", choices=sorted(_STATES), help="switch to this state; omit to show it"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the mode, switching it first when a state is given."""
    app = load_app(
        args, check_plugins=False, builds_channels=False, quiet=True, stored="outbox"
    ).app
    state = None if args.state is None else _STATES[args.state]
    enabled = anyio.run(_maintenance, app, state)
    print(f"maintenance mode is {'on' if enabled else 'off'}")
    return 0


async def _maintenance(app: WebhookApp, state: bool | None) -> bool:
    await app.storage.open()
    try:
        if state is not None:
            await app.set_maintenance(state)
        return await app.in_maintenance()
    finally:
        await app.storage.close()
