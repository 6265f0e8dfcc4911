"""The context variables that tell plugin code which app and plugin it runs in."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import WebhookApp

__all__ = ["current_app", "current_app_var", "current_plugin_var"]

current_app_var: ContextVar[WebhookApp] = ContextVar("plughook_current_app")
# The name of the plugin whose handler or task runs, "" elsewhere. Messages
# queued from there carry it into the outbox.
current_plugin_var: ContextVar[str] = ContextVar("plughook_current_plugin", default="")


def current_app(what: str = "this") -> WebhookApp:
    """Return the app running the current request or task.

    Raises ``RuntimeError`` outside a request, a task or ``app.running()``.
    """
    app = current_app_var.get(None)
    if app is None:
        msg = (
            f"{what} is only available while a plughook app runs: inside a webhook "
            "handler, a task, or `async with app.running()`"
        )
        raise RuntimeError(msg)
    return app
