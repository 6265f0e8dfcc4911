"""WebhookApp: runs plugins, dispatches requests, owns storage, outbox and tasks."""

from __future__ import annotations

import asyncio
import difflib
import itertools
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import anyio
from anyio.abc import TaskGroup

from .channels import Channel, ConsoleChannel, channel_kinds, split_chat_key
from .config import (
    chat_key_settings,
    closest_name,
    describe_config,
    structure_partial,
    toml_key,
)
from .deadlines import Deadlines
from .deliveries import DeliveryLog
from .errors import BadRequest, ConfigError, HTTPError, ServiceUnavailable, UnverifiedReplay
from .outbox import ChannelRouter, Outbox
from .plugin import Plugin
from .records import DeliveryRecord
from .request import DEFAULT_MAX_BODY_SIZE, WebhookRequest
from .response import InvalidResult, WebhookResponse, error_response, json_response, to_response
from .routing import Endpoint, Router, webhook_url
from .runtime import current_app_var, current_plugin_var
from .settings import Settings, with_placement_hints
from .store import PluginStore, Storage
from .tasks import PluginTasks, TaskManager
from .writer import BatchWriter

__all__ = ["EarlyResponder", "WebhookApp"]

logger = logging.getLogger("plughook")
# Requests with these methods read state and deliver nothing, so a success is
# not logged: a script polling a status endpoint would otherwise push real
# deliveries out of the log. A failed one (4xx, 5xx) and a replay still are.
UNLOGGED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Sends a response to the client at once, while the handler goes on.
EarlyResponder = Callable[[WebhookResponse], None]

_MAINTENANCE_KEY = ("__plughook__", "", "", "maintenance")
# Seconds the maintenance flag is cached between reads from storage.
MAINTENANCE_REFRESH = 1.0
# An instance on shared storage counts as dead after missing this many heartbeats.
HEARTBEAT_MISSES = 3
# Headers that carry a delivery id when the endpoint names none.
DELIVERY_ID_HEADERS = ("X-GitHub-Delivery", "webhook-id", "Idempotency-Key")


