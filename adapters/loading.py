"""Build a ``WebhookApp`` for the command line: config file, flag overrides and plugins.

Precedence of settings: command-line flags over the config file over the
defaults of ``core.settings``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from core import Plugin, Settings, WebhookApp
from core.errors import ConfigError
from core.settings import (
    StorageSettings,
    bare_env_references,
    env_references,
    expand_env,
    partial_settings,
    read_config_file,
)

from .server import ADAPTERS

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENTRY_POINT_GROUP",
    "EXIT_NOT_FOUND",
    "EXIT_USAGE",
    "CommandError",
    "ConfigFile",
    "build_app",
    "check_app",
    "configure_logging",
    "known_level",
    "load_plugins",
    "override_settings",
    "problems_error",
    "read_config",
    "settings_problems",
    "structure_settings",
    "warn_bare_env_references",
]

# argparse's own status for usage errors, used for every problem that the user must fix.
EXIT_USAGE = 2
# No delivery record or outbox message has the id given to a command, so a
# script can tell a wrong id from a usage error.
EXIT_NOT_FOUND = 3
# Read from the working directory when --config is not given; a missing
# default file means "run with the defaults".
DEFAULT_CONFIG_FILE = "plughook.toml"
# Installed packages register their plugins in this entry-point group.
ENTRY_POINT_GROUP = "plughook.plugins"
# One line per record: time, level, logger, message.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
logger = logging.getLogger("plughook")
_MAX_PORT = 65535


class CommandError(Exception):
    """Raised for a problem the user has to fix; the message names what failed and what to do.

    The command line prints each line of the message after ``plughook: error:``
    and exits with ``exit_status``: ``EXIT_USAGE`` unless the command
    documents another status for this problem.
    """

    def __init__(self, message: str, exit_status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_status = exit_status


@attrs.frozen
class ConfigFile:
    """The parsed config file: its TOML data and where it came from (None: defaults only)."""

    data: dict[str, Any]
    path: Path | None

    @property
    def label(self) -> str:
        """The file name for messages, or a note that there is no file."""
        return str(self.path) if self.path is not None else "(no config file)"


def read_config(path: str | None) -> ConfigFile:
    """Read ``path``, or ``plughook.toml`` in the working directory when it exists.

    Raises ``CommandError`` when a named file is missing, unreadable or not valid TOML.
    """
    if path is None:
        default = Path(DEFAULT_CONFIG_FILE)
        if not default.exists():
            return ConfigFile({}, None)
        path = str(default)
    try:
        data = read_config_file(path)
    except ConfigError as exc:
        message = "; ".join(text for _, text in exc.problems)
        if not Path(path).exists():
            advice = (
                "create it (plughook.example.toml documents every setting) or leave out --config"
            )
        else:
            advice = "fix the file and run again"
        msg = f"{message}; {advice}"
        raise CommandError(msg) from exc
    return ConfigFile(data, Path(path))


def structure_settings(config: ConfigFile) -> tuple[Settings, list[tuple[str, str]]]:
    """Expand ``${ENV}`` references and structure the settings; return them with every problem.

    An invalid value is left at its default (``core.settings.partial_settings``),
    so that the checks of the app can still run on the rest. A problem on a
    key that has one already, such as an empty URL where a variable is not
    set, follows from the first and is left out.
    """
    problems: list[tuple[str, str]] = []
    expanded = expand_env(config.data, "", problems)
    settings, found = partial_settings(expanded)
    problems = _add_new_keys(problems, found)
    return settings, _add_new_keys(problems, settings_problems(settings))


def _add_new_keys(
    problems: list[tuple[str, str]], later: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Return ``problems`` with those of ``later`` whose keys have none yet."""
    keys = {key for key, _ in problems}
    return problems + [(key, text) for key, text in later if key not in keys]


