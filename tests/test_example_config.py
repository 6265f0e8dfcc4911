"""plughook.example.toml lists every setting, and its commented-out settings are valid.

The file comments out the settings and tables that need a secret or a chat
platform an operator may not use (``# key = value``, ``# [channels.feishu]``).
The tests read those lines as TOML too, so a setting counts as documented
whether it is active or commented out.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
import typing
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import core
import plugins
from core import Plugin, Settings
from core.channels import Channel, channel_kinds
from core.config import structure_config
from core.dingtalk import DingTalkOptions
from core.discord import DiscordOptions
from core.feishu import FeishuOptions
from core.http_channel import HttpChannelOptions
from core.onebot import OneBotV11Options
from core.settings import env_references, expand_env, load_settings
from core.telegram import TelegramOptions
from core.wecom import WeComOptions

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "plughook.example.toml"
READMES = [ROOT / "README.md", ROOT / "README.zh-CN.md"]
DEMO_CONFIG = ROOT / "examples" / "plughook.toml"
# The one token variable that the demo config and the example scripts share.
DEMO_TOKEN_VARIABLE = "PLUGHOOK_API_TOKEN"

# Options class of each channel kind. The console kind takes no setting but kind.
CHANNEL_OPTIONS: dict[str, type | None] = {
    "console": None,
    "onebot_v11": OneBotV11Options,
    "http": HttpChannelOptions,
    "feishu": FeishuOptions,
    "dingtalk": DingTalkOptions,
    "wecom": WeComOptions,
    "telegram": TelegramOptions,
    "discord": DiscordOptions,
}
# Values for the environment variables of the commented-out tables, where a
# channel checks the form: a bot token as @BotFather gives it and a base64
# Standard Webhooks key. Other variables get PLACEHOLDER.
ENVIRONMENT = {
    "TELEGRAM_BOT_TOKEN": "123456789:AAE-example",
    "RECEIVER_SECRET": "whsec_ZXhhbXBsZS1rZXk=",
}
PLACEHOLDER = "example-value"
# Types of the Settings fields. The attrs classes among them are the tables
# [server], [storage], [outbox] and [deliveries].
SETTINGS_TYPES = typing.get_type_hints(Settings)
SETTINGS_TABLES = [name for name, hint in SETTINGS_TYPES.items() if attrs.has(hint)]
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def table_path(header: str) -> list[str]:
    """Return the keys of a TOML table header such as ``[channels.feishu.bots.ops]``."""
    path = []
    table = tomllib.loads(header)
    while table:
        (key, table), *_ = table.items()
        path.append(key)
    return path


def table_at(root: dict[str, Any], path: list[str]) -> dict[str, Any]:
    table = root
    for key in path:
        table = table.setdefault(key, {})
    return table


def documented_settings(text: str) -> dict[str, Any]:
    """Parse the active and the commented-out TOML lines of ``text`` into one document.

    A comment line is commented-out TOML when its text after ``"# "`` parses
    as TOML: a table header or a ``key = value`` line. Prose does not parse,
    and ``"# # …"`` lines are comments inside a commented-out table. Keys go
    to the last table header above them, active or commented out.
    """
    document: dict[str, Any] = {}
    table = document
    for line in text.splitlines():
        source = line.removeprefix("# ")
        try:
            parsed = tomllib.loads(source)
        except tomllib.TOMLDecodeError:
            continue
        if source.startswith("["):
            table = table_at(document, table_path(source))
        else:
            table.update(parsed)
    return document


@pytest.fixture(scope="module")
def documented() -> dict[str, Any]:
    return documented_settings(EXAMPLE.read_text(encoding="utf-8"))


def missing_fields(config_class: type, keys: Collection[str]) -> list[str]:
    """Return the fields of ``config_class`` that are not among ``keys``."""
    return [field.name for field in attrs.fields(config_class) if field.name not in keys]


def bundled_plugins() -> Iterator[Plugin]:
    """Yield the plugin of each package under ``plugins/``."""
    for module in pkgutil.iter_modules(plugins.__path__, "plugins."):
        if module.ispkg:
            yield importlib.import_module(module.name).plugin


def channel_tables(documented: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Return the channel tables of ``kind`` by name. A table's kind defaults to its name."""
    return {
        name: table
        for name, table in documented["channels"].items()
        if table.get("kind", name) == kind
    }


def env_names(text: str) -> set[str]:
    return set(ENV_REFERENCE.findall(text))


