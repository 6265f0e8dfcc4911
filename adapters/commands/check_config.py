"""``plughook check-config``: validate the config file and every plugin's settings."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from core import Plugin, Settings, WebhookApp
from core.errors import ConfigError
from core.settings import env_references

from ..loading import (
    ConfigFile,
    configure_logging,
    load_plugins,
    read_config,
    structure_settings,
)

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

EXIT_PROBLEMS = 1


def register(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the ``check-config`` subcommand."""
    parser = subparsers.add_parser(
        "check-config",
        parents=[common],
        help="validate the config file and every plugin's settings",
        description="Validate the config file and the settings of every loaded plugin. "
        "Prints each problem with its TOML key; exits with status 1 when there is any.",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print every problem (status 1) or one OK line (status 0)."""
    config = read_config(args.config)
    settings, problems = structure_settings(config)
    plugin_count = 0
    if settings is not None:
        configure_logging("DEBUG" if args.debug else _known_level(settings.log_level))
        plugins = load_plugins(args.plugin, entry_points=args.entry_points)
        plugin_count = len(plugins)
        problems.extend(_app_problems(config, settings, plugins, problems))

    if problems:
        for key, text in problems:
            print(f"{config.label}: {key}: {text}" if key else f"{config.label}: {text}")
        noun = "problem" if len(problems) == 1 else "problems"
        print(f"{len(problems)} {noun} found")
        return EXIT_PROBLEMS
    print(f"{config.label}: OK, settings and {plugin_count} plugin configs are valid")
    return 0


def _app_problems(
    config: ConfigFile,
    settings: Settings,
    plugins: list[Plugin],
    found: list[tuple[str, str]],
) -> list[tuple[str, str]]:
    """Check the plugins' configs; warn of unset settings other than those ``found`` invalid."""
    app = WebhookApp(plugins, settings=settings, env_references=env_references(config.data))
    problems = app.unknown_plugin_tables()
    try:
        configs = app.check_config()
    except ConfigError as exc:
        return exc.problems + problems
    invalid = {key for key, _ in found}
    app.warn_unconfigured_secrets(configs, skip=invalid)
    app.warn_unset_chat_settings(configs, skip=invalid)
    return problems


def _known_level(level: str) -> str:
    """Return ``level`` if it names a logging level, else INFO (the bad value is a problem)."""
    upper = level.upper()
    return upper if upper in logging.getLevelNamesMapping() else "INFO"
