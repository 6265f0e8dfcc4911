"""Settings files, environment expansion and strict config structuring."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import attrs
import pytest

from core import Plugin, Settings, WebhookApp, WebhookRequest
from core.config import redacted_repr, setting, structure_config, structure_partial, toml_key
from core.errors import ConfigError
from core.settings import (
    bare_env_references,
    env_references,
    load_settings,
    partial_settings,
    read_config_file,
)
from core.testing import WebhookTestClient


@attrs.frozen
class Sample:
    NAMES: list[str] = setting([])
    LIMIT: int = setting(3)
    RATIO: float = setting(0.5)
    ENABLED: bool = setting(False)
    TOKEN: str = setting("", secret=True)


def problems(values: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        structure_config(Sample, values, "plugins.sample")
    return info.value.problems


def test_string_for_list_is_rejected() -> None:
    assert problems({"NAMES": "abc"}) == [("plugins.sample.NAMES", "expected a list, got str")]


def test_bool_for_int_is_rejected() -> None:
    assert problems({"LIMIT": True}) == [("plugins.sample.LIMIT", "expected int, got bool")]


def test_int_for_float_is_accepted() -> None:
    assert structure_config(Sample, {"RATIO": 1}, "p").RATIO == 1.0


def test_default_list_is_not_shared() -> None:
    first = structure_config(Sample, {}, "p")
    second = structure_config(Sample, {}, "p")
    assert first.NAMES is not second.NAMES


def test_redacted_repr_hides_only_set_secrets() -> None:
    assert "TOKEN=''" in redacted_repr(Sample())
    assert "TOKEN='***'" in redacted_repr(Sample(TOKEN="x"))


def test_env_references_are_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOOK_TEST_SECRET", "from-env")
    settings = load_settings({"plugins": {"p": {"SECRET": "${PLUGHOOK_TEST_SECRET}"}}})
    assert settings.plugins["p"]["SECRET"] == "from-env"


def test_missing_env_reference_names_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGHOOK_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings({"server": {"public_url": "${PLUGHOOK_TEST_UNSET}"}})
    assert info.value.problems == [
        ("server.public_url", "environment variable PLUGHOOK_TEST_UNSET is not set")
    ]


def test_missing_env_reference_quotes_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGHOOK_TEST_UNSET", raising=False)
    bots = {"运维群": {"secret": "${PLUGHOOK_TEST_UNSET}"}}
    with pytest.raises(ConfigError) as info:
        load_settings({"channels": {"feishu": {"bots": bots}}})
    assert info.value.problems == [
        (
            'channels.feishu.bots."运维群".secret',
            "environment variable PLUGHOOK_TEST_UNSET is not set",
        )
    ]


def test_env_references_are_listed_by_key() -> None:
    data = {"plugins": {"p": {"TOKEN": "${A}-${B}", "CHAT": "ops"}}, "log_level": "${A}"}
    assert env_references(data) == {"plugins.p.TOKEN": ["A", "B"], "log_level": ["A"]}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"plugins": {"p": {"TOKEN": "$API_TOKEN"}}}, [("plugins.p.TOKEN", "API_TOKEN")]),
        ({"plugins": {"p": {"CHAT": "console-ops, $OPS_CHAT"}}}, [("plugins.p.CHAT", "OPS_CHAT")]),
        (
            {"deliveries": {"redact_headers": ["$KEY_HEADER"]}},
            [("deliveries.redact_headers[0]", "KEY_HEADER")],
        ),
        ({"channels": {"飞书": {"secret": " $_S1 "}}}, [('channels."飞书".secret', "_S1")]),
    ],
)
def test_bare_env_reference_is_found(data: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert bare_env_references(data) == expected


@pytest.mark.parametrize(
    "value", ["${API_TOKEN}", "$api_token", "pa$WORD", "$1TOKEN", "$API-TOKEN", "$", "$$API_TOKEN"]
)
def test_other_dollar_text_is_not_env_reference(value: str) -> None:
    assert bare_env_references({"plugins": {"p": {"TOKEN": value}}}) == []


def test_unknown_table_is_reported() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"sever": {"port": 1}})
    assert info.value.problems == [("sever", "unknown setting; did you mean 'server'?")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"plugin": {"status": {}}}, ("plugin", "unknown setting; did you mean 'plugins'?")),
        ({"server": {"prot": 1}}, ("server.prot", "unknown setting; did you mean 'port'?")),
        ({"LOG_LEVEL": "INFO"}, ("LOG_LEVEL", "unknown setting; did you mean 'log_level'?")),
        ({"colour": "red"}, ("colour", "unknown setting")),
    ],
)
def test_unknown_settings_key_suggests_name(
    data: dict[str, Any], expected: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(data)
    assert caught.value.problems == [expected]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"LIMT": 1}, ("plugins.sample.LIMT", "unknown setting; did you mean 'LIMIT'?")),
        ({"token": "x"}, ("plugins.sample.token", "unknown setting; did you mean 'TOKEN'?")),
        ({"COLOUR": "red"}, ("plugins.sample.COLOUR", "unknown setting")),
    ],
)
def test_unknown_plugin_setting_suggests_name(
    values: dict[str, object], expected: tuple[str, str]
) -> None:
    assert problems(values) == [expected]


TOP_OF_FILE = "is a top-level setting, so put it at the top of the file, before the first table"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"server": {"disabled_plugins": ["status"]}},
            ("server.disabled_plugins", f"unknown setting; disabled_plugins {TOP_OF_FILE}"),
        ),
        (
            {"storage": {"data_dir": "/srv/plughook"}},
            ("storage.data_dir", f"unknown setting; data_dir {TOP_OF_FILE}"),
        ),
        (
            {"port": 8021},
            (
                "port",
                "unknown setting; port is a setting of the [server] table, so put it under "
                "[server]",
            ),
        ),
        (
            {"max_attempts": 3},
            (
                "max_attempts",
                "unknown setting; max_attempts is a setting of the [outbox] table, so put it under "
                "[outbox]",
            ),
        ),
    ],
)
def test_misplaced_setting_names_its_place(data: dict[str, Any], expected: tuple[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(data)
    assert caught.value.problems == [expected]


def test_partial_settings_name_place_of_setting() -> None:
    _, found = partial_settings({"server": {"port": 8021, "log_level": "DEBUG"}})
    assert found == [("server.log_level", f"unknown setting; log_level {TOP_OF_FILE}")]


def test_top_level_setting_in_plugin_table_names_place(tmp_path: Path) -> None:
    app = WebhookApp([chatty], {"chatty": {"disabled_plugins": ["chatty"]}}, data_dir=tmp_path)
    _, found = app.config_problems()
    assert found == [
        ("plugins.chatty.disabled_plugins", f"unknown setting; disabled_plugins {TOP_OF_FILE}")
    ]


def test_top_level_setting_in_channel_table_names_place(tmp_path: Path) -> None:
    data = {"channels": {"http": {**HTTP, "default_channel": "http"}}}
    assert settings_and_channel_problems(tmp_path, data) == [
        ("channels.http.default_channel", f"unknown setting; default_channel {TOP_OF_FILE}")
    ]


def test_misspelt_required_setting_is_one_problem(tmp_path: Path) -> None:
    data = {"channels": {"http": {"kind": "http", "urll": "http://127.0.0.1:9/chat"}}}
    assert settings_and_channel_problems(tmp_path, data) == [
        ("channels.http.urll", "unknown setting; did you mean 'url'?")
    ]


def test_unknown_plugin_table_suggests_loaded_plugin(tmp_path: Path) -> None:
    app = WebhookApp([chatty], {"chaty": {}}, data_dir=tmp_path)
    [(key, problem)] = app.unknown_plugin_tables()
    assert key == "plugins.chaty"
    assert problem.endswith("; did you mean 'chatty'?")


def test_disabled_plugin_serves_no_endpoint(tmp_path: Path) -> None:
    settings = Settings(disabled_plugins=["chatty"])
    app = WebhookApp([chatty], settings=settings, data_dir=tmp_path)
    assert app.plugins == {}
    assert list(app.router.endpoints()) == []


def test_disabled_plugin_table_is_not_unknown(tmp_path: Path) -> None:
    settings = Settings(disabled_plugins=["chatty"], plugins={"chatty": {"NOT_A_SETTING": 1}})
    app = WebhookApp([chatty], settings=settings, data_dir=tmp_path)
    assert app.unknown_plugin_tables() == []


def test_disabled_plugin_settings_are_not_checked(tmp_path: Path) -> None:
    settings = Settings(disabled_plugins=["chatty"], plugins={"chatty": {"NOT_A_SETTING": 1}})
    app = WebhookApp([chatty], settings=settings, data_dir=tmp_path)
    _, found = app.config_problems()
    assert found == []


def test_disabled_name_of_no_plugin_suggests_one(tmp_path: Path) -> None:
    settings = Settings(disabled_plugins=["chaty"])
    app = WebhookApp([chatty], settings=settings, data_dir=tmp_path)
    [(key, problem)] = app.unknown_plugin_tables()
    assert key == "disabled_plugins[0]"
    assert problem.endswith("; did you mean 'chatty'?")


def test_partial_settings_keep_valid_tables() -> None:
    data = {
        "server": {"port": "8021"},
        "outbox": {"max_attempts": 3},
        "plugins": {"broken": 5, "fine": {"X": 1}},
    }
    settings, found = partial_settings(data)
    assert [key for key, _ in found] == ["plugins.broken", "server.port"]
    assert settings.server.port == 8021
    assert settings.outbox.max_attempts == 3
    assert settings.plugins == {"fine": {"X": 1}}


def test_structure_partial_keeps_valid_settings() -> None:
    config, found = structure_partial(Sample, {"LIMIT": "7", "RATIO": 2, "COLOUR": "red"}, "p")
    assert [key for key, _ in found] == ["p.LIMIT", "p.COLOUR"]
    assert config == Sample(RATIO=2.0)


def test_structure_partial_of_non_table_is_none() -> None:
    assert structure_partial(Sample, 5, "p") == (None, [("p", "expected a table, got int")])


HTTP = {"kind": "http", "url": "http://127.0.0.1:9/chat"}


def settings_and_channel_problems(tmp_path: Path, data: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the problems of loading ``data`` and building its channels."""
    try:
        settings = load_settings(data)
        WebhookApp([], settings=settings, data_dir=tmp_path).channel_router()
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"channels": {"http": {"kind": "http"}}},
            ("channels.http.url", "required setting is missing"),
        ),
        (
            {"channels": {"onebot_v11": {"access_token": "t"}}},
            ("channels.onebot_v11.api_url", "required setting is missing"),
        ),
        (
            {"channels": {"http": {**HTTP, "headers": "Bearer x"}}},
            ("channels.http.headers", "expected a table, got str"),
        ),
        (
            {"channels": {"http": {**HTTP, "headers": {"X-Key": 1}}}},
            ("channels.http.headers.X-Key", "expected str, got int"),
        ),
        ({"channels": {"http": 5}}, ("channels.http", "expected a table, got int")),
        ({"channels": "http"}, ("channels", "expected a table, got str")),
        ({"plugins": {"status": "on"}}, ("plugins.status", "expected a table, got str")),
        ({"server": 8021}, ("server", "expected a table, got int")),
        ({"server": [8021]}, ("server", "expected a table, got list")),
        (
            {"deliveries": {"redact_headers": ["X-Key", 1]}},
            ("deliveries.redact_headers[1]", "expected str, got int"),
        ),
    ],
)
def test_structure_problems_read_plainly(
    tmp_path: Path, data: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert settings_and_channel_problems(tmp_path, data) == [expected]


@attrs.frozen
class Validated:
    CODE: str = attrs.field(default="a", validator=attrs.validators.matches_re("[a-z]+"))


def test_attrs_validator_problem_names_field_not_value() -> None:
    with pytest.raises(ConfigError) as caught:
        structure_config(Validated, {"CODE": "SECRET-1"}, "plugins.p")
    assert caught.value.problems == [("plugins.p.CODE", "invalid value of type str")]


def test_invalid_toml_names_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nport = \n")
    with pytest.raises(ConfigError, match="line 2"):
        read_config_file(path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "missing.toml")


@pytest.mark.parametrize("key", ["heartbeat_interval", "visibility_timeout"])
@pytest.mark.parametrize("value", [0, -1.5])
def test_storage_durations_must_be_positive(key: str, value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"storage": {key: value}})
    assert caught.value.problems == [
        (f"storage.{key}", f"expected a number greater than 0, got {float(value)!r}")
    ]


