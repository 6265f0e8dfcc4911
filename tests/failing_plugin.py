"""A plugin module whose own code fails on import: it mounts a path parameter."""

from __future__ import annotations

from core import Plugin

plugin = Plugin("failing", version="1.0")


@plugin.mount_webhook("/build/{id}")
async def build() -> dict[str, str]:
    return {"status": "ok"}