def settings_problems(settings: Settings) -> list[tuple[str, str]]:
    """Check the settings the command line uses beyond their types."""
    problems: list[tuple[str, str]] = []
    if settings.server.adapter not in ADAPTERS:
        problems.append(("server.adapter", _unknown_adapter(settings.server.adapter)))
    if not 0 <= settings.server.port <= _MAX_PORT:
        problems.append(("server.port", f"port {settings.server.port} is out of range 0-65535"))
    if settings.server.grace_period < 0:
        problems.append(("server.grace_period", "must be 0 or more seconds"))
    if settings.log_level.upper() not in logging.getLevelNamesMapping():
        problems.append(
            (
                "log_level",
                f"unknown level {settings.log_level!r}; "
                "use DEBUG, INFO, WARNING, ERROR or CRITICAL",
            )
        )
    return problems


def _unknown_adapter(name: str) -> str:
    return f"unknown adapter {name!r}; use one of: {', '.join(ADAPTERS)}"


def override_settings(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    adapter: str | None = None,
) -> Settings:
    """Return ``settings`` with the server values given on the command line.

    Raises ``CommandError`` for an unknown adapter or a port out of range.
    """
    if adapter is not None and adapter not in ADAPTERS:
        msg = f"--adapter: {_unknown_adapter(adapter)}"
        raise CommandError(msg)
    if port is not None and not 0 <= port <= _MAX_PORT:
        msg = f"--port: port {port} is out of range 0-65535"
        raise CommandError(msg)
    changes: dict[str, Any] = {}
    if host is not None:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    if adapter is not None:
        changes["adapter"] = adapter
    if not changes:
        return settings
    return attrs.evolve(settings, server=attrs.evolve(settings.server, **changes))


def problems_error(config: ConfigFile, problems: Iterable[tuple[str, str]]) -> CommandError:
    """Build the ``CommandError`` listing configuration problems, one line each."""
    lines = [
        f"{config.label}: {key}: {text}" if key else f"{config.label}: {text}"
        for key, text in problems
    ]
    return CommandError("\n".join(lines))


def known_level(level: str) -> str:
    """Return ``level`` if it names a logging level, else INFO.

    ``settings_problems`` reports an unknown level, so the command can log
    at INFO until it stops on that problem.
    """
    upper = level.upper()
    return upper if upper in logging.getLevelNamesMapping() else "INFO"


