"""A Feishu custom bot stand-in: ``POST /open-apis/bot/v2/hook/<hook id>``.

It checks what Feishu checks, in Feishu's order, and responds with Feishu's
codes (custom bot guide,
https://open.feishu.cn/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN). The body
may be at most 20 KB and must be a text message. A bot with a secret needs a
signature: HMAC-SHA256 keyed with ``timestamp + "\\n" + secret`` over an empty
message, with the timestamp within an hour, or the response is 19021. A bot
with keywords needs one of them in the text (19024). Each bot takes 5
requests a second and 100 a minute (11232). Success is
``{"StatusCode": 0, "StatusMessage": "success", "code": 0, …}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from . import LoopbackServer, ScriptedResponse

__all__ = ["FeishuStandIn", "ReceivedText"]

HOOK_PATH = "/open-apis/bot/v2/hook/"
MAX_BODY_BYTES = 20_000
SIGNATURE_WINDOW = 3600.0
PER_SECOND = 5
PER_MINUTE = 100

CODE_SIGNATURE = 19021
CODE_KEYWORD = 19024
CODE_RATE_LIMITED = 11232
# The stand-in's codes for a hook it does not know and for a malformed body.
CODE_BAD_HOOK = 19001
CODE_BAD_REQUEST = 9499
MESSAGES = {
    CODE_SIGNATURE: "sign match fail or timestamp is not within one hour from current time",
    CODE_KEYWORD: "Key Words Not Found",
    CODE_RATE_LIMITED: "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]",
    CODE_BAD_HOOK: "param invalid: incoming webhook access token invalid",
    CODE_BAD_REQUEST: "Bad Request",
}


@attrs.frozen
class ReceivedText:
    """A text message the stand-in accepted, with its raw body and arrival time."""

    hook_id: str
    text: str
    payload: dict[str, Any]
    body: bytes
    received_at: float


@attrs.frozen
class _Bot:
    secret: str
    keywords: tuple[str, ...]


class FeishuStandIn(LoopbackServer):
    """Feishu custom bots on loopback; ``add_bot`` registers one and returns its webhook URL.

    ``clock`` is the wall clock that signature timestamps are checked against.
    ``time_scale`` shortens the rate windows (0.1 makes a "minute" 6 s).
    ``answered`` lists the non-zero codes sent, in order.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        time_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.time_scale = time_scale
        self.messages: list[ReceivedText] = []
        self.answered: list[int] = []
        self.largest_body = 0
        self._bots: dict[str, _Bot] = {}
        self._recent: dict[str, deque[float]] = {}

    def add_bot(self, hook_id: str, *, secret: str = "", keywords: tuple[str, ...] = ()) -> str:
        """Register a bot and return its webhook URL (the server must be running)."""
        self._bots[hook_id] = _Bot(secret, keywords)
        return self.url + HOOK_PATH + hook_id

    def fail_next(self, code: int) -> None:
        """Respond to the next valid request with ``code`` and its Feishu message."""
        body = {"code": code, "data": {}, "msg": MESSAGES.get(code, "error")}
        self.script.append(ScriptedResponse(raw_body=json.dumps(body)))

    @property
    def texts(self) -> list[str]:
        """The text of each accepted message, in order."""
        return [message.text for message in self.messages]

    def routes(self) -> list[web.RouteDef]:
        """Return the webhook route."""
        return [web.post(HOOK_PATH + "{hook_id}", self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.request_count += 1
        hook_id = request.match_info["hook_id"]
        body = await request.read()
        self.largest_body = max(self.largest_body, len(body))
        bot = self._bots.get(hook_id)
        if bot is None:
            return self._error(CODE_BAD_HOOK)
        payload = _parse(body) if len(body) <= MAX_BODY_BYTES else None
        if payload is None:
            return self._error(CODE_BAD_REQUEST, status=400)

        code = self._check(bot, payload)
        if code:
            return self._error(code)
        code = self._check_rate(hook_id)
        if code:
            return self._error(code)
        scripted = self.next_scripted()
        if scripted is not None:
            return await self.respond(request, scripted, None)

        text = payload["content"]["text"]
        self.messages.append(ReceivedText(hook_id, text, payload, body, time.monotonic()))
        success = {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}}
        return web.json_response({**success, "msg": "success"})

    def _check(self, bot: _Bot, payload: dict[str, Any]) -> int:
        """Return the code for a body that fails the bot's checks, or 0."""
        if bot.secret and not _signature_valid(bot.secret, payload, self.clock()):
            return CODE_SIGNATURE
        text = payload["content"]["text"]
        if bot.keywords and not any(word in text for word in bot.keywords):
            return CODE_KEYWORD
        return 0

    def _check_rate(self, hook_id: str) -> int:
        now = time.monotonic()
        recent = self._recent.setdefault(hook_id, deque())
        while recent and recent[0] <= now - 60 * self.time_scale:
            recent.popleft()
        last_second = sum(1 for at in recent if at > now - self.time_scale)
        if len(recent) >= PER_MINUTE or last_second >= PER_SECOND:
            return CODE_RATE_LIMITED
        recent.append(now)
        return 0

    def _error(self, code: int, *, status: int = 200) -> web.Response:
        self.answered.append(code)
        body = {"code": code, "data": {}, "msg": MESSAGES.get(code, "error")}
        return web.json_response(body, status=status)


def _parse(body: bytes) -> dict[str, Any] | None:
    """Return a valid text message body, or ``None``."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("msg_type") != "text":
        return None
    content = payload.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("text"), str):
        return None
    return payload


def _signature_valid(secret: str, payload: dict[str, Any], now: float) -> bool:
    timestamp, sign = payload.get("timestamp"), payload.get("sign")
    if not isinstance(timestamp, str) or not timestamp.isdigit() or not isinstance(sign, str):
        return False
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW:
        return False
    key = f"{timestamp}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, sign)