def test_storage_visibility_timeout_is_read() -> None:
    settings = load_settings({"storage": {"visibility_timeout": 5}})
    assert settings.storage.visibility_timeout == 5.0


def slow_channel_app(tmp_path: Path, backend: str) -> WebhookApp:
    settings = load_settings(
        {
            "storage": {
                "backend": backend,
                "url": "redis://127.0.0.1:6379/0",
                "visibility_timeout": 3.0,
            },
            "channels": {"onebot_v11": {"api_url": "http://127.0.0.1:9", "timeout": 10.0}},
        }
    )
    return WebhookApp([], settings=settings, data_dir=tmp_path)


def test_short_visibility_timeout_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        slow_channel_app(tmp_path, "redis").channel_router()
    [(key, message)] = caught.value.problems
    assert key == "storage.visibility_timeout"
    assert "channels.onebot_v11.timeout (10 s)" in message


def test_visibility_timeout_ignored_on_sqlite(tmp_path: Path) -> None:
    router = slow_channel_app(tmp_path, "sqlite").channel_router()
    assert router.for_chat("onebot_v11-group_1").send_timeout == 10.0


@pytest.mark.parametrize("name", ["ops", "Ops_2", "night-shift", "0"])
def test_bare_toml_key_is_kept(name: str) -> None:
    assert toml_key(name) == name


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("运维群", '"运维群"'),
        ("a.b", '"a.b"'),
        ("on call", '"on call"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\ops", '"C:\\\\ops"'),
        ("tab\there", '"tab\\there"'),
        ("\x01\x7f", '"\\u0001\\u007F"'),
        ("", '""'),
    ],
)
def test_other_toml_keys_are_quoted(name: str, quoted: str) -> None:
    assert toml_key(name) == quoted


