"""A DingTalk custom robot stand-in: ``POST /robot/send?access_token=…``.

It checks what DingTalk checks and responds with DingTalk's errcodes (custom
robot guide, https://open.dingtalk.com/document/group/custom-robot-access):
the access token (300001), the body size (at most 20,000 bytes: 460101), the
text message shape, the signature of robots with a secret (``timestamp`` in
milliseconds within an hour and ``sign`` = base64 of HMAC-SHA256 keyed with the
secret over ``timestamp + "\\n" + secret``, percent-encoded in the query:
else 310000), the keyword setting (310000) and the rate of 20 messages a
minute per robot (130101, then 10 minutes of redirects, as users report).
Success is ``{"errcode": 0, "errmsg": "ok"}``.
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

__all__ = ["DingTalkStandIn", "ReceivedText"]

PATH = "/robot/send"
MAX_BODY_BYTES = 20_000
SIGNATURE_WINDOW_MS = 3_600_000
PER_MINUTE = 20
THROTTLE_SECONDS = 600.0

CODE_TOO_FAST = 130101
CODE_SECURITY = 310000
CODE_NO_TOKEN = 300001
CODE_TOO_LONG = 460101
# The stand-in's errcode for a body that is not a text message.
CODE_BAD_BODY = 40035
MESSAGES = {
    CODE_TOO_FAST: "send too fast, exceed 20 times per minute",
    CODE_NO_TOKEN: "token is not exist",
    CODE_TOO_LONG: "message too long, exceed 20000 bytes",
    CODE_BAD_BODY: "缺少参数 json",
}
SIGN_MISMATCH = "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
KEYWORDS_MISSING = "keywords not in content"


@attrs.frozen
class ReceivedText:
    """A text message the stand-in accepted, with its query and arrival time."""

    access_token: str
    text: str
    payload: dict[str, Any]
    query: dict[str, str]
    received_at: float


@attrs.frozen
class _Robot:
    secret: str
    keywords: tuple[str, ...]


class DingTalkStandIn(LoopbackServer):
    """DingTalk custom robots on loopback; ``add_robot`` registers one and returns its URL.

    ``clock`` is the wall clock that signature timestamps are checked against.
    ``time_scale`` shortens the rate window and the throttle (0.1 makes a
    "minute" 6 s). ``answered`` lists the non-zero errcodes sent, in order.
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
        self.redirected = 0
        self._robots: dict[str, _Robot] = {}
        self._recent: dict[str, deque[float]] = {}
        self._throttled_until: dict[str, float] = {}

    def add_robot(
        self, access_token: str, *, secret: str = "", keywords: tuple[str, ...] = ()
    ) -> str:
        """Register a robot and return its webhook URL (the server must be running)."""
        self._robots[access_token] = _Robot(secret, keywords)
        return f"{self.url}{PATH}?access_token={access_token}"

    def fail_next(self, code: int, errmsg: str = "") -> None:
        """Respond to the next valid request with ``code``."""
        body = {"errcode": code, "errmsg": errmsg or MESSAGES.get(code, "error")}
        self.script.append(ScriptedResponse(raw_body=json.dumps(body, ensure_ascii=False)))

    @property
    def texts(self) -> list[str]:
        """The text of each accepted message, in order."""
        return [message.text for message in self.messages]

    def routes(self) -> list[web.RouteDef]:
        """Return the robot send route."""
        return [web.post(PATH, self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.request_count += 1
        token = request.query.get("access_token", "")
        robot = self._robots.get(token)
        if robot is None:
            return self._error(CODE_NO_TOKEN)
        if self._throttled_until.get(token, 0.0) > time.monotonic():
            self.redirected += 1
            raise web.HTTPFound("/robot/throttled")
        body = await request.read()
        if len(body) > MAX_BODY_BYTES:
            return self._error(CODE_TOO_LONG)
        payload = _parse(body)
        if payload is None:
            return self._error(CODE_BAD_BODY)

        text = payload["text"]["content"]
        if robot.secret and not _signature_valid(robot.secret, request, self.clock()):
            return self._error(CODE_SECURITY, SIGN_MISMATCH)
        if robot.keywords and not any(word in text for word in robot.keywords):
            return self._error(CODE_SECURITY, KEYWORDS_MISSING)
        if self._over_rate(token):
            return self._error(CODE_TOO_FAST)
        scripted = self.next_scripted()
        if scripted is not None:
            return await self.respond(request, scripted, None)

        query = dict(request.query)
        self.messages.append(ReceivedText(token, text, payload, query, time.monotonic()))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _over_rate(self, token: str) -> bool:
        """Count a message; over the limit, start the robot's throttle."""
        now = time.monotonic()
        recent = self._recent.setdefault(token, deque())
        while recent and recent[0] <= now - 60 * self.time_scale:
            recent.popleft()
        if len(recent) >= PER_MINUTE:
            self._throttled_until[token] = now + THROTTLE_SECONDS * self.time_scale
            return True
        recent.append(now)
        return False

    def _error(self, code: int, errmsg: str = "") -> web.Response:
        self.answered.append(code)
        body = {"errcode": code, "errmsg": errmsg or MESSAGES.get(code, "error")}
        return web.json_response(body)


def _parse(body: bytes) -> dict[str, Any] | None:
    """Return a valid text message body, or ``None``."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("msgtype") != "text":
        return None
    text = payload.get("text")
    if not isinstance(text, dict) or not isinstance(text.get("content"), str):
        return None
    return payload


def _signature_valid(secret: str, request: web.Request, now: float) -> bool:
    # request.query contains the percent-decoded values, as DingTalk decodes them.
    timestamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
    if not timestamp.isdigit() or abs(now * 1000 - int(timestamp)) > SIGNATURE_WINDOW_MS:
        return False
    message = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), sign)
