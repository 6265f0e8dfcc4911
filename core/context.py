"""Chat contexts: the target of a message, created from a chat key."""

from __future__ import annotations

import attrs

from .channels import split_chat_key

__all__ = ["ChatContext", "create_temp_ctx"]


@attrs.frozen
class ChatContext:
    """A chat to send to: the chat key and its platform and target parts."""

    chat_key: str
    platform: str
    target: str


async def create_temp_ctx(chat_key: str) -> ChatContext:
    """Return a context for ``chat_key``; raise ``ValueError`` when the key is invalid."""
    platform, target = split_chat_key(chat_key)
    return ChatContext(chat_key, platform, target)
