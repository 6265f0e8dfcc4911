"""Status: reports whether the app runs and switches maintenance mode.

Endpoint: ``/api/plugin/status/webhook/status``.

* ``GET`` (no token): ``{"status": "running" | "maintenance", "version", "uptime"}``,
  ``uptime`` in seconds since the app started.
* ``POST {"status": "maintenance" | "running"}`` with
  ``Authorization: Bearer <API_TOKEN>``: switches maintenance mode. The mode is
  stored, so it survives a restart. While it is on, the other bundled plugins
  return 503 ``{"error": "maintenance"}``, but this endpoint keeps working.

The endpoint's verifier checks the token of POST and lets GET (and HEAD)
through unchecked, so the delivery log records whether each POST passed and
``plughook deliveries replay`` runs a rejected POST only with
``--allow-unverified``.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from core import Plugin, WebhookRequest, current_app, signatures
from core.config import setting
from core.errors import BadRequest

__all__ = ["StatusConfig", "plugin", "status"]

RUNNING: Final = "running"
MAINTENANCE: Final = "maintenance"

plugin = Plugin(
    "status",
    version="1.0.0",
    description="Reports the app's status and switches maintenance mode",
)


@plugin.mount_config()
class StatusConfig:
    """Settings of the status plugin."""

    API_TOKEN: str = setting(
        "",
        title="API 令牌",
        description="Bearer token for POST (switching maintenance mode); POST gets 503 while it "
        "is empty. GET needs no token",
        secret=True,
    )


_require_token = signatures.bearer_token("API_TOKEN")


class _SwitchTokenVerifier:
    """Verifier of the bearer token for every method except GET and HEAD, which are public.

    ``secret_field`` and ``unchecked_methods`` tell the core's start-up
    warning that POST returns 503 while ``API_TOKEN`` is empty, and that GET
    and HEAD do not.
    """

    secret_field = _require_token.secret_field
    unchecked_methods = frozenset({"GET", "HEAD"})

    async def __call__(self, request: WebhookRequest, owner: Plugin) -> None:
        if request.method in self.unchecked_methods:
            # Nothing is checked. A failed GET is logged with no verdict.
            request.verified = None
            return
        await _require_token(request, owner)


_verify_switch = _SwitchTokenVerifier()


async def _current_status() -> Literal["running", "maintenance"]:
    return MAINTENANCE if await current_app().in_maintenance() else RUNNING


async def _report() -> dict[str, Any]:
    app = current_app()
    return {
        "status": await _current_status(),
        "version": plugin.version,
        "uptime": round(max(0.0, app.clock() - app.started_at), 3),
    }


async def _switch(request: WebhookRequest) -> dict[str, Any]:
    body = await request.json()
    requested = body.get("status") if isinstance(body, dict) else None
    if requested not in (RUNNING, MAINTENANCE):
        msg = f'expected a JSON body {{"status": "{MAINTENANCE}"}} or {{"status": "{RUNNING}"}}'
        raise BadRequest(msg)

    previous = await _current_status()
    await current_app().set_maintenance(requested == MAINTENANCE)
    plugin.logger.info(
        "delivery %s: status switched from %s to %s", request.delivery_id, previous, requested
    )
    return {"status": requested, "previous": previous}


@plugin.mount_webhook("/status", methods=["GET", "POST"], verify=_verify_switch)
async def status(request: WebhookRequest) -> dict[str, Any]:
    """Report the status (GET) or switch maintenance mode (POST, token required)."""
    if request.method == "POST":
        return await _switch(request)
    return await _report()