def configure_logging(level: str) -> None:
    """Send log records at ``level`` and above to stderr, one line each."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)


def load_plugins(modules: Sequence[str], *, entry_points: bool) -> list[Plugin]:
    """Import the ``plugin`` of each module, then those of the ``plughook.plugins`` entry points.

    Raises ``CommandError`` for a module or entry point that fails to load,
    provides no ``core.Plugin``, or reuses another plugin's name.
    """
    if modules and os.getcwd() not in sys.path:
        # Modules next to the config file import like they do under
        # ``python -m adapters``, which puts the working directory first.
        sys.path.insert(0, os.getcwd())
    plugins: list[Plugin] = [_plugin_from_module(name) for name in modules]
    if entry_points:
        plugins.extend(_plugins_from_entry_points())
    return _unique(plugins)


def _plugin_from_module(name: str) -> Plugin:
    if not all(part.isidentifier() for part in name.split(".")):
        msg = (
            f"--plugin {name!r} is not a Python module name: --plugin takes the module that "
            "defines a plugin, such as plugins.github_notifier (bundled plugins load without it)"
        )
        raise CommandError(msg)
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        msg = (
            f"cannot import plugin module {name!r}: {type(exc).__name__}: {exc}; check the "
            f"--plugin value and that the module is importable from {os.getcwd()}"
        )
        raise CommandError(msg) from exc
    except Exception as exc:
        # The module was found, and its own code failed (a rejected endpoint path, say).
        msg = f"plugin module {name!r} failed while loading: {type(exc).__name__}: {exc}"
        raise CommandError(msg) from exc
    plugin = getattr(module, "plugin", None)
    if not isinstance(plugin, Plugin):
        msg = (
            f"plugin module {name!r} has no module-level 'plugin' variable holding a "
            f"core.Plugin; define 'plugin = Plugin(...)' in it or fix the --plugin value"
        )
        raise CommandError(msg)
    return plugin


def _plugins_from_entry_points() -> list[Plugin]:
    plugins: list[Plugin] = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = entry_point.load()
        except Exception as exc:
            msg = (
                f"cannot load plugin {entry_point.name!r} from entry point "
                f"{entry_point.value!r}: {type(exc).__name__}: {exc}; reinstall the package "
                f"that provides it, or pass --no-entry-points"
            )
            raise CommandError(msg) from exc
        if not isinstance(plugin, Plugin):
            msg = (
                f"entry point {entry_point.name!r} ({entry_point.value}) in group "
                f"{ENTRY_POINT_GROUP!r} is a {type(plugin).__name__}, not a core.Plugin"
            )
            raise CommandError(msg)
        plugins.append(plugin)
    return plugins


def _unique(plugins: Iterable[Plugin]) -> list[Plugin]:
    """Drop a plugin loaded twice (by module and by entry point); reject two with one name."""
    by_name: dict[str, Plugin] = {}
    for plugin in plugins:
        known = by_name.setdefault(plugin.name, plugin)
        if known is not plugin:
            msg = (
                f"two different plugins are named {plugin.name!r}; load only one of them "
                f"(check --plugin and --no-entry-points)"
            )
            raise CommandError(msg)
    return list(by_name.values())


def check_app(
    config: ConfigFile,
    settings: Settings,
    plugins: Sequence[Plugin],
    problems: list[tuple[str, str]],
) -> tuple[WebhookApp, dict[str, Any], list[tuple[str, str]]]:
    """Build the app and check the plugins' settings, the channels and the chat keys.

    ``problems`` are those that ``structure_settings`` found. Returns the
    app, the plugins' configs with each invalid setting at its default, and
    every problem. An app built from settings with problems must not serve.
    """
    references = env_references(config.data)
    try:
        app = WebhookApp(plugins, settings=settings, env_references=references)
    except ConfigError as exc:
        # The storage settings cannot back a store. The checks below never
        # open one, so they run with the default storage.
        problems = problems + exc.problems
        settings = attrs.evolve(settings, storage=StorageSettings())
        app = WebhookApp(plugins, settings=settings, env_references=references)
    warn_bare_env_references(config, settings)
    # Collected first, so that the app logs no warning of its own about them.
    unknown_tables = app.unknown_plugin_tables()
    configs, found = app.config_problems(skip={key for key, _ in problems})
    return app, configs, problems + found + unknown_tables


def warn_bare_env_references(config: ConfigFile, settings: Settings) -> None:
    """Log each string of the config file that names an environment variable without braces.

    Such a value is literal text, so a secret written as ``"$API_TOKEN"``
    is that text itself, and senders that use the real token are rejected.
    The tables of disabled plugins are left out, as they are from every
    other check.
    """
    data = dict(config.data)
    plugins = data.get("plugins")
    if isinstance(plugins, Mapping):
        disabled = set(settings.disabled_plugins)
        data["plugins"] = {name: table for name, table in plugins.items() if name not in disabled}
    for key, name in bare_env_references(data):
        logger.warning(
            '%s takes "$%s" as literal text, not as the environment variable %s; '
            'write "${%s}" to read the variable',
            key,
            name,
            name,
            name,
        )


def build_app(settings: Settings, plugins: Sequence[Plugin], config: ConfigFile) -> WebhookApp:
    """Create the ``WebhookApp``; raise ``CommandError`` when the settings cannot back it."""
    try:
        return WebhookApp(plugins, settings=settings, env_references=env_references(config.data))
    except ConfigError as exc:
        raise problems_error(config, exc.problems) from exc
