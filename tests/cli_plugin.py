"""A small plugin for the command-line tests, loaded with ``--plugin tests.cli_plugin``."""

from __future__ import annotations

from typing import Any

import anyio

from core import Plugin, WebhookRequest, setting, signatures

plugin = Plugin("cli-test", version="1.0.0", description="endpoints for the CLI tests")


@plugin.mount_config()
class CliTestConfig:
    GREETING: str = setting("hello", title="Greeting")
    TOKEN: str = setting("", title="Token", secret=True)


@plugin.mount_webhook("/echo", methods=["POST"])
async def echo(request: WebhookRequest) -> dict[str, Any]:
    return {"greeting": plugin.config.GREETING, "body": (await request.body()).decode()}


@plugin.mount_webhook("/guarded", methods=["POST"], verify=signatures.bearer_token("TOKEN"))
async def guarded(request: WebhookRequest) -> dict[str, Any]:
    return {"body": (await request.body()).decode()}


@plugin.mount_webhook("/slow", methods=["POST"], respond_within=None)
async def slow(request: WebhookRequest) -> dict[str, Any]:
    seconds = float(request.query.get("seconds", "1"))
    plugin.logger.info("slow request started")
    await anyio.sleep(seconds)
    return {"slept": seconds}
