"""A Discord webhook stand-in: ``POST /api/webhooks/<id>/<token>``.

It checks what Discord checks and responds as it does (Execute Webhook and
Rate Limits, https://discord.com/developers/docs/resources/webhook,
https://discord.com/developers/docs/topics/rate-limits). An unknown webhook
gets 404 "Unknown Webhook" and a wrong token 401 "Invalid Webhook Token".
Content must be 1 to 2,000 code points, or the response is 400 "Invalid Form
Body". Each webhook has a bucket of 5 requests per 2 s, reported in
``X-RateLimit-*`` headers on every response. All webhooks share the channel
limit of 30 messages a minute, which no header reports. Over either limit,
the response is 429 with ``retry_after`` in seconds, ``Retry-After`` and
``X-RateLimit-*`` headers. Failed requests count against the bucket, as on
Discord.

``allowed_mentions`` decides whom a message pings: the stand-in records the
mentions a message would have notified in ``ReceivedMessage.pinged``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from typing import Any

import attrs
from aiohttp import web

from . import LoopbackServer, ScriptedResponse

__all__ = ["DiscordStandIn", "ReceivedMessage"]

PATH = "/api/webhooks/{webhook_id}/{token}"
MAX_CONTENT_LENGTH = 2000
BUCKET_LIMIT = 5
BUCKET_SECONDS = 2.0
CHANNEL_PER_MINUTE = 30

CODE_UNKNOWN_WEBHOOK = 10015
CODE_INVALID_TOKEN = 50027
CODE_EMPTY = 50006
CODE_INVALID_FORM = 50035
# Mentions by the allowed_mentions.parse type that lets them ping.
_MENTION_TYPES = {
    "everyone": re.compile(r"@(everyone|here)"),
    "users": re.compile(r"<@!?([0-9]+)>"),
    "roles": re.compile(r"<@&([0-9]+)>"),
}


@attrs.frozen
class ReceivedMessage:
    """A message the stand-in accepted, with the mentions it pinged and its arrival time."""

    webhook_id: str
    content: str
    payload: dict[str, Any]
    pinged: list[str]
    received_at: float


@attrs.define
class _Bucket:
    used: int = 0
    resets_at: float = 0.0


class DiscordStandIn(LoopbackServer):
    """Discord webhooks on loopback; ``add_webhook`` registers one and returns its URL.

    ``time_scale`` shortens the bucket and the channel window (0.1 makes a
    "minute" 6 s). ``answered`` lists the non-2xx statuses sent, in order.
    """

    def __init__(self, *, time_scale: float = 1.0) -> None:
        super().__init__()
        self.time_scale = time_scale
        self.messages: list[ReceivedMessage] = []
        self.answered: list[int] = []
        self._tokens: dict[str, str] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._channel_recent: deque[float] = deque()
        self._next_id = 1

    def add_webhook(self, webhook_id: str, token: str) -> str:
        """Register a webhook and return its URL (the server must be running)."""
        self._tokens[webhook_id] = token
        return self.url + PATH.format(webhook_id=webhook_id, token=token)

    def fail_next(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        """Respond to the next valid request with ``status``, the JSON ``body`` and ``headers``."""
        scripted = ScriptedResponse(http_status=status, headers=headers, raw_body=json.dumps(body))
        self.script.append(scripted)

    @property
    def texts(self) -> list[str]:
        """The text of each accepted message, in order."""
        return [message.content for message in self.messages]

    def routes(self) -> list[web.RouteDef]:
        """Return the execute-webhook route."""
        return [web.post(PATH, self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.request_count += 1
        webhook_id = request.match_info["webhook_id"]
        token = self._tokens.get(webhook_id)
        if token is None:
            return self._error(404, {"message": "Unknown Webhook", "code": CODE_UNKNOWN_WEBHOOK})
        if request.match_info["token"] != token:
            body = {"message": "Invalid Webhook Token", "code": CODE_INVALID_TOKEN}
            return self._error(401, body)

        headers, limited = self._take_from_bucket(webhook_id)
        if limited is not None:
            return limited
        problem = _problem(await request.read())
        if problem is not None:
            return self._error(400, problem, headers)
        scripted = self.next_scripted()
        if scripted is not None:
            return await self.respond(request, scripted, None)

        payload = json.loads(await request.read())
        message = self._record(webhook_id, payload)
        if request.query.get("wait", "").lower() == "true":
            return web.json_response(message, headers=headers)
        return web.Response(status=204, headers=headers)

    def _take_from_bucket(self, webhook_id: str) -> tuple[dict[str, str], web.Response | None]:
        """Count a request; return the rate limit headers, and a 429 response when over."""
        now = time.monotonic()
        bucket = self._buckets.setdefault(webhook_id, _Bucket())
        if bucket.resets_at <= now:
            bucket.used, bucket.resets_at = 0, now + BUCKET_SECONDS * self.time_scale
        minute = 60 * self.time_scale
        while self._channel_recent and self._channel_recent[0] <= now - minute:
            self._channel_recent.popleft()

        if bucket.used >= BUCKET_LIMIT:
            return {}, self._limited(bucket.resets_at - now, _headers(bucket, now), "user")
        if len(self._channel_recent) >= CHANNEL_PER_MINUTE:
            wait = self._channel_recent[0] + minute - now
            return {}, self._limited(wait, _headers(bucket, now), "shared")
        bucket.used += 1
        self._channel_recent.append(now)
        return _headers(bucket, now), None

    def _limited(self, wait: float, headers: dict[str, str], scope: str) -> web.Response:
        headers = {**headers, "Retry-After": str(math.ceil(wait)), "X-RateLimit-Scope": scope}
        body = {"message": "You are being rate limited.", "retry_after": round(wait, 3)}
        return self._error(429, {**body, "global": False}, headers)

    def _record(self, webhook_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        content = payload["content"]
        pinged = _pinged(content, payload.get("allowed_mentions"))
        received = ReceivedMessage(webhook_id, content, payload, pinged, time.monotonic())
        self.messages.append(received)
        message_id, self._next_id = str(self._next_id), self._next_id + 1
        return {"id": message_id, "webhook_id": webhook_id, "content": content, "mentions": []}

    def _error(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        self.answered.append(status)
        return web.json_response(body, status=status, headers=headers or {})


def _headers(bucket: _Bucket, now: float) -> dict[str, str]:
    reset_after = max(bucket.resets_at - now, 0.0)
    return {
        "X-RateLimit-Limit": str(BUCKET_LIMIT),
        "X-RateLimit-Remaining": str(max(BUCKET_LIMIT - bucket.used, 0)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": "stand-in-webhook-bucket",
    }


def _problem(body: bytes) -> dict[str, Any] | None:
    """Return the error body for an invalid message, or ``None``."""
    try:
        payload = json.loads(body)
    except ValueError:
        return {"message": "400: Bad Request", "code": 0}
    content = payload.get("content") if isinstance(payload, dict) else None
    if not isinstance(content, str) or not content:
        return {"message": "Cannot send an empty message", "code": CODE_EMPTY}
    if len(content) > MAX_CONTENT_LENGTH:
        error = {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
        errors = {"content": {"_errors": [error]}}
        return {"message": "Invalid Form Body", "code": CODE_INVALID_FORM, "errors": errors}
    return None


def _pinged(content: str, allowed: Any) -> list[str]:
    """Return the mentions in ``content`` that would notify someone."""
    # Without allowed_mentions, Discord pings every mention in the content.
    parse = allowed.get("parse", []) if isinstance(allowed, dict) else list(_MENTION_TYPES)
    found: list[str] = []
    for kind, pattern in _MENTION_TYPES.items():
        if kind in parse:
            found += [match.group(0) for match in pattern.finditer(content)]
    return found