@pytest.mark.parametrize(
    "name", ["运维群", "ops", 'a "b" \\ c', "line\nbreak", "\x00\x1f\x7f\b\f\r", "é", ""]
)
def test_quoted_toml_key_reads_back_as_the_name(name: str) -> None:
    text = f'[channels.feishu.bots.{toml_key(name)}]\nwebhook_url = "x"\n'
    assert tomllib.loads(text) == {"channels": {"feishu": {"bots": {name: {"webhook_url": "x"}}}}}


def test_unknown_setting_key_is_quoted() -> None:
    assert problems({"名字": 1}) == [('plugins.sample."名字"', "unknown setting")]


ONEBOT_TABLE = {"api_url": "http://127.0.0.1:9"}


def test_channel_table_named_near_kind_suggests_it(tmp_path: Path) -> None:
    data = {"channels": {"onebot": ONEBOT_TABLE}}
    [(key, problem)] = settings_and_channel_problems(tmp_path, data)
    assert key == "channels.onebot.kind"
    assert problem.startswith("unknown channel kind 'onebot'; did you mean 'onebot_v11'? ")
    assert "rename it to [channels.onebot_v11]" in problem
    assert "or add kind = \"onebot_v11\" to keep 'onebot' as the platform" in problem


def test_channel_kind_typo_suggests_kind(tmp_path: Path) -> None:
    data = {"channels": {"qq": {"kind": "onebotv11", **ONEBOT_TABLE}}}
    assert settings_and_channel_problems(tmp_path, data) == [
        ("channels.qq.kind", "unknown channel kind 'onebotv11'; did you mean 'onebot_v11'?")
    ]


