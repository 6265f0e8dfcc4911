"""A WeCom group robot stand-in: ``POST /cgi-bin/webhook/send?key=…``.

It checks what WeCom checks and responds with WeCom's errcodes (group robot
guide, https://developer.work.weixin.qq.com/document/path/91770). The key must
name a robot, and the message must be ``text`` or ``markdown`` with a string
``content``. Content over 2,048 UTF-8 bytes (text) or 4,096 (markdown) gets
40058 with "… exceed max length …". Each robot takes 20 messages a minute
(45009). Success is ``{"errcode": 0, "errmsg": "ok"}``.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from typing import Any

import attrs
from aiohttp import web

from . import LoopbackServer, ScriptedResponse

__all__ = ["ReceivedContent", "WeComStandIn"]

PATH = "/cgi-bin/webhook/send"
CONTENT_LIMITS = {"text": 2048, "markdown": 4096}
PER_MINUTE = 20

CODE_RATE_LIMITED = 45009
CODE_INVALID_PARAMETER = 40058
# The stand-in's errcode for a key it does not know.
CODE_BAD_KEY = 93000
HINT = ", hint: [1700000000_1_stand-in], from ip: 127.0.0.1"
MESSAGES = {
    CODE_RATE_LIMITED: "api freq out of limit" + HINT,
    CODE_INVALID_PARAMETER: "invalid Request Parameter" + HINT,
    CODE_BAD_KEY: "invalid webhook url" + HINT,
}
# <@userid> in text or markdown content mentions that member.
_MENTION = re.compile(r"<@([^>\s]+)>")


@attrs.frozen
class ReceivedContent:
    """A message the stand-in accepted, with whom it mentions and its arrival time.

    ``mentioned`` contains the user ids of ``mentioned_list`` and of ``<@userid>``
    tags in the content, and the phone numbers of ``mentioned_mobile_list``.
    """

    key: str
    msgtype: str
    content: str
    mentioned: list[str]
    payload: dict[str, Any]
    received_at: float


class WeComStandIn(LoopbackServer):
    """WeCom group robots on loopback; ``add_robot`` registers one and returns its URL.

    ``time_scale`` shortens the rate window (0.1 makes a "minute" 6 s).
    ``content_limits`` replaces the byte limits per msgtype. ``answered``
    lists the non-zero errcodes sent, in order.
    """

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        content_limits: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.time_scale = time_scale
        self.content_limits = content_limits or dict(CONTENT_LIMITS)
        self.messages: list[ReceivedContent] = []
        self.answered: list[int] = []
        self._keys: set[str] = set()
        self._recent: dict[str, deque[float]] = {}

    def add_robot(self, key: str) -> str:
        """Register a robot and return its webhook URL (the server must be running)."""
        self._keys.add(key)
        return f"{self.url}{PATH}?key={key}"

    def fail_next(self, code: int, errmsg: str = "") -> None:
        """Respond to the next valid request with ``code``."""
        body = {"errcode": code, "errmsg": errmsg or MESSAGES.get(code, "error")}
        self.script.append(ScriptedResponse(raw_body=json.dumps(body)))

    @property
    def texts(self) -> list[str]:
        """The text of each accepted message, in order."""
        return [message.content for message in self.messages]

    def routes(self) -> list[web.RouteDef]:
        """Return the robot send route."""
        return [web.post(PATH, self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.request_count += 1
        key = request.query.get("key", "")
        if key not in self._keys:
            return self._error(CODE_BAD_KEY)
        payload = _parse(await request.read())
        if payload is None:
            return self._error(CODE_INVALID_PARAMETER)

        msgtype = payload["msgtype"]
        content = payload[msgtype]["content"]
        limit = self.content_limits[msgtype]
        if len(content.encode("utf-8", "surrogatepass")) > limit:
            detail = f"{msgtype}.content exceed max length {limit}. invalid Request Parameter"
            return self._error(CODE_INVALID_PARAMETER, detail + HINT)
        if self._over_rate(key):
            return self._error(CODE_RATE_LIMITED)
        scripted = self.next_scripted()
        if scripted is not None:
            return await self.respond(request, scripted, None)

        mentioned = _mentions(payload[msgtype])
        received = ReceivedContent(key, msgtype, content, mentioned, payload, time.monotonic())
        self.messages.append(received)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _over_rate(self, key: str) -> bool:
        now = time.monotonic()
        recent = self._recent.setdefault(key, deque())
        while recent and recent[0] <= now - 60 * self.time_scale:
            recent.popleft()
        if len(recent) >= PER_MINUTE:
            return True
        recent.append(now)
        return False

    def _error(self, code: int, errmsg: str = "") -> web.Response:
        self.answered.append(code)
        body = {"errcode": code, "errmsg": errmsg or MESSAGES.get(code, "error")}
        return web.json_response(body)


def _parse(body: bytes) -> dict[str, Any] | None:
    """Return a valid text or markdown message body, or ``None``."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("msgtype") not in CONTENT_LIMITS:
        return None
    fields = payload.get(payload["msgtype"])
    if not isinstance(fields, dict) or not isinstance(fields.get("content"), str):
        return None
    return payload


def _mentions(fields: dict[str, Any]) -> list[str]:
    mentioned = list(fields.get("mentioned_list", []))
    mentioned += fields.get("mentioned_mobile_list", [])
    return mentioned + _MENTION.findall(fields["content"])
