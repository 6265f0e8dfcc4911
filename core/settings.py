"""App-wide settings: the TOML file's tables other than ``[plugins.*]``."""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .config import (
    UNKNOWN_SETTING,
    positive,
    setting,
    structure_config,
    structure_partial,
    toml_key,
)
from .errors import ConfigError

__all__ = [
    "DeliverySettings",
    "OutboxSettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "bare_env_references",
    "env_references",
    "expand_env",
    "load_settings",
    "partial_settings",
    "placement_hint",
    "read_config_file",
    "with_placement_hints",
]

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A value that names an environment variable without the braces that make
# plughook read it, such as "$MONITOR_API_TOKEN". Only upper-case names match,
# as most environment variables are named, so that fewer ordinary secrets
# that start with "$" match and are printed in the warning.
_BARE_ENV_PATTERN = re.compile(r"\$([A-Z_][A-Z0-9_]*)")


@attrs.frozen
class ServerSettings:
    """Listening address, adapter and public URL of ``plughook serve``."""

    host: str = "127.0.0.1"
    port: int = 8021
    adapter: str = "aiohttp"
    # Base of the URLs printed for users, e.g. "https://bot.example.com"; the
    # listening address is used when empty.
    public_url: str = ""
    # Seconds in-flight handlers and tasks get to finish on shutdown.
    grace_period: float = 10.0


@attrs.frozen
class StorageSettings:
    """Backend that keeps the store, outbox, tasks and delivery log."""

    backend: str = "sqlite"
    # redis://host:port/db or unix:///path/to/redis.sock for the Redis backend.
    url: str = ""
    # Key prefix shared by every instance of one deployment on Redis.
    namespace: str = "plughook"
    # Seconds between heartbeats of an instance on shared storage; tasks of an
    # instance silent for three intervals are marked interrupted by another.
    heartbeat_interval: float = attrs.field(default=5.0, validator=positive)
    # Seconds an outbox message read by an instance that stopped responding
    # waits before another instance claims it and sends it again (Redis). It
    # must exceed the longest send of a channel.
    visibility_timeout: float = attrs.field(default=60.0, validator=positive)


@attrs.frozen
class OutboxSettings:
    """Retry policy of the outbox worker (exponential backoff with full jitter)."""

    base_delay: float = 1.0
    max_delay: float = 300.0
    max_attempts: int = 12
    max_age: float = 24 * 3600.0
    # Chats delivered to at the same time; messages of one chat stay in order.
    concurrency: int = 16


@attrs.frozen
class DeliverySettings:
    """Delivery log retention and duplicate-detection window."""

    retention_days: float = 7.0
    max_records: int = 10_000
    # Bodies are recorded up to this many bytes, the rest is cut.
    max_body_bytes: int = 64 * 1024
    # Whose bodies are recorded: "all", "failed" (non-2xx responses only) or
    # "none". Bodies are most of the log's cost; records without one cannot be
    # replayed.
    record_bodies: str = setting("all", choices=("all", "failed", "none"))
    dedupe_window_hours: float = 72.0
    # Seconds a delivery id stays claimed by a handler that never finished (its
    # instance died); a redelivery of that id meanwhile gets 409.
    claim_timeout: float = 600.0
    # Extra header names (beyond Authorization, cookies and signature headers)
    # whose values are never recorded.
    redact_headers: list[str] = attrs.field(factory=list)


@attrs.frozen
class Settings:
    """Everything in the config file except plugin tables."""

    data_dir: str = "./data"
    log_level: str = "INFO"
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    outbox: OutboxSettings = OutboxSettings()
    deliveries: DeliverySettings = DeliverySettings()
    # Channel for chat-key platforms without a [channels.<platform>] table.
    default_channel: str = "console"
    # Names of installed plugins the app leaves out: no endpoints, no settings checks.
    disabled_plugins: list[str] = attrs.field(factory=list)
    channels: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    plugins: dict[str, dict[str, Any]] = attrs.field(factory=dict)