class WebhookApp:
    """The plughook application: plugins, their configuration, storage and workers.

    Use ``async with app.running():`` around serving; ``await app.handle(request)``
    returns the response to one webhook request.
    """

    def __init__(
        self,
        plugins: Iterable[Plugin] = (),
        config: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        settings: Settings | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        store: Storage | None = None,
        channels: Mapping[str, Channel] | None = None,
        default_channel: Channel | None = None,
        clock: Callable[[], float] = time.time,
        env_references: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        plugins = list(plugins)
        self._disabled = frozenset(self.settings.disabled_plugins)
        # Every plugin name passed in, disabled ones included: the names that
        # disabled_plugins may list.
        self._all_plugin_names = sorted(plugin.name for plugin in plugins)
        self.router = Router(plugin for plugin in plugins if plugin.name not in self._disabled)
        self.plugins = self.router.plugins
        self._raw_config = dict(config if config is not None else self.settings.plugins)
        # Names of the environment variables that each setting's string reads,
        # by dotted key (core.settings.env_references), for the warnings.
        self._env_references = dict(env_references or {})
        # Set once a caller has reported the tables of plugins not loaded itself.
        self._unknown_tables_reported = False
        self.data_dir = Path(data_dir if data_dir is not None else self.settings.data_dir)
        self.instance_id = uuid.uuid4().hex[:12]
        self.storage = store if store is not None else self._default_storage()
        self.clock = clock
        self._channel_overrides = channels
        self._default_channel = default_channel
        self._configs: dict[str, Any] = {}
        self._stores = {name: PluginStore(self.storage, name) for name in self.plugins}
        self.writer = BatchWriter(self.storage)
        self.tasks = TaskManager(self, self.storage, self.writer, self.instance_id)
        self._plugin_tasks = {name: PluginTasks(self.tasks, name) for name in self.plugins}
        self.outbox: Outbox | None = None
        self.deliveries = DeliveryLog(self)
        self.maintenance = False
        # When the maintenance flag was last read from storage (monotonic).
        self._maintenance_read_at = 0.0
        self.serving = False
        self.started_at = 0.0
        self._task_group: TaskGroup | None = None
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._deadlines = Deadlines()
        self._generated_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<WebhookApp plugins={sorted(self.plugins)} storage={self.storage!r}>"

    def _default_storage(self) -> Storage:
        backend = self.settings.storage.backend
        if backend == "sqlite":
            from .sqlite import SQLiteStorage

            return SQLiteStorage(self.data_dir / "plughook.sqlite3")
        if backend == "memory":
            from .store import MemoryStorage

            return MemoryStorage()
        if backend == "redis":
            from .redis import RedisStorage

            storage: Storage = RedisStorage(
                self.settings.storage.url,
                namespace=self.settings.storage.namespace,
                delivery_ttl=self.settings.deliveries.retention_days * 86400,
                visibility_timeout=self.settings.storage.visibility_timeout,
                consumer=self.instance_id,
            )
            return storage
        raise ConfigError(
            [("storage.backend", f"unknown backend {backend!r}; use sqlite or redis")]
        )

    # Plugin-facing accessors.
    def plugin_config(self, name: str) -> Any:
        """Return the structured configuration of plugin ``name``."""
        try:
            return self._configs[name]
        except KeyError:
            if name not in self.plugins:
                raise KeyError(f"plugin {name!r} is not loaded in this app") from None
            msg = "plugin configuration is structured when the app starts; use app.running()"
            raise RuntimeError(msg) from None

    def plugin_store(self, name: str) -> PluginStore:
        """Return the key-value store of plugin ``name``."""
        return self._stores[name]

    def plugin_tasks(self, name: str) -> PluginTasks:
        """Return the task view of plugin ``name``."""
        return self._plugin_tasks[name]

    def url_for(self, plugin: str, path: str) -> str:
        """Return the public URL of an endpoint, from ``server.public_url`` when set."""
        server = self.settings.server
        base = server.public_url or f"http://{_url_host(server.host)}:{server.port}"
        return webhook_url(base, plugin, path)

    # Start-up and shutdown.
    def check_config(self) -> dict[str, Any]:
        """Structure every plugin's config; raise one ``ConfigError`` listing all problems."""
        configs, problems = self.config_problems()
        if problems:
            raise ConfigError(problems)
        return configs

    def config_problems(
        self, skip: Collection[str] = ()
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Structure every plugin's config and check the channels and chat keys.

        Returns the plugins' configs and every problem found. An invalid
        setting is left at its default, so that the valid ones can still be
        checked, and a config with such a setting must not run. ``skip``
        lists the dotted keys of problems found before in the settings. A
        later problem on one of those keys follows from the first, so it is
        left out. A plugin or channel table among them is not checked, and
        neither are the chat keys that name such a channel.
        """
        problems: list[tuple[str, str]] = []
        configs: dict[str, Any] = {}
        for name, plugin in self.plugins.items():
            key = f"plugins.{toml_key(name)}"
            if key in skip:
                continue
            values = self._raw_config.get(name, {})
            if plugin.config_class is None:
                if values:
                    problems.append((key, "this plugin takes no settings"))
                configs[name] = None
                continue
            config, found = structure_partial(plugin.config_class, values, key)
            problems.extend(with_placement_hints(found))
            if config is not None:
                configs[name] = config
        for name in self._raw_config:
            if (
                name not in self.plugins
                and name not in self._disabled
                and not self._unknown_tables_reported
            ):
                logger.warning(
                    "config has a [plugins.%s] table but no such plugin is loaded", toml_key(name)
                )
        router, channel_problems, failed = self._channels(skip)
        problems.extend(channel_problems)
        if "channels" not in skip:
            problems.extend(self._chat_key_problems(configs, router, failed | set(skip)))
        return configs, [(key, text) for key, text in problems if key not in skip]

    def _chat_key_problems(
        self, configs: dict[str, Any], router: ChannelRouter, failed: Collection[str] = ()
    ) -> list[tuple[str, str]]:
        """Check the chat keys in plugin settings marked ``chat_keys=True`` against the channels.

        A key no channel can ever deliver to (malformed, a target the channel
        cannot address, or a bot no table defines) is a problem. So is a key
        whose platform has no channel table but a name close to a configured
        platform's (a typo). Any other key without a channel table goes to the
        default channel, which is logged as a warning. A key whose platform's
        table key (``channels.<platform>``) is in ``failed`` is not checked.
        """
        problems: list[tuple[str, str]] = []
        for name, config in configs.items():
            if config is None:
                continue
            for field, keys in chat_key_settings(config):
                key = f"plugins.{toml_key(name)}.{field}"
                for chat_key in keys:
                    try:
                        platform, _ = split_chat_key(chat_key)
                    except ValueError as exc:
                        problems.append((key, str(exc)))
                        continue
                    if f"channels.{toml_key(platform)}" in failed:
                        continue
                    channel = router.channels.get(platform)
                    if channel is None and router.warn_fallback:
                        close = difflib.get_close_matches(platform, list(router.channels), n=1)
                        if close:
                            # So close to a configured platform's name that it is
                            # most likely a typo, not a chat meant for the default.
                            problems.append(
                                (
                                    key,
                                    f"chat key {chat_key!r} names platform {platform!r}, which "
                                    f"has no [channels.{toml_key(platform)}] table; did you mean "
                                    f"{close[0]!r}?",
                                )
                            )
                            continue
                    if channel is None:
                        if router.warn_fallback and platform != router.default.name:
                            logger.warning(
                                "%s names chat %s, but no [channels.%s] table is configured, "
                                "so its messages go to the %s channel",
                                key,
                                chat_key,
                                toml_key(platform),
                                router.default.name,
                            )
                        continue
                    problem = channel.chat_problem(chat_key)
                    if problem is not None:
                        problems.append((key, problem))
        return problems

    def unknown_plugin_tables(self) -> list[tuple[str, str]]:
        """Return a problem for each plugin name in the config that names no loaded plugin.

        These are ``[plugins.<name>]`` tables and entries of
        ``disabled_plugins``. The table of a disabled plugin is kept for when
        it is enabled again, unchecked. The app itself only warns about
        unknown tables, so that tests can share one config between apps. The
        command line treats them as errors, because there they are usually a
        misspelled plugin name. After this call the app no longer logs its
        own warning about them.
        """
        self._unknown_tables_reported = True
        all_names = self._all_plugin_names
        loaded = ", ".join(all_names) or "none"
        problems = []
        for index, name in enumerate(self.settings.disabled_plugins):
            if name in all_names:
                continue
            close = closest_name(name, all_names)
            advice = f"; did you mean {close!r}?" if close is not None else ""
            problems.append(
                (
                    f"disabled_plugins[{index}]",
                    f"no plugin named {name!r} is loaded (loaded plugins: {loaded}){advice}",
                )
            )
        loaded = ", ".join(sorted(self.plugins)) or "none"
        for name in self._raw_config:
            if name in self.plugins or name in self._disabled:
                continue
            close = closest_name(name, self.plugins)
            if close is not None:
                advice = f"did you mean {close!r}?"
            else:
                advice = "check the spelling or load it with --plugin MODULE"
            problems.append(
                (
                    f"plugins.{toml_key(name)}",
                    f"no plugin named {name!r} is loaded (loaded plugins: {loaded}); {advice}",
                )
            )
        return problems

    def channel_router(self) -> ChannelRouter:
        """Build the channels from the settings; raise ``ConfigError`` for invalid tables."""
        return self._build_channels()

    def _build_channels(self) -> ChannelRouter:
        router, problems, _ = self._channels()
        if problems:
            raise ConfigError(problems)
        return router

    def _channels(
        self, skip: Collection[str] = ()
    ) -> tuple[ChannelRouter, list[tuple[str, str]], set[str]]:
        """Build the valid channels and return them, the problems and the keys of invalid tables.

        The keys are dotted, such as ``channels.onebot_v11``. A table whose
        key is in ``skip`` was left out of the settings as invalid.
        """
        if self._channel_overrides is not None or self._default_channel is not None:
            fallback = self._default_channel or ConsoleChannel()
            router = ChannelRouter(self._channel_overrides or {}, fallback, warn_fallback=False)
            return router, [], set()
        _load_builtin_channel_kinds()
        kinds = channel_kinds()
        problems: list[tuple[str, str]] = []
        channels: dict[str, Channel] = {}
        failed: set[str] = set()
        for platform, table in self.settings.channels.items():
            options = dict(table)
            kind = str(options.pop("kind", platform))
            factory = kinds.get(kind)
            if factory is None:
                problems.append(
                    (
                        f"channels.{toml_key(platform)}.kind",
                        _unknown_kind(platform, kind, "kind" in table, kinds),
                    )
                )
                failed.add(f"channels.{toml_key(platform)}")
                continue
            try:
                channels[platform] = factory(platform, options)
            except ConfigError as exc:
                problems.extend(with_placement_hints(exc.problems))
                failed.add(f"channels.{toml_key(platform)}")
                continue
            problems.extend(self._claim_problems(platform, channels[platform]))

        default_name = self.settings.default_channel
        found = channels.get(default_name)
        default: Channel
        if found is not None:
            default = found
        else:
            # The problems of a table that exists but is invalid are reported already.
            table_key = f"channels.{toml_key(default_name)}"
            if default_name != "console" and table_key not in failed | set(skip):
                problems.append(
                    ("default_channel", f"no [channels.{toml_key(default_name)}] table")
                )
            default = ConsoleChannel()
        return ChannelRouter(channels, default, warn_fallback=True), problems, failed

    def _claim_problems(self, platform: str, channel: Channel) -> list[tuple[str, str]]:
        """Check that a send of ``channel`` ends before another instance may claim its message."""
        storage = self.settings.storage
        if storage.backend != "redis" or channel.send_timeout < storage.visibility_timeout:
            return []
        timeout_key = f"channels.{toml_key(platform)}.timeout"
        return [
            (
                "storage.visibility_timeout",
                f"{storage.visibility_timeout:g} s is not longer than {timeout_key} "
                f"({channel.send_timeout:g} s), so another instance would send a slow message "
                "again while it is still being sent; raise visibility_timeout or lower the "
                "channel timeout",
            )
        ]

    @asynccontextmanager
    async def running(self, *, workers: bool = True) -> AsyncIterator[WebhookApp]:
        """Start storage, channels and workers; on exit, shut down gracefully.

        ``workers=False`` starts no outbox worker and no retention job, for
        command-line tools beside a running server: messages they queue stay
        in the outbox for the server's worker. Raises ``ConfigError`` (not
        wrapped in an exception group) when the configuration is invalid.
        """
        self._configs = self.check_config()
        router = self._build_channels()
        self.outbox = Outbox(self.storage, router, self.settings.outbox, self.clock)
        await self.storage.open()
        channels_started: list[Channel] = []
        task_group = anyio.create_task_group()
        try:
            for channel in router.all():
                await channel.start()
                channels_started.append(channel)
            await self._recover(interrupt_tasks=workers)
            if workers:
                if self.settings.disabled_plugins:
                    logger.info(
                        "plugins disabled by the config: %s",
                        ", ".join(self.settings.disabled_plugins),
                    )
                self.warn_unconfigured_secrets()
                self.warn_unset_chat_settings()
            await task_group.__aenter__()
        except BaseException:
            for channel in channels_started:
                await channel.close()
            await self.storage.close()
            raise
        token = current_app_var.set(self)
        try:
            self._task_group = task_group
            self.tasks.attach(task_group)
            task_group.start_soon(self.writer.run, name="plughook batch writer")
            task_group.start_soon(self._deadlines.run, name="plughook deadlines")
            if workers and self.storage.shared:
                await self._heartbeat()
                task_group.start_soon(self._run_heartbeat, name="plughook heartbeat")
            if workers:
                task_group.start_soon(self.outbox.run, name="plughook outbox worker")
                task_group.start_soon(self.deliveries.run_retention, name="plughook retention")
                task_group.start_soon(self._watch_maintenance, name="plughook maintenance")
            self.serving = True
            self.started_at = self.clock()
            logger.info(
                "plughook instance %s started with %d endpoints", self.instance_id, len(self.router)
            )
            yield self
        finally:
            current_app_var.reset(token)
            with anyio.CancelScope(shield=True):
                await self._shutdown()
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
            with anyio.CancelScope(shield=True):
                for channel in channels_started:
                    await channel.close()
                await self.storage.close()
            logger.info("plughook app stopped")

    def warn_unconfigured_secrets(
        self, configs: dict[str, Any] | None = None, skip: Collection[str] = ()
    ) -> None:
        """Log each endpoint that returns 503 until its verifier's secret is set.

        A verifier names that setting in ``secret_field``. A verifier that
        lets some methods through without the secret lists them in
        ``unchecked_methods``, and the warning then names the methods that
        return 503. ``configs`` are plugin configs from ``check_config``. By
        default they are the running app's. A plugin missing from them, and
        a setting whose dotted key is in ``skip`` (one already reported as
        invalid), get no warning.
        """
        configs = self._configs if configs is None else configs
        for endpoint in self.router.endpoints():
            field = getattr(endpoint.verify, "secret_field", None)
            if field is None or getattr(endpoint.verify, "allow_unsigned", False):
                continue
            name = endpoint.plugin.name
            key = f"plugins.{toml_key(name)}.{field}"
            if name not in configs or key in skip or getattr(configs[name], field, None):
                continue

            unchecked = frozenset(getattr(endpoint.verify, "unchecked_methods", ()))
            if not unchecked:
                logger.warning(
                    "endpoint %s%s returns 503 until %s is set%s",
                    name,
                    endpoint.path,
                    key,
                    self._empty_env_note(key),
                )
                continue
            checked = _checked_methods(endpoint, unchecked)
            if checked:
                logger.warning(
                    "endpoint %s%s returns 503 to %s until %s is set%s",
                    name,
                    endpoint.path,
                    checked,
                    key,
                    self._empty_env_note(key),
                )

    def warn_unset_chat_settings(
        self, configs: dict[str, Any] | None = None, skip: Collection[str] = ()
    ) -> None:
        """Log each empty ``chat_keys=True`` setting, because the plugin then sends nothing there.

        The plugin's handlers still return success, so without this
        warning the missing chat shows only in a log line per delivery.
        ``configs`` and ``skip`` are as for ``warn_unconfigured_secrets``.
        """
        configs = self._configs if configs is None else configs
        for name, config in configs.items():
            if config is None:
                continue
            chat_settings = chat_key_settings(config)
            for field, keys in chat_settings:
                key = f"plugins.{toml_key(name)}.{field}"
                if keys or key in skip:
                    continue
                note = self._empty_env_note(key)
                if len(chat_settings) == 1:
                    logger.warning(
                        "plugin %s sends no chat messages until %s is set%s", name, key, note
                    )
                else:
                    logger.warning(
                        "plugin %s sends none of the chat messages meant for %s until it is set%s",
                        name,
                        key,
                        note,
                    )

    def _empty_env_note(self, key: str) -> str:
        """Return a note naming the environment variables that the empty setting ``key`` reads."""
        names = list(dict.fromkeys(self._env_references.get(key, ())))
        if not names:
            return ""
        variables = " and ".join(f"${{{name}}}" for name in names)
        verb = "is" if len(names) == 1 else "are"
        return f" (it reads {variables}, which {verb} empty)"

    async def _recover(self, *, interrupt_tasks: bool) -> None:
        # Without workers this process runs beside a server that owns the tasks.
        if interrupt_tasks and not self.storage.shared:
            count = await self.storage.tasks_interrupt(None, self.clock())
            if count:
                logger.warning("%d tasks left running by a previous process are interrupted", count)
        self.maintenance = await self.storage.kv_get(*_MAINTENANCE_KEY) == "on"
        self._maintenance_read_at = time.monotonic()
        if self.maintenance and interrupt_tasks:
            # The flag is stored, so it outlives the process that set it.
            logger.warning(
                "maintenance mode is on, as stored before this start: endpoints of "
                "maintenance-aware plugins (every bundled one but status) return 503 until "
                "`plughook maintenance off` or the status plugin switches it off"
            )

    async def _heartbeat(self) -> None:
        """Renew this instance's heartbeat and interrupt tasks of instances that died."""
        interval = self.settings.storage.heartbeat_interval
        await self.storage.heartbeat(self.instance_id, interval * HEARTBEAT_MISSES)
        dead = await self.storage.dead_task_owners()
        if dead:
            count = await self.storage.tasks_interrupt(dead, self.clock())
            logger.warning(
                "instances %s stopped sending heartbeats; %d of their tasks are interrupted",
                ", ".join(dead),
                count,
            )

    async def _watch_maintenance(self) -> None:
        """Re-read the stored maintenance mode every ``MAINTENANCE_REFRESH`` seconds.

        Requests re-read it too, but a quiet server would otherwise show a
        switch made by another process in /healthz and its log only with the
        next request.
        """
        while True:
            await anyio.sleep(MAINTENANCE_REFRESH)
            try:
                await self.in_maintenance()
            except Exception:
                logger.exception("reading the maintenance mode from storage failed")

    async def _run_heartbeat(self) -> None:
        while True:
            await anyio.sleep(self.settings.storage.heartbeat_interval)
            try:
                await self._heartbeat()
            except Exception:
                logger.exception("renewing the heartbeat of instance %s failed", self.instance_id)

    async def _shutdown(self) -> None:
        self.serving = False
        grace = self.settings.server.grace_period
        await self._wait_handlers(grace)
        await self.tasks.shutdown(grace)
        if self.outbox is not None:
            # Sends in flight finish, so that a restart does not repeat them.
            await self.outbox.stop(grace)
        self.tasks.attach(None)
        self._task_group = None
        try:
            await self.writer.flush()
        except Exception:
            logger.exception("writing bookkeeping records at shutdown failed")

    async def in_maintenance(self) -> bool:
        """Return the maintenance flag, re-read from storage at most every second.

        Instances sharing Redis see a switch made on another instance within
        ``MAINTENANCE_REFRESH`` seconds; on SQLite the re-read is cheap too.
        """
        now = time.monotonic()
        if now - self._maintenance_read_at >= MAINTENANCE_REFRESH:
            # Zero until the first read, which has nothing to compare with.
            read_before = self._maintenance_read_at > 0
            self._maintenance_read_at = now
            stored = await self.storage.kv_get(*_MAINTENANCE_KEY) == "on"
            if read_before and stored != self.maintenance:
                # Another process switched it: `plughook maintenance`, a
                # replay, or another instance sharing Redis.
                logger.warning(
                    "maintenance mode is now %s, switched by another process",
                    "on" if stored else "off",
                )
            self.maintenance = stored
        return self.maintenance

    async def set_maintenance(self, enabled: bool) -> None:
        """Switch maintenance mode and persist it.

        While it is on, endpoints of maintenance-aware plugins return 503.
        """
        self.maintenance = enabled
        self._maintenance_read_at = time.monotonic()
        await self.storage.kv_set(*_MAINTENANCE_KEY, "on" if enabled else "off")
        logger.warning("maintenance mode switched %s", "on" if enabled else "off")

    async def drain(self) -> None:
        """Wait until the outbox, background handlers and tasks are idle and records written."""
        while True:
            await self.tasks.wait_idle()
            await self._wait_handlers(None)
            if self.outbox is not None:
                await self.outbox.wait_idle()
            await self.writer.flush()
            if not self.tasks.running and not self._handler_tasks:
                return

    # Dispatch.
    async def handle(
        self, request: WebhookRequest, *, respond_early: EarlyResponder | None = None
    ) -> WebhookResponse:
        """Return the response to one webhook request; never raises for anything a handler does.

        An adapter that can send a response while the handler goes on passes
        ``respond_early``: when a handler outlives its endpoint's
        ``respond_within``, it is called once with the 202 response, from the
        event loop, and must send it without waiting; ``handle`` then returns
        the handler's own response, which the adapter does not send. Without
        it, such handlers run in a task of their own, which costs two more
        event-loop turns per request.
        """
        endpoint = self.router.lookup(request.plugin, request.path)
        if endpoint is None:
            return _not_found(request, request.plugin in self.plugins)
        if not endpoint.allows(request.method):
            response = json_response(
                {"error": f"method {request.method} is not allowed on this endpoint"}, 405
            )
            response.headers["Allow"] = endpoint.allow_header()
            return response
        started = time.perf_counter()
        token = current_app_var.set(self)
        plugin_token = current_plugin_var.set(endpoint.plugin.name)
        error_id = ""
        try:
            response = await self._dispatch(endpoint, request, respond_early)
        except _InternalError as exc:
            error_id = exc.error_id
            response = json_response({"error": "internal error", "error_id": error_id}, 500)
        finally:
            current_plugin_var.reset(plugin_token)
            current_app_var.reset(token)
        if request.method == "HEAD":
            response = WebhookResponse(response.status, b"", response.headers, response.media_type)
        logged = request.method not in UNLOGGED_METHODS or response.status >= 400
        if logged or request.replay_of:
            self.deliveries.record(
                endpoint, request, response, started, error_id, request.replay_of
            )
        return response

    async def replay(
        self, record_id: str, *, allow_unverified: bool = False
    ) -> tuple[DeliveryRecord, WebhookResponse]:
        """Run a recorded delivery again and return the original record and the new response.

        The replay skips signature verification (signature headers are not
        recorded) and duplicate detection, and is itself recorded as a new
        attempt. Raises ``LookupError`` for an unknown record and ``ValueError``
        when its body was cut. It also raises ``UnverifiedReplay`` (a
        ``ValueError``) when the endpoint's verifier did not accept the
        original request, unless
        ``allow_unverified`` is true, because the replay would run the handler
        on a request from an unknown sender.
        """
        await self.writer.flush()
        record = await self.storage.delivery_get(record_id)
        if record is None:
            msg = f"no delivery record {record_id!r}; see `plughook deliveries list`"
            raise LookupError(msg)
        if self.router.lookup(record.plugin, record.path) is None:
            msg = (
                f"delivery record {record_id!r} is for {record.plugin}{record.path}, which no "
                "loaded plugin serves; load the plugin's module as the server does "
                "(--plugin MODULE on the command line)"
            )
            raise LookupError(msg)
        if record.body_truncated:
            if record.body:
                msg = (
                    f"delivery record {record_id!r} contains only the first {len(record.body)} "
                    "bytes of its body (deliveries.max_body_bytes), so it cannot be replayed"
                )
            else:
                msg = (
                    f"delivery record {record_id!r} contains none of its body (a streamed upload, "
                    "deliveries.record_bodies, or a body lost from its segment file), so it "
                    "cannot be replayed"
                )
            raise ValueError(msg)
        if record.verified is False and not allow_unverified:
            if record.replay_of:
                rejected = (
                    f"delivery record {record_id!r} replays {record.replay_of!r}, which did "
                    "not pass its endpoint's verification"
                )
            else:
                rejected = (
                    f"delivery record {record_id!r} did not pass its endpoint's verification "
                    f"(answered {record.status})"
                )
            raise UnverifiedReplay(record_id, rejected)
        request = WebhookRequest(
            record.method,
            record.plugin,
            record.path,
            headers=record.headers,
            query=record.query,
            body=record.body,
            client="replay",
        )
        request.replay = True
        request.replay_of = record.id
        request.verified = record.verified
        request.delivery_id = record.delivery_id
        response = await self.handle(request)
        await self.writer.flush()
        return record, response

    async def _dispatch(
        self,
        endpoint: Endpoint,
        request: WebhookRequest,
        respond_early: EarlyResponder | None = None,
    ) -> WebhookResponse:
        request.max_body_size = (
            endpoint.max_body_size if endpoint.max_body_size is not None else DEFAULT_MAX_BODY_SIZE
        )
        dedupe_key = ""
        in_background = False
        if endpoint.verify is not None and not request.replay:
            # False until the verifier accepts it, also when an earlier check rejects it.
            request.verified = False
        try:
            # Read first, so that the record of any rejection below carries the id.
            if not request.delivery_id:
                request.delivery_id = self._delivery_id(endpoint, request)
            request.check_declared_length()
            if endpoint.verify is not None and not request.replay:
                await endpoint.verify(request, endpoint.plugin)
                # A verifier that let the request through unchecked set None.
                if request.verified is False:
                    request.verified = True
            # Checked after the verifier, so that the record of a delivery
            # rejected during maintenance stores whether its sender was
            # genuine, and a genuine one can be replayed afterwards as it is.
            if endpoint.plugin.maintenance_aware and await self.in_maintenance():
                logger.info(
                    "delivery %s to %s%s rejected with 503: maintenance mode is on",
                    request.delivery_id,
                    endpoint.plugin.name,
                    endpoint.path,
                )
                raise ServiceUnavailable("maintenance")
            # Only an id the sender supplied can repeat; a generated one never does.
            header = endpoint.delivery_id_header
            if header is not None and request.delivery_id == request.headers.get(header):
                dedupe_key = f"{endpoint.plugin.name}\x00{endpoint.path}\x00{request.delivery_id}"
                duplicate = await self.deliveries.claim(dedupe_key, request)
                if duplicate is not None:
                    return duplicate
            if endpoint.respond_within is None:
                result = await self._call(endpoint, request)
            elif respond_early is not None:
                result = await self._call_with_timer(endpoint, request, respond_early)
            else:
                in_background = True
                return await self._call_with_deadline(endpoint, request, dedupe_key)
            response = to_response(result)
        except HTTPError as exc:
            response = error_response(exc)
        except _InternalError:
            # Already logged, and its claim settled, by _call_with_deadline.
            raise
        except Exception as exc:
            error = self._internal_error(endpoint, request, exc)
            if dedupe_key:
                # Released, so that the sender's redelivery runs the handler again.
                await self.deliveries.settle(dedupe_key, 500)
            raise error from None
        finally:
            if not in_background:
                await request.close()
        if dedupe_key:
            await self.deliveries.settle(dedupe_key, response.status)
        return response

    async def _call(self, endpoint: Endpoint, request: WebhookRequest) -> Any:
        if endpoint.takes_request:
            return await endpoint.handler(request)
        return await endpoint.handler()

    async def _call_with_timer(
        self, endpoint: Endpoint, request: WebhookRequest, respond_early: EarlyResponder
    ) -> Any:
        """Run the handler in this task; past ``respond_within``, have the adapter send 202."""
        assert endpoint.respond_within is not None
        answered: list[bool] = []

        def answer_early() -> None:
            answered.append(True)
            logger.info(
                "delivery %s to %s%s still running after %.1f s; responded with 202",
                request.delivery_id,
                endpoint.plugin.name,
                endpoint.path,
                endpoint.respond_within,
            )
            respond_early(json_response({"status": "accepted"}, 202))

        key = self._deadlines.add(endpoint.respond_within, answer_early)
        try:
            return await self._call(endpoint, request)
        finally:
            self._deadlines.remove(key)
            if answered:
                logger.info("delivery %s finished in the background", request.delivery_id)

    async def _call_with_deadline(
        self, endpoint: Endpoint, request: WebhookRequest, dedupe_key: str
    ) -> WebhookResponse:
        """Run the handler in its own task; answer 202 if it outlives ``respond_within``.

        Plain asyncio primitives keep this path cheap: it runs for every
        request of a default endpoint.
        """
        if not self.serving:
            raise ServiceUnavailable("the app is shutting down")
        loop = asyncio.get_running_loop()
        run = _HandlerRun()
        task = loop.create_task(self._run_handler(endpoint, request, run, dedupe_key))
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)
        waiter = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        assert endpoint.respond_within is not None
        timer = loop.call_later(endpoint.respond_within, wake)
        task.add_done_callback(wake)
        try:
            await waiter
        except asyncio.CancelledError:
            # The client went away; the handler goes on and logs its outcome.
            run.responded = True
            raise
        finally:
            timer.cancel()
        if not task.done():
            run.responded = True
            logger.info(
                "delivery %s to %s%s still running after %.1f s; responded with 202",
                request.delivery_id,
                endpoint.plugin.name,
                endpoint.path,
                endpoint.respond_within,
            )
            return json_response({"status": "accepted"}, 202)
        result = run.result
        if isinstance(result, BaseException):
            if dedupe_key:
                await self.deliveries.settle(dedupe_key, 500)
            raise self._internal_error(endpoint, request, result)
        if dedupe_key and result is not None:
            await self.deliveries.settle(dedupe_key, result.status)
        assert result is not None
        return result

    async def _run_handler(
        self, endpoint: Endpoint, request: WebhookRequest, run: _HandlerRun, dedupe_key: str
    ) -> None:
        result: WebhookResponse | BaseException
        try:
            result = to_response(await self._call(endpoint, request))
        except HTTPError as exc:
            result = error_response(exc)
        except Exception as exc:
            result = exc
        run.result = result
        if not run.responded:
            await request.close()
            return
        await request.close()
        if isinstance(result, BaseException):
            error = self._internal_error(endpoint, request, result)
            status = 500
            logger.error(
                "delivery %s finished in the background with error %s",
                request.delivery_id,
                error.error_id,
            )
        else:
            status = result.status
            logger.info(
                "delivery %s finished in the background with status %d",
                request.delivery_id,
                status,
            )
        if dedupe_key:
            await self.deliveries.settle(dedupe_key, status)

    async def _wait_handlers(self, limit: float | None) -> None:
        """Wait for handlers that outlived their deadline; cancel them after ``limit`` seconds."""
        if not self._handler_tasks:
            return
        _, pending = await asyncio.wait(set(self._handler_tasks), timeout=limit)
        if pending and limit is not None:
            logger.warning("cancelling %d handlers still running at shutdown", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)

    def _delivery_id(self, endpoint: Endpoint, request: WebhookRequest) -> str:
        headers = request.headers
        names: tuple[str, ...] = DELIVERY_ID_HEADERS
        if endpoint.delivery_id_header is not None:
            names = (endpoint.delivery_id_header, *names)
        for name in names:
            value = headers.get(name)
            if value:
                if not value.isascii() and not _is_text(value):
                    self._reject_delivery_id(endpoint, request, name)
                return value
        return self._generated_delivery_id()

    def _generated_delivery_id(self) -> str:
        # "d" for delivery: record ids ("r") share the instance prefix.
        return f"{self.instance_id}-d{next(self._generated_ids)}"

    def _reject_delivery_id(
        self, endpoint: Endpoint, request: WebhookRequest, name: str
    ) -> NoReturn:
        """Raise a 400 ``BadRequest`` for a delivery-id header that is not text.

        The delivery record gets a generated id instead. aiohttp keeps header
        bytes that are not UTF-8 as lone surrogates, which no storage backend
        can write.
        """
        request.delivery_id = self._generated_delivery_id()
        logger.warning(
            "rejected delivery %s for plugin %s path %s: the %s header is not valid UTF-8",
            request.delivery_id,
            endpoint.plugin.name,
            endpoint.path,
            name,
        )
        msg = f"the {name} header is not valid UTF-8"
        raise BadRequest(msg)

    def _internal_error(
        self, endpoint: Endpoint, request: WebhookRequest, exc: BaseException
    ) -> _InternalError:
        error_id = uuid.uuid4().hex[:16]
        if isinstance(exc, InvalidResult):
            logger.error(
                "error %s: handler of %s%s (delivery %s) returned an invalid result: %s",
                error_id,
                endpoint.plugin.name,
                endpoint.path,
                request.delivery_id,
                exc,
            )
        else:
            logger.error(
                "error %s: handler of %s%s (delivery %s) raised %s",
                error_id,
                endpoint.plugin.name,
                endpoint.path,
                request.delivery_id,
                type(exc).__name__,
                exc_info=exc,
            )
        return _InternalError(error_id)

    # Service information.
    def health(self) -> WebhookResponse:
        """Handle ``GET /healthz``: 200 while serving, 503 while starting or stopping.

        While maintenance mode is on (as last read), the 200 body includes
        ``"maintenance": true``.
        """
        if not self.serving:
            return json_response({"status": "unavailable"}, 503)
        # A 200 keeps the server in a load balancer's pool. The body shows an
        # operator checking by hand that webhooks get 503.
        if self.maintenance:
            return json_response({"status": "ok", "maintenance": True})
        return json_response({"status": "ok"})

    def describe(self) -> dict[str, Any]:
        """List plugins, endpoints, methods, public URLs and redacted config values."""
        plugins = []
        for name, plugin in sorted(self.plugins.items()):
            config = self._configs.get(name)
            plugins.append(
                {
                    "name": name,
                    "version": plugin.version,
                    "description": plugin.description,
                    "config": describe_config(config) if config is not None else {},
                    "endpoints": [
                        {
                            "path": e.path,
                            "methods": sorted(e.methods) if e.methods is not None else ["*"],
                            "url": self.url_for(name, e.path),
                            "verified": e.verify is not None,
                        }
                        for e in sorted(plugin.endpoints.values(), key=lambda e: e.path)
                    ],
                }
            )
        return {"plugins": plugins}


