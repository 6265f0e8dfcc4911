"""``plughook check-config``: validate the config file and every plugin's settings."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..loading import (
    check_app,
    configure_logging,
    known_level,
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
    configure_logging("DEBUG" if args.debug else known_level(settings.log_level))
    plugins = load_plugins(args.plugin, entry_points=args.entry_points)
    app, configs, problems = check_app(config, settings, plugins, problems)
    invalid = {key for key, _ in problems}
    app.warn_unconfigured_secrets(configs, skip=invalid)
    app.warn_unset_chat_settings(configs, skip=invalid)

    if problems:
        for key, text in problems:
            print(f"{config.label}: {key}: {text}" if key else f"{config.label}: {text}")
        noun = "problem" if len(problems) == 1 else "problems"
        print(f"{len(problems)} {noun} found")
        return EXIT_PROBLEMS
    print(f"{config.label}: OK, settings and {len(app.plugins)} plugin configs are valid")
    return 0