def test_documented_settings_read_commented_lines() -> None:
    text = (
        "# Prose, not TOML.\n"
        "[server]\n"
        "host = 'a'\n"
        "# port = 1\n"
        "# [channels.ops]\n"
        "# # A comment inside the commented-out table.\n"
        "# url = 'u'\n"
    )

    document = documented_settings(text)

    assert document == {"server": {"host": "a", "port": 1}, "channels": {"ops": {"url": "u"}}}


@pytest.mark.parametrize("name", list(SETTINGS_TYPES))
def test_example_lists_setting(documented: dict[str, Any], name: str) -> None:
    assert name in documented, f"plughook.example.toml has no {name} setting or table"


@pytest.mark.parametrize("name", SETTINGS_TABLES)
def test_example_lists_table_fields(documented: dict[str, Any], name: str) -> None:
    table = documented.get(name, {})

    assert missing_fields(SETTINGS_TYPES[name], table) == []


@pytest.mark.parametrize("plugin", list(bundled_plugins()), ids=lambda plugin: plugin.name)
def test_example_lists_plugin_settings(documented: dict[str, Any], plugin: Plugin) -> None:
    assert plugin.config_class is not None
    table = documented["plugins"].get(plugin.name, {})

    assert missing_fields(plugin.config_class, table) == []


def test_channel_options_cover_every_kind() -> None:
    for module in pkgutil.iter_modules(core.__path__, "core."):
        importlib.import_module(module.name)

    assert sorted(channel_kinds()) == sorted(CHANNEL_OPTIONS)


@pytest.mark.parametrize("kind", [kind for kind, cls in CHANNEL_OPTIONS.items() if cls])
def test_example_lists_channel_settings(documented: dict[str, Any], kind: str) -> None:
    options_class = CHANNEL_OPTIONS[kind]
    assert options_class is not None
    tables = channel_tables(documented, kind)
    assert tables, f"plughook.example.toml has no [channels.*] table of kind {kind!r}"
    keys = {key for table in tables.values() for key in table}

    assert "kind" in keys
    assert missing_fields(options_class, keys) == []


@pytest.mark.parametrize(
    "kind",
    [kind for kind, cls in CHANNEL_OPTIONS.items() if cls and "bots" in attrs.fields_dict(cls)],
)
def test_example_lists_bot_settings(documented: dict[str, Any], kind: str) -> None:
    options_class = CHANNEL_OPTIONS[kind]
    assert options_class is not None
    bot_class = typing.get_args(typing.get_type_hints(options_class)["bots"])[1]
    bots = [
        bot
        for table in channel_tables(documented, kind).values()
        for bot in table.get("bots", {}).values()
    ]
    assert bots, f"plughook.example.toml has no bot table of kind {kind!r}"
    keys = {key for bot in bots for key in bot}

    assert missing_fields(bot_class, keys) == []


@pytest.fixture
def example_environment(documented: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Set every environment variable that the documented settings read."""
    for names in env_references(documented).values():
        for name in names:
            monkeypatch.setenv(name, ENVIRONMENT.get(name, PLACEHOLDER))


@pytest.mark.usefixtures("example_environment")
def test_commented_channel_tables_build(documented: dict[str, Any]) -> None:
    kinds = channel_kinds()

    for name, table in expand_env(documented["channels"]).items():
        options = dict(table)
        kind = options.pop("kind", name)
        assert isinstance(kinds[kind](name, options), Channel), name


@pytest.mark.usefixtures("example_environment")
@pytest.mark.parametrize("plugin", list(bundled_plugins()), ids=lambda plugin: plugin.name)
def test_commented_plugin_settings_valid(documented: dict[str, Any], plugin: Plugin) -> None:
    assert plugin.config_class is not None
    settings = load_settings(documented)

    config: object = structure_config(
        plugin.config_class, settings.plugins[plugin.name], f"plugins.{plugin.name}"
    )

    assert isinstance(config, plugin.config_class)


@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.name)
def test_readme_variables_match_example(readme: Path) -> None:
    blocks = TOML_BLOCK.findall(readme.read_text(encoding="utf-8"))
    used = set().union(*(env_names(block) for block in blocks))

    assert used - env_names(EXAMPLE.read_text(encoding="utf-8")) == set()


def test_demo_config_variables_match_example() -> None:
    example = env_names(EXAMPLE.read_text(encoding="utf-8"))
    demo = env_names(DEMO_CONFIG.read_text(encoding="utf-8"))

    assert demo - example == {DEMO_TOKEN_VARIABLE}
