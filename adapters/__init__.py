"""HTTP bindings of the plughook core and the ``plughook`` command line.

``adapters.aiohttp.create_server`` (aiohttp's low-level server),
``adapters.aiohttp.create_app`` (an aiohttp application to mount in another)
and ``adapters.litestar.create_app`` wrap a ``core.WebhookApp``;
``adapters.server.serve`` runs the aiohttp server or the Litestar app on a
socket. Each binding imports its framework only when its module is imported.
"""

from .server import ADAPTERS

__all__ = ["ADAPTERS"]