def test_channel_table_named_far_from_kinds_needs_kind(tmp_path: Path) -> None:
    data = {"channels": {"ops": {"url": "http://127.0.0.1:9/chat"}}}
    [(_, problem)] = settings_and_channel_problems(tmp_path, data)
    assert problem.startswith("unknown channel kind 'ops'; known kinds: console, ")
    assert "did you mean" not in problem
    assert problem.endswith("add kind = \"…\" with one of them to keep the name 'ops'")


def test_missing_default_channel_hint_quotes_name(tmp_path: Path) -> None:
    settings = load_settings({"default_channel": "飞书"})
    with pytest.raises(ConfigError) as caught:
        WebhookApp([], settings=settings, data_dir=tmp_path).channel_router()
    assert caught.value.problems == [("default_channel", 'no [channels."飞书"] table')]


chatty = Plugin("chatty", version="1")


@chatty.mount_config()
class ChattyConfig:
    NOTIFY: str = setting("", chat_keys=True)
    NOTE: str = setting("not-a-chat-key")


FEISHU_CHANNEL = {
    "kind": "feishu",
    "bots": {"运维群": {"webhook_url": "http://127.0.0.1:9/open-apis/bot/v2/hook/x"}},
}
ONEBOT_CHANNEL = {"kind": "onebot_v11", "api_url": "http://127.0.0.1:9"}


