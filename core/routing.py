"""Endpoints and the route table that finds them by plugin name and path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

if TYPE_CHECKING:
    from .plugin import Plugin, Verifier

__all__ = ["WEBHOOK_PREFIX", "Endpoint", "Router", "normalize_path", "split_webhook_path"]

WEBHOOK_PREFIX = "/api/plugin/"


def normalize_path(path: str) -> str:
    """Return ``path`` with one leading slash, no trailing slash and no empty segments.

    Raises ``ValueError`` for ``.`` or ``..`` segments.
    """
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        msg = f"invalid endpoint path {path!r}: '.' and '..' segments are not allowed"
        raise ValueError(msg)
    return "/" + "/".join(segments)


def split_webhook_path(url_path: str) -> tuple[str, str] | None:
    """Split ``/api/plugin/<plugin>/webhook/<path>`` into plugin name and endpoint path."""
    if not url_path.startswith(WEBHOOK_PREFIX):
        return None
    plugin, sep, rest = url_path[len(WEBHOOK_PREFIX) :].partition("/")
    if not sep or not plugin:
        return None
    if rest == "webhook":
        return plugin, "/"
    if not rest.startswith("webhook/"):
        return None
    return plugin, rest[len("webhook") :]


@attrs.frozen
class Endpoint:
    """One registered route: ``(plugin, path, methods)`` and how to run it."""

    plugin: Plugin
    path: str
    methods: frozenset[str] | None
    handler: Callable[..., Awaitable[Any]]
    takes_request: bool
    verify: Verifier | None = None
    max_body_size: int | None = None
    respond_within: float | None = None
    delivery_id_header: str | None = None

    def allows(self, method: str) -> bool:
        """Return whether ``method`` is accepted; HEAD is accepted wherever GET is."""
        if self.methods is None:
            return True
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)

    def allow_header(self) -> str:
        """Return the value of the ``Allow`` header for a 405 answer."""
        methods = set(self.methods or ())
        if "GET" in methods:
            methods.add("HEAD")
        return ", ".join(sorted(methods))


class Router:
    """Route table keyed by ``(plugin name, normalised path)``: one dict lookup per request."""

    def __init__(self, plugins: Iterable[Plugin]) -> None:
        self.plugins: dict[str, Plugin] = {}
        self._routes: dict[tuple[str, str], Endpoint] = {}
        for plugin in plugins:
            if plugin.name in self.plugins:
                msg = f"two plugins are named {plugin.name!r}"
                raise ValueError(msg)
            self.plugins[plugin.name] = plugin
            for endpoint in plugin.endpoints.values():
                key = (plugin.name, endpoint.path)
                if key in self._routes:  # pragma: no cover - Plugin rejects this first
                    msg = f"duplicate endpoint {endpoint.path!r} in plugin {plugin.name!r}"
                    raise ValueError(msg)
                self._routes[key] = endpoint

    def __len__(self) -> int:
        return len(self._routes)

    def endpoints(self) -> list[Endpoint]:
        """Return every endpoint, ordered by plugin and path."""
        return sorted(self._routes.values(), key=lambda e: (e.plugin.name, e.path))

    def lookup(self, plugin: str, path: str) -> Endpoint | None:
        """Find the endpoint for a request path; tolerate a trailing slash."""
        endpoint = self._routes.get((plugin, path))
        if endpoint is None and path != "/" and (path.endswith("/") or "//" in path):
            try:
                endpoint = self._routes.get((plugin, normalize_path(path)))
            except ValueError:
                return None
        return endpoint


def webhook_url(base_url: str, plugin: str, path: str) -> str:
    """Build the public URL of an endpoint from the server's base URL."""
    suffix = "" if path == "/" else quote(path)
    return f"{base_url.rstrip('/')}{WEBHOOK_PREFIX}{quote(plugin)}/webhook{suffix}"
