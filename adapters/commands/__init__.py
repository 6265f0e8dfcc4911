"""Subcommands of the ``plughook`` command line, one module each.

A command module has ``register(subparsers, common)``: it adds its parser
with ``common`` as a parent (``--config``, ``--plugin``, ``--no-entry-points``,
``--debug``) and sets ``run`` to a function taking the parsed arguments and
returning the exit status. ``adapters.cli.COMMANDS`` lists the modules.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

import attrs
import wcwidth

from core import Plugin, WebhookApp
from core.config import toml_key
from core.display import terminal_safe
from core.settings import env_references
from core.sqlite import SQLiteStorage

from ..loading import (
    CommandError,
    ConfigFile,
    build_app,
    check_app,
    configure_logging,
    known_level,
    load_plugins,
    override_settings,
    problems_error,
    read_config,
    structure_settings,
)

__all__ = [
    "Loaded",
    "StoredData",
    "align_columns",
    "common_options",
    "common_parser",
    "fit_line",
    "load_app",
    "local_time_heading",
    "positive_count",
    "require_stored_data",
    "short_local_time",
    "table_width",
]


logger = logging.getLogger("plughook")

# The stored data a command works on: the delivery log or the store with the outbox.
StoredData = Literal["deliveries", "outbox"]


def positive_count(text: str) -> int:
    """Parse a ``--limit`` value: a whole number of 1 or more."""
    msg = f"expected a whole number of 1 or more, not {text!r}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(msg) from None
    if value < 1:
        raise argparse.ArgumentTypeError(msg)
    return value


def align_columns(rows: list[list[str]], right: Collection[int] = ()) -> list[str]:
    """Join each row's cells with two spaces, every column but the last as wide as its widest cell.

    Widths are terminal columns: a Chinese character or an emoji takes two.
    Columns whose index is in ``right`` are aligned to the right.
    """
    widths = [max(wcwidth.width(row[index]) for row in rows) for index in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = []
        for index, (cell, width) in enumerate(zip(row, widths, strict=False)):
            padding = " " * (width - wcwidth.width(cell))
            cells.append(padding + cell if index in right else cell + padding)
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def table_width(rows: list[list[str]]) -> int:
    """Return the terminal columns of the widest line that ``align_columns(rows)`` returns."""
    columns = range(len(rows[0]))
    return sum(max(wcwidth.width(row[i]) for row in rows) for i in columns) + 2 * (len(columns) - 1)


def fit_line(text: str, limit: int | None = None) -> str:
    """Return ``text`` as one terminal-safe line, cut to ``limit`` columns when given.

    Newlines show as " ⏎ " and other control characters as escapes
    (``core.display.terminal_safe``). Columns are terminal columns: a Chinese
    character or most emoji take two. A cut line ends in "…", and the cut
    never splits an escape, an emoji sequence or a character from its
    combining marks.
    """
    line = terminal_safe(text.replace("\r\n", "\n").replace("\n", " ⏎ "))
    if limit is None or wcwidth.width(line) <= limit:
        return line
    kept: list[str] = []
    used = 0
    for grapheme in wcwidth.iter_graphemes(text.replace("\r\n", "\n")):
        shown = " ⏎ " if grapheme == "\n" else terminal_safe(grapheme)
        used += wcwidth.width(shown)
        if used > limit - 1:
            break
        kept.append(shown)
    return "".join(kept) + "…"


def common_options(args: argparse.Namespace) -> list[str]:
    """Return the ``common_parser`` options given on this command line, to repeat in a hint."""
    options = ["--config", args.config] if args.config else []
    for module in args.plugin:
        options += ["--plugin", module]
    if not args.entry_points:
        options.append("--no-entry-points")
    return options


def local_time_heading(name: str) -> str:
    """Return a heading for local times with the UTC offset, such as ``CREATED (+0800)``."""
    return f"{name} ({time.strftime('%z')})"


def short_local_time(timestamp: float) -> str:
    """Return ``timestamp`` as local month, day and time, such as ``12-05 13:49:02``."""
    return time.strftime("%m-%d %H:%M:%S", time.localtime(timestamp))


def common_parser() -> argparse.ArgumentParser:
    """Build the parent parser with the options every subcommand takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: plughook.toml in the working directory if it "
        "exists, otherwise built-in defaults)",
    )
    common.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import the 'plugin' of this Python module; repeat for several modules",
    )
    common.add_argument(
        "--no-entry-points",
        dest="entry_points",
        action="store_false",
        help="do not load plugins registered in the 'plughook.plugins' entry-point group",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        help="log at DEBUG level and print tracebacks of errors",
    )
    return common


