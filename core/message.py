"""Sending chat messages from handlers and tasks through the app's outbox."""

from __future__ import annotations

from .channels import split_chat_key
from .context import ChatContext
from .runtime import current_app, current_plugin_var

__all__ = ["send_text"]


async def send_text(chat_key: str, text: str, ctx: ChatContext | None = None) -> list[str]:
    """Queue ``text`` for ``chat_key`` and return the outbox message ids.

    The message is committed to the outbox before this returns, so it survives
    a crash; a worker delivers it. ``ctx`` is accepted for compatibility with
    the plugin-author API; the chat key decides the target. Raises
    ``ValueError`` for an invalid chat key.
    """
    split_chat_key(chat_key)
    if ctx is not None and ctx.chat_key != chat_key:
        msg = f"chat key {chat_key!r} does not match the context's {ctx.chat_key!r}"
        raise ValueError(msg)
    app = current_app("message.send_text")
    if app.outbox is None:  # pragma: no cover - running() creates it before serving
        msg = "the app's outbox is not running"
        raise RuntimeError(msg)
    return await app.outbox.put(chat_key, text, plugin=current_plugin_var.get())