def chatty_app(tmp_path: Path, notify: str) -> WebhookApp:
    settings = Settings(channels={"feishu": FEISHU_CHANNEL, "onebot_v11": ONEBOT_CHANNEL})
    config = {"chatty": {"NOTIFY": notify}}
    return WebhookApp([chatty], config, settings=settings, data_dir=tmp_path)


def test_chat_key_naming_unknown_bot_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        chatty_app(tmp_path, "feishu-运维群, feishu-运维").check_config()
    [(key, problem)] = caught.value.problems
    assert key == "plugins.chatty.NOTIFY"
    assert "no bot named '运维' for chat key 'feishu-运维' (configured: 运维群)" in problem
    assert '[channels.feishu.bots."运维"]' in problem


def test_malformed_chat_key_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        chatty_app(tmp_path, "onebotv11group").check_config()
    [(key, problem)] = caught.value.problems
    assert key == "plugins.chatty.NOTIFY"
    assert problem.startswith("invalid chat key 'onebotv11group'")


def test_onebot_target_without_kind_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        chatty_app(tmp_path, "onebot_v11-123456").check_config()
    [(key, problem)] = caught.value.problems
    assert key == "plugins.chatty.NOTIFY"
    assert "expected a target 'group_<group id>' or 'private_<user id>'" in problem


def test_platform_typo_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        chatty_app(tmp_path, "onebotv11-group_1").check_config()
    [(key, problem)] = caught.value.problems
    assert key == "plugins.chatty.NOTIFY"
    assert problem == (
        "chat key 'onebotv11-group_1' names platform 'onebotv11', which has no "
        "[channels.onebotv11] table; did you mean 'onebot_v11'?"
    )


def test_chat_key_of_invalid_channel_is_not_checked(tmp_path: Path) -> None:
    settings = Settings(channels={"onebot_v11": {"api_url": "ftp://x"}})
    config = {"chatty": {"NOTIFY": "onebot_v11-123"}}
    app = WebhookApp([chatty], config, settings=settings, data_dir=tmp_path)
    _, found = app.config_problems()
    assert [key for key, _ in found] == ["channels.onebot_v11.api_url"]


def test_chat_keys_checked_beside_invalid_setting(tmp_path: Path) -> None:
    settings = Settings(channels={"onebot_v11": ONEBOT_CHANNEL})
    config = {"chatty": {"NOTIFY": "onebotv11-group_1", "NOTE": 5}}
    app = WebhookApp([chatty], config, settings=settings, data_dir=tmp_path)
    _, found = app.config_problems()
    assert [key for key, _ in found] == ["plugins.chatty.NOTE", "plugins.chatty.NOTIFY"]


def test_problem_on_skipped_key_is_left_out(tmp_path: Path) -> None:
    settings = Settings(channels={"ops": {"kind": "http", "url": ""}}, default_channel="ops")
    app = WebhookApp([chatty], {}, settings=settings, data_dir=tmp_path)
    _, found = app.config_problems(skip={"channels.ops.url"})
    assert found == []


def test_chat_key_without_channel_table_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configs = chatty_app(tmp_path, "telegram-12345, console-ops").check_config()
    assert configs["chatty"].NOTIFY == "telegram-12345, console-ops"
    [warning] = [r.getMessage() for r in caplog.records if "no [channels." in r.getMessage()]
    assert warning == (
        "plugins.chatty.NOTIFY names chat telegram-12345, but no [channels.telegram] "
        "table is configured, so its messages go to the console channel"
    )


@pytest.mark.anyio
async def test_test_client_does_not_warn_about_chat_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {"chatty": {"NOTIFY": "onebot_v11-group_1"}}
    async with WebhookTestClient([chatty], config):
        pass
    assert not [r for r in caplog.records if "no [channels." in r.getMessage()]


class TokenOnSomeMethods:
    """A verifier that needs ``TOKEN`` for every method but ``unchecked_methods``."""

    secret_field = "TOKEN"

    def __init__(self, *unchecked: str) -> None:
        self.unchecked_methods = frozenset(unchecked)

    async def __call__(self, request: WebhookRequest, plugin: Plugin) -> None:
        """Let every request through, because these tests only read the start-up warnings."""