@attrs.frozen
class Loaded:
    """The parsed config file and the app built from it, as a subcommand uses them."""

    config: ConfigFile
    app: WebhookApp


def load_app(
    args: argparse.Namespace,
    *,
    host: str | None = None,
    port: int | None = None,
    adapter: str | None = None,
    check_plugins: bool = True,
    builds_channels: bool = True,
    verifies: bool = True,
    quiet: bool = False,
    stored: StoredData | None = None,
) -> Loaded:
    """Read the config, set up logging, load plugins and build the app.

    With ``stored``, the command works on that stored data, and stops when
    the SQLite data folder lacks it (``require_stored_data``).

    Raises ``loading.CommandError`` for any problem, with one line per
    configuration problem. With ``check_plugins``, every plugin's config is
    checked too. Without it, problems in ``[plugins.*]`` tables are ignored,
    and so are those in ``[channels.*]`` tables when ``builds_channels`` is
    false too. ``verifies=False`` is for a command that runs handlers
    without their verifiers: an environment variable that is not set in a
    verifier's secret setting is then no problem.
    """
    config = read_config(args.config)
    settings, problems = structure_settings(config)
    if not check_plugins:
        # Commands that never run plugin code (listings, the outbox) work
        # without the plugins' secrets in the environment, and those that
        # never build a channel work without the channels' secrets too.
        ignored = ("plugins.",) if builds_channels else ("plugins.", "channels.")
        problems = [(key, text) for key, text in problems if not key.startswith(ignored)]
        if problems:
            raise problems_error(config, problems)
    settings = override_settings(settings, host=host, port=port, adapter=adapter)
    # Short-lived commands print their own results; INFO lines about the app
    # starting and stopping would only hide them.
    level = (
        "WARNING"
        if quiet and settings.log_level.upper() in ("DEBUG", "INFO")
        else known_level(settings.log_level)
    )
    configure_logging("DEBUG" if args.debug else level)

    plugins = load_plugins(args.plugin, entry_points=args.entry_points)
    if check_plugins and not verifies:
        problems = _without_unset_verifier_secrets(config, plugins, problems)
    if check_plugins:
        # Every problem at once: those of the settings, the plugins and the channels.
        app, _, problems = check_app(config, settings, plugins, problems)
        if problems:
            raise problems_error(config, problems)
    else:
        app = build_app(settings, plugins, config)
        # Irrelevant to a command that runs no plugin code.
        app.unknown_plugin_tables()
    loaded = Loaded(config, app)
    if stored is not None:
        require_stored_data(loaded, stored)
    return loaded


def _without_unset_verifier_secrets(
    config: ConfigFile, plugins: Sequence[Plugin], problems: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Return ``problems`` without the unset variables of verifiers' secret settings.

    A verifier names its secret setting in ``secret_field``. Each setting
    left empty this way is logged.
    """
    secret_keys = set()
    for plugin in plugins:
        for endpoint in plugin.endpoints.values():
            field = getattr(endpoint.verify, "secret_field", None)
            if field is not None:
                secret_keys.add(f"plugins.{toml_key(plugin.name)}.{field}")

    unset: dict[str, list[str]] = {}
    for key, names in env_references(config.data).items():
        missing = [name for name in dict.fromkeys(names) if name not in os.environ]
        if key in secret_keys and missing:
            unset[key] = missing
    # NOTE: a handler that reads its verifier's secret itself gets an empty
    # string. The bundled plugins leave their secrets to their verifiers.
    for key, names in unset.items():
        logger.warning(
            "%s is empty because %s is not set; this command skips verification, which needs it",
            key,
            " and ".join(f"${{{name}}}" for name in names),
        )
    return [(key, text) for key, text in problems if key not in unset]


def require_stored_data(loaded: Loaded, kind: StoredData) -> None:
    """Stop a command on the delivery log or the outbox when the SQLite data folder lacks it.

    Opening the storage would create an empty database in the wrong place,
    and the command would then report that nothing was recorded. That
    usually means a different working directory or config from the server's.
    """
    storage = loaded.app.storage
    if not isinstance(storage, SQLiteStorage):
        return
    database = storage.log_path if kind == "deliveries" else storage.path
    if database.exists():
        return
    folder = storage.path.parent
    setting = loaded.app.settings.data_dir
    source = "the default" if loaded.config.path is None else f"set in {loaded.config.path}"
    missing = "delivery log" if kind == "deliveries" else "plughook data"
    msg = f"no {missing} in {folder.absolute()}: data_dir is {str(setting)!r} ({source})"
    if not Path(setting).is_absolute():
        msg += f", read from the working directory {Path.cwd()}"
    msg += "; run the command where `plughook serve` runs, with its --config"
    raise CommandError(msg)
