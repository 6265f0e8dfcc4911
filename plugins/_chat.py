"""Sending one text to the chats a plugin setting lists."""

from __future__ import annotations

import logging

from core import context, message

from ._text import parse_chat_keys

__all__ = ["send_to_chats"]


async def send_to_chats(setting: str, text: str, logger: logging.Logger, setting_name: str) -> int:
    """Queue ``text`` for every chat key in ``setting`` (comma-separated); return the chat count.

    An invalid chat key is logged with the setting's name and skipped, so one
    typo does not silence the other chats. An empty setting sends nothing and
    logs a warning, because the event would otherwise vanish unnoticed.
    """
    keys = parse_chat_keys(setting)
    if not keys:
        logger.warning("%s is empty; message not sent", setting_name)
        return 0

    sent = 0
    for chat_key in keys:
        try:
            ctx = await context.create_temp_ctx(chat_key)
        except ValueError as exc:
            logger.error("%s contains an invalid chat key, skipped: %s", setting_name, exc)
            continue
        await message.send_text(chat_key, text, ctx)
        sent += 1
    return sent
