"""The ``plughook`` command line: serve, endpoints, config checks, delivery log and outbox.

Problems the user has to fix print one ``plughook: error: ...`` line per
problem on stderr and exit with status 2, or with a status the command
documents for that problem. ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import traceback
from collections.abc import Sequence

from .commands import (
    channels,
    check_config,
    common_parser,
    deliveries,
    endpoints,
    maintenance,
    outbox,
    serve,
)
from .loading import EXIT_USAGE, CommandError

__all__ = ["COMMANDS", "EXIT_ERROR", "EXIT_USAGE", "build_parser", "main", "version_line"]

# Each module adds one or more subcommands; see adapters.commands.
COMMANDS = (serve, endpoints, check_config, deliveries, outbox, channels, maintenance)
# An unexpected error: a bug or an environment problem plughook does not know.
EXIT_ERROR = 1
PROG = "plughook"
# The name under which pip installs plughook, as in pyproject.toml.
DISTRIBUTION = "plughook"


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every subcommand of ``COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve chat-bot plugin webhooks over HTTP.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=version_line(),
        help="print the installed plughook version and exit",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_parser()
    for module in COMMANDS:
        module.register(subparsers, common)
    return parser


def version_line() -> str:
    """Return ``plughook VERSION`` from the installed package's metadata.

    Code run from a checkout that pip never installed has no metadata, and
    the line then reports that instead of guessing a version.
    """
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return f"{PROG}: version unknown, because the {DISTRIBUTION} package is not installed"
    return f"{PROG} {version}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``plughook`` command and return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except CommandError as exc:
        _report(exc, debug=args.debug)
        return exc.exit_status
    except BrokenPipeError:
        # The reader went away (`plughook deliveries list | head`): stop quietly,
        # and point stdout at /dev/null so the exit-time flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        _report(exc, debug=args.debug, unexpected=True)
        return EXIT_ERROR
    return status


def _report(exc: Exception, *, debug: bool, unexpected: bool = False) -> None:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if unexpected:
        hint = "" if debug else "; run again with --debug for the traceback"
        lines = [f"unexpected {type(exc).__name__}: {exc}{hint}"]
    else:
        lines = str(exc).splitlines()
    for line in lines:
        print(f"{PROG}: error: {line}", file=sys.stderr)
