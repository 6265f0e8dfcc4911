"""An HTTP webhook receiver stand-in that verifies Standard Webhooks signatures.

It accepts JSON POSTs on ``/hook``. With a secret it verifies each request with
the ``standardwebhooks`` package, responds 401 to a bad signature, and counts a
repeated ``webhook-id`` as a duplicate, as a deduplicating receiver would.
"""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from . import LoopbackServer, ScriptedResponse

__all__ = ["ReceivedPost", "WebhookReceiver"]

PATH = "/hook"


@attrs.frozen
class ReceivedPost:
    """A request the receiver accepted: raw body, parsed JSON and lower-cased headers."""

    body: bytes
    payload: Any
    headers: dict[str, str]
    received_at: float


class WebhookReceiver(LoopbackServer):
    """Receiver on loopback recording JSON POSTs to ``/hook``.

    ``secret`` is a Standard Webhooks secret (``whsec_`` + base64); ``None``
    accepts unsigned requests. ``posts`` contains accepted requests, ``rejected``
    the bodies of requests whose signature failed, ``duplicates`` the ids seen
    more than once.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        failure_ratio: float = 0.0,
        failure: ScriptedResponse | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(failure_ratio=failure_ratio, failure=failure, seed=seed)
        self._verifier = Webhook(secret) if secret else None
        self.posts: list[ReceivedPost] = []
        self.rejected: list[bytes] = []
        self.duplicates: list[str] = []
        self._seen_ids: set[str] = set()

    @property
    def hook_url(self) -> str:
        """URL to POST to."""
        return self.url + PATH

    def routes(self) -> list[web.RouteDef]:
        """Return the single POST route."""
        return [web.post(PATH, self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.request_count += 1
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        if self._verifier is not None:
            try:
                self._verifier.verify(body, headers)
            except WebhookVerificationError as exc:
                self.rejected.append(body)
                return web.json_response({"error": str(exc)}, status=401)

        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)

        scripted = self.next_scripted() or ScriptedResponse()
        if scripted.delivers:
            self._record(body, payload, headers)
        return await self.respond(request, scripted, {"received": True})

    def _record(self, body: bytes, payload: Any, headers: dict[str, str]) -> None:
        delivery_id = headers.get("webhook-id", "")
        if delivery_id in self._seen_ids:
            self.duplicates.append(delivery_id)
        if delivery_id:
            self._seen_ids.add(delivery_id)
        self.posts.append(ReceivedPost(body, payload, headers, time.monotonic()))
