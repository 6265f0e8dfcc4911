"""HTTP bindings of the plughook core and the ``plughook`` command line.

``adapters.aiohttp.create_app`` and ``adapters.litestar.create_app`` wrap a
``core.WebhookApp``; ``adapters.server.serve`` runs either on a socket. Each
binding imports its framework only when its module is imported.
"""

from .server import ADAPTERS

__all__ = ["ADAPTERS"]
