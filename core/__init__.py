"""plughook core: webhook requests, responses, plugins, storage, chat delivery and tasks.

The core has no HTTP server in it; ``adapters`` bind it to aiohttp or Litestar.
"""

import importlib.metadata
import logging

from . import context, errors, message, signatures
from .app import WebhookApp
from .config import setting
from .context import ChatContext
from .datastructures import Headers, QueryParams
from .forms import FormData, UploadFile
from .plugin import Plugin
from .records import TaskRecord
from .request import WebhookRequest
from .response import WebhookResponse
from .runtime import current_app
from .settings import Settings

__all__ = [
    "ChatContext",
    "FormData",
    "Headers",
    "Plugin",
    "QueryParams",
    "Settings",
    "TaskRecord",
    "UploadFile",
    "WebhookApp",
    "WebhookRequest",
    "WebhookResponse",
    "context",
    "current_app",
    "errors",
    "logger",
    "message",
    "setting",
    "signatures",
]

logger = logging.getLogger("plughook")

try:
    __version__ = importlib.metadata.version("plughook")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
    __version__ = "0+unknown"