guarded = Plugin("guarded", version="1")


@guarded.mount_config()
class GuardedConfig:
    TOKEN: str = setting("", secret=True)


async def _respond() -> dict[str, str]:
    return {}


guarded.mount_webhook("/all", methods=["POST"], verify=TokenOnSomeMethods())(_respond)
guarded.mount_webhook("/read", methods=["GET", "POST"], verify=TokenOnSomeMethods("GET"))(_respond)
guarded.mount_webhook("/any", verify=TokenOnSomeMethods("GET", "HEAD"))(_respond)
guarded.mount_webhook("/public", methods=["GET"], verify=TokenOnSomeMethods("GET", "HEAD"))(
    _respond
)


def secret_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture, token: str) -> list[str]:
    """Return the start-up warnings about unset secrets of the guarded plugin."""
    app = WebhookApp([guarded], {"guarded": {"TOKEN": token}}, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="plughook"):
        app.warn_unconfigured_secrets(app.check_config())
    return [r.getMessage() for r in caplog.records if "returns 503" in r.getMessage()]


def test_unset_secret_warning_names_checked_methods(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert secret_warnings(tmp_path, caplog, "") == [
        "endpoint guarded/all returns 503 until plugins.guarded.TOKEN is set",
        "endpoint guarded/any returns 503 to methods other than GET, HEAD "
        "until plugins.guarded.TOKEN is set",
        # guarded/public lets every method it allows through unchecked, so it is not listed.
        # HEAD is allowed wherever GET is, and the verifier of guarded/read checks it.
        "endpoint guarded/read returns 503 to HEAD, POST until plugins.guarded.TOKEN is set",
    ]


def test_set_secret_gives_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert secret_warnings(tmp_path, caplog, "set") == []


def test_unset_secret_warning_skips_invalid_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = WebhookApp([guarded], {"guarded": {"TOKEN": ""}}, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="plughook"):
        app.warn_unconfigured_secrets(app.check_config(), skip={"plugins.guarded.TOKEN"})
    assert not [r for r in caplog.records if "returns 503" in r.getMessage()]


def test_unset_secret_warning_names_empty_variables(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    references = {"plugins.guarded.TOKEN": ["TOKEN_A", "TOKEN_B", "TOKEN_A"]}
    app = WebhookApp(
        [guarded], {"guarded": {"TOKEN": ""}}, data_dir=tmp_path, env_references=references
    )
    with caplog.at_level(logging.WARNING, logger="plughook"):
        app.warn_unconfigured_secrets(app.check_config())
    assert caplog.records[0].getMessage() == (
        "endpoint guarded/all returns 503 until plugins.guarded.TOKEN is set "
        "(it reads ${TOKEN_A} and ${TOKEN_B}, which are empty)"
    )


relay = Plugin("relay", version="1")


@relay.mount_config()
class RelayConfig:
    ALERTS: str = setting("", chat_keys=True)
    REPORTS: str = setting("console-ops", chat_keys=True)


def chat_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, plugin: Plugin, config: dict[str, Any]
) -> list[str]:
    """Return the start-up warnings about empty chat settings of ``plugin``."""
    app = WebhookApp([plugin], config, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="plughook"):
        app.warn_unset_chat_settings(app.check_config())
    return [r.getMessage() for r in caplog.records if "chat messages" in r.getMessage()]


def test_empty_chat_setting_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert chat_warnings(tmp_path, caplog, chatty, {"chatty": {"NOTIFY": " , "}}) == [
        "plugin chatty sends no chat messages until plugins.chatty.NOTIFY is set"
    ]


def test_chat_setting_warning_skips_invalid_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = WebhookApp([chatty], {"chatty": {"NOTIFY": ""}}, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="plughook"):
        app.warn_unset_chat_settings(app.check_config(), skip={"plugins.chatty.NOTIFY"})
    assert not [r for r in caplog.records if "chat messages" in r.getMessage()]


def test_set_chat_setting_gives_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert chat_warnings(tmp_path, caplog, chatty, {"chatty": {"NOTIFY": "console-ops"}}) == []


def test_empty_chat_setting_beside_set_one_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert chat_warnings(tmp_path, caplog, relay, {}) == [
        "plugin relay sends none of the chat messages meant for plugins.relay.ALERTS "
        "until it is set"
    ]
