"""A plugin that queues many chat messages at once, for the crash-recovery tests.

Loaded into real ``plughook serve`` processes with ``--plugin tests.burst_plugin``.
"""

from __future__ import annotations

from typing import Any

from core import Plugin, WebhookRequest, message

plugin = Plugin("burst", version="1.0.0", description="queues numbered chat messages")


@plugin.mount_webhook("/burst", methods=["POST"], respond_within=None)
async def burst(request: WebhookRequest) -> dict[str, Any]:
    """Queue ``count`` messages ``<prefix>:<n>`` spread over ``chats`` OneBot groups."""
    count = int(request.query["count"])
    chats = int(request.query.get("chats", "10"))
    prefix = request.query.get("prefix", "m")
    for number in range(count):
        chat = 1000 + number % chats
        await message.send_text(f"onebot_v11-group_{chat}", f"{prefix}:{number}")
    return {"queued": count}


@plugin.mount_webhook("/event", methods=["POST"], delivery_id_header="X-Delivery")
async def event(request: WebhookRequest) -> dict[str, Any]:
    """Send one message ``event:<delivery id>`` to the group the request names."""
    group = int(request.query.get("group", "1000"))
    await message.send_text(f"onebot_v11-group_{group}", f"event:{request.delivery_id}")
    return {"status": "sent"}