def expand_env(value: Any, key: str = "", problems: list[tuple[str, str]] | None = None) -> Any:
    """Replace ``${NAME}`` in every string of ``value`` with the environment variable.

    A variable that is not set is added to ``problems`` under the dotted key
    of its string.
    """
    if problems is None:
        problems = []
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                problems.append((key, f"environment variable {name} is not set"))
                return ""
            return os.environ[name]

        return _ENV_PATTERN.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: expand_env(v, _child_key(key, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _child_key(key: str, name: object) -> str:
    return f"{key}.{toml_key(str(name))}" if key else toml_key(str(name))


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Yield the dotted key and text of every string in ``value``, tables and lists included."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from _strings(item, _child_key(key, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{key}[{index}]")


def env_references(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return the names of the environment variables that each string of ``data`` reads.

    The keys are dotted TOML keys, as in ``ConfigError`` problems.
    """
    references: dict[str, list[str]] = {}
    for key, text in _strings(data):
        names = _ENV_PATTERN.findall(text)
        if names:
            references[key] = names
    return references


def bare_env_references(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Return the dotted key and variable name of each string of ``value`` that is ``$NAME``.

    A string matches when all of it, or one of its comma-separated parts, is
    ``$NAME`` with an upper-case NAME. plughook reads only ``${NAME}``, so such
    a value is taken as literal text.
    """
    found = []
    for dotted, text in _strings(value, key):
        for part in text.split(","):
            match = _BARE_ENV_PATTERN.fullmatch(part.strip())
            if match is not None:
                found.append((dotted, match.group(1)))
    return found


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file; raise ``ConfigError`` with the position of a syntax error."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([("", f"config file {str(file)!r} not found")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("", f"config file {str(file)!r} is not valid TOML: {exc}")]) from None
    except OSError as exc:
        raise ConfigError(
            [("", f"cannot read config file {str(file)!r}: {exc.strerror}")]
        ) from None


def load_settings(data: Mapping[str, Any]) -> Settings:
    """Expand ``${ENV}`` references and structure ``data`` into ``Settings``."""
    problems: list[tuple[str, str]] = []
    expanded = expand_env(data, "", problems)
    if problems:
        raise ConfigError(problems)
    try:
        return structure_config(Settings, expanded, "")
    except ConfigError as exc:
        raise ConfigError(with_placement_hints(exc.problems)) from None


# Top-level keys whose value is a table of tables, each checked on its own.
_TABLES_OF_TABLES = frozenset({"channels", "plugins"})


def partial_settings(data: Mapping[str, Any]) -> tuple[Settings, list[tuple[str, str]]]:
    """Structure the valid part of ``data`` and return the settings and every problem.

    An invalid value is left at its default, and an unknown key is left
    out. An entry of ``channels`` or ``plugins`` that is not a table is left
    out too, so that the valid rest of the file can still be checked.
    """
    problems: list[tuple[str, str]] = []
    values = dict(data)
    for name in _TABLES_OF_TABLES & values.keys():
        tables = values[name]
        if not isinstance(tables, Mapping):
            continue
        valid = {}
        for entry, table in tables.items():
            try:
                structure_config(Settings, {name: {entry: table}}, "")
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            valid[entry] = table
        values[name] = valid
    settings, found = structure_partial(Settings, values, "")
    problems = with_placement_hints(problems + found)
    return settings if settings is not None else Settings(), problems


# The tables of settings, such as [server], by name.
_SETTINGS_TABLES: dict[str, type] = {
    name: hint for name, hint in typing.get_type_hints(Settings).items() if attrs.has(hint)
}
# The table that each setting of a settings table belongs in, such as "server" for "port".
_TABLE_OF_SETTING = {
    field.name: table for table, cls in _SETTINGS_TABLES.items() for field in attrs.fields(cls)
}
# Top-level settings that take a value rather than a table, such as data_dir.
_TOP_LEVEL_VALUES = tuple(
    field.name
    for field in attrs.fields(Settings)
    if field.name not in _SETTINGS_TABLES and field.name not in _TABLES_OF_TABLES
)


def placement_hint(key: str) -> str | None:
    """Return where the setting at the dotted ``key`` belongs, when it is a setting elsewhere.

    TOML puts every key below a table header into that table. So a
    top-level setting such as ``disabled_plugins`` written after ``[server]``
    is read as ``server.disabled_plugins``, and ``port`` written before the
    first table is read as a top-level key. Returns None for other keys.
    """
    table = _TABLE_OF_SETTING.get(key)
    if table is not None:
        return f"{key} is a setting of the [{table}] table, so put it under [{table}]"
    for name in _TOP_LEVEL_VALUES:
        if key.endswith(f".{name}"):
            return (
                f"{name} is a top-level setting, so put it at the top of the file, "
                "before the first table"
            )
    return None


def with_placement_hints(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return ``problems`` with the place of each unknown key that is a setting elsewhere.

    Only a plain "unknown setting" gets the hint. A suggested close name
    means the table has a setting much like the key, which is the likelier
    intent.
    """
    hinted = []
    for key, text in problems:
        hint = placement_hint(key) if text == UNKNOWN_SETTING else None
        hinted.append((key, text if hint is None else f"{text}; {hint}"))
    return hinted
