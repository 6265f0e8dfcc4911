"""Plugins: named bundles of webhook endpoints, a config class, store and tasks."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import attrs

from .routing import Endpoint, normalize_path
from .runtime import current_app

if TYPE_CHECKING:
    from .request import WebhookRequest
    from .store import PluginStore
    from .tasks import PluginTasks

__all__ = ["Plugin", "Verifier"]

# A segment written the way other frameworks write a path parameter:
# {name}, <name> or :name.
_PATH_PARAMETER = re.compile(r"(?<=/)(\{[^/]*\}|<[^/]*>|:[A-Za-z_][^/]*)(?=/|$)")

_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
# GitHub gives up on a delivery after 10 s, so responding with 202 a second earlier
# keeps a slow handler from being reported as a failed delivery.
DEFAULT_RESPOND_WITHIN = 9.0

Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)
C = TypeVar("C", bound=type)


class Verifier(Protocol):
    """Checks who sent a request; raises ``core.errors.HTTPError`` to reject it."""

    def __call__(self, request: WebhookRequest, plugin: Plugin, /) -> Awaitable[None]: ...


class Plugin:
    """A plugin: create one at module level and decorate its handlers.

    ``plugin.config``, ``plugin.store`` and ``plugin.tasks`` belong to the app
    running the current request or task, so one plugin module can be loaded
    by several apps in one process without sharing their data.
    """

    def __init__(
        self,
        name: str,
        *,
        version: str,
        description: str = "",
        author: str = "",
        maintenance_aware: bool = False,
    ) -> None:
        if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
            msg = (
                f"invalid plugin name {name!r}: use lower-case letters, digits, '-' and '_', "
                "starting with a letter or digit"
            )
            raise ValueError(msg)
        self.name = name
        self.version = version
        self.description = description
        self.author = author
        # When set, the plugin's endpoints return 503 while the app is in
        # maintenance mode (see WebhookApp.set_maintenance).
        self.maintenance_aware = maintenance_aware
        self.config_class: type | None = None
        self.endpoints: dict[str, Endpoint] = {}
        self.logger = logging.getLogger(f"plughook.plugin.{name}")

    def __repr__(self) -> str:
        return f"<Plugin {self.name} {self.version}>"

    def mount_webhook(
        self,
        path: str,
        *,
        methods: Iterable[str] | None = None,
        verify: Verifier | None = None,
        max_body_size: int | None = None,
        respond_within: float | None = DEFAULT_RESPOND_WITHIN,
        delivery_id_header: str | None = None,
    ) -> Callable[[H], H]:
        """Register the decorated coroutine as the handler of ``path``.

        ``methods=None`` accepts every method. ``verify`` authenticates the
        sender before the handler runs. ``max_body_size`` (bytes) replaces the
        25 MiB default. A handler still running after ``respond_within``
        seconds gets a 202 response and finishes in the background (None waits).
        ``delivery_id_header`` names the header whose value deduplicates
        deliveries; by default the verifier's own header is used, if it has one.
        """
        normalized = normalize_path(path)
        placeholder = _PATH_PARAMETER.search(normalized)
        if placeholder is not None:
            msg = (
                f"endpoint path {path!r} contains {placeholder.group()!r}, but endpoint paths "
                "match literally and take no parameters; read the value from the query "
                "string (request.query) or the body instead"
            )
            raise ValueError(msg)
        allowed = None if methods is None else frozenset(m.upper() for m in methods)
        if max_body_size is not None and max_body_size < 0:
            msg = f"max_body_size must be >= 0, got {max_body_size}"
            raise ValueError(msg)
        if delivery_id_header is None and verify is not None:
            delivery_id_header = getattr(verify, "delivery_id_header", None)

        def decorator(handler: H) -> H:
            if not inspect.iscoroutinefunction(handler):
                msg = f"webhook handler {handler.__qualname__} must be an async function"
                raise TypeError(msg)
            if normalized in self.endpoints:
                msg = f"plugin {self.name!r} already has an endpoint at {normalized!r}"
                raise ValueError(msg)
            self.endpoints[normalized] = Endpoint(
                plugin=self,
                path=normalized,
                methods=allowed,
                handler=handler,
                takes_request=_takes_request(handler),
                verify=verify,
                max_body_size=max_body_size,
                respond_within=respond_within,
                delivery_id_header=delivery_id_header,
            )
            return cast(H, handler)

        return decorator

    def mount_config(self) -> Callable[[C], C]:
        """Declare the decorated class as this plugin's configuration.

        The class becomes a frozen attrs class unless it already is an attrs
        class; its fields are declared with ``core.config.setting``.
        """

        def decorator(cls: C) -> C:
            config_class = cls if attrs.has(cls) else attrs.frozen(cls)
            if "__repr__" not in cls.__dict__:
                from .config import redacted_repr

                config_class.__repr__ = redacted_repr  # type: ignore[method-assign]
            self.config_class = config_class
            return cast(C, config_class)

        return decorator

    @property
    def config(self) -> Any:
        """This plugin's structured configuration in the running app."""
        return current_app("plugin.config").plugin_config(self.name)

    @property
    def store(self) -> PluginStore:
        """This plugin's key-value store in the running app."""
        return current_app("plugin.store").plugin_store(self.name)

    @property
    def tasks(self) -> PluginTasks:
        """This plugin's background tasks in the running app."""
        return current_app("plugin.tasks").plugin_tasks(self.name)


def _takes_request(handler: Handler) -> bool:
    parameters = [
        p
        for p in inspect.signature(handler).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(parameters) > 1:
        msg = (
            f"webhook handler {handler.__qualname__} must take the request as its only "
            f"parameter, or no parameter; it takes {len(parameters)}"
        )
        raise TypeError(msg)
    return len(parameters) == 1