class _HandlerRun:
    """Shared state of a handler task and the request waiting for it."""

    __slots__ = ("responded", "result")

    def __init__(self) -> None:
        self.responded = False
        self.result: WebhookResponse | BaseException | None = None


class _InternalError(Exception):
    def __init__(self, error_id: str) -> None:
        super().__init__(error_id)
        self.error_id = error_id


def _is_text(value: str) -> bool:
    """Return whether ``value`` has no lone surrogates, so that it encodes as UTF-8."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _not_found(request: WebhookRequest, plugin_loaded: bool) -> WebhookResponse:
    if not plugin_loaded:
        return json_response({"error": f"no plugin {request.plugin!r} is loaded"}, 404)
    return json_response(
        {"error": f"no webhook endpoint {request.path!r} in plugin {request.plugin!r}"}, 404
    )


def _checked_methods(endpoint: Endpoint, unchecked: frozenset[str]) -> str:
    """Return the methods of ``endpoint`` that its verifier checks, such as "POST", or "".

    HEAD counts as allowed wherever GET is, as the router accepts it there.
    For an endpoint that allows every method, the result names the methods
    other than ``unchecked``.
    """
    if endpoint.methods is None:
        return "methods other than " + ", ".join(sorted(unchecked))
    allowed = set(endpoint.methods)
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed - unchecked))


def _unknown_kind(platform: str, kind: str, kind_set: bool, known: Collection[str]) -> str:
    """Return the problem text for the table ``[channels.<platform>]`` of an unknown kind.

    A table without ``kind`` takes its name as the kind, so the text then also
    explains how to keep that name, which is the platform of its chat keys.
    """
    close = closest_name(kind, known)
    if close is None:
        text = f"unknown channel kind {kind!r}; known kinds: {', '.join(sorted(known))}"
        if kind_set:
            return text
        return (
            f"{text}. A table without kind takes its name as the kind, so add "
            f'kind = "…" with one of them to keep the name {platform!r}'
        )
    text = f"unknown channel kind {kind!r}; did you mean {close!r}?"
    if kind_set:
        return text
    return (
        f"{text} A table without kind takes its name as the kind, so rename it to "
        f'[channels.{toml_key(close)}], or add kind = "{close}" to keep {platform!r} as the '
        "platform of its chat keys"
    )


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _load_builtin_channel_kinds() -> None:
    """Import the channel modules that register their kinds."""
    import importlib

    for module in (
        "core.onebot",
        "core.http_channel",
        "core.feishu",
        "core.dingtalk",
        "core.wecom",
        "core.telegram",
        "core.discord",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # pragma: no cover - modules ship with core
            if exc.name != module:
                raise
