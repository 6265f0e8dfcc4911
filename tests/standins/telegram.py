"""A Telegram Bot API stand-in: ``POST /bot<token>/sendMessage``.

It checks what the Bot API checks and responds as it does
(https://core.telegram.org/bots/api#making-requests). A wrong token gets 401
"Unauthorized" and another method 404 "Not Found". An unknown chat gets 400
"Bad Request: chat not found", a migrated group 400 with
``migrate_to_chat_id``, and a user who blocked the bot 403. The text must be 1
to 4,096 UTF-16 code units. The flood limits of the Bots FAQ apply: one
message a second per chat, 20 a minute per group (negative chat ids) and 30 a
second overall, each rejected with 429 and ``parameters.retry_after``."""

from __future__ import annotations

import json
import math
import time
from collections import deque
from typing import Any

import attrs
from aiohttp import web

from . import LoopbackServer, ScriptedResponse

__all__ = ["ReceivedText", "TelegramStandIn"]

MAX_TEXT_UNITS = 4096
PER_CHAT_SECOND = 1
PER_GROUP_MINUTE = 20
OVERALL_SECOND = 30


@attrs.frozen
class ReceivedText:
    """A message the stand-in accepted: the request's fields and arrival time."""

    chat_id: int | str
    text: str
    payload: dict[str, Any]
    received_at: float


@attrs.frozen
class _Chat:
    migrate_to: int | None
    blocked: bool


class TelegramStandIn(LoopbackServer):
    """A Bot API server on loopback for one bot, whose token is ``token``.

    ``add_chat`` makes a chat known. ``time_scale`` shortens the flood windows
    (0.1 makes a "minute" 6 s). ``answered`` lists the error codes sent.
    """

    def __init__(self, *, token: str, time_scale: float = 1.0) -> None:
        super().__init__()
        self.token = token
        self.time_scale = time_scale
        self.messages: list[ReceivedText] = []
        self.answered: list[int] = []
        self._chats: dict[int | str, _Chat] = {}
        self._recent: dict[int | str, deque[float]] = {}
        self._overall: deque[float] = deque()
        self._next_id = 1

    def add_chat(
        self, chat_id: int | str, *, migrate_to: int | None = None, blocked: bool = False
    ) -> None:
        """Make ``chat_id`` known, optionally migrated to a supergroup or blocking the bot."""
        self._chats[chat_id] = _Chat(migrate_to, blocked)

    def fail_next(self, code: int, description: str, **parameters: int) -> None:
        """Respond to the next valid request with ``code``, ``description`` and ``parameters``."""
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.script.append(ScriptedResponse(http_status=code, raw_body=json.dumps(body)))

    @property
    def texts(self) -> list[str]:
        """The text of each accepted message, in order."""
        return [message.text for message in self.messages]

    def routes(self) -> list[web.RouteDef]:
        """Return the method route."""
        return [web.post("/bot{token}/{method}", self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.request_count += 1
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        if request.match_info["method"] != "sendMessage":
            return self._error(404, "Not Found")
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return self._error(400, "Bad Request: can't parse JSON")
        problem = self._problem(payload)
        if problem is not None:
            return problem
        delay = self._flood_wait(payload["chat_id"])
        if delay:
            retry_after = math.ceil(delay)
            description = f"Too Many Requests: retry after {retry_after}"
            return self._error(429, description, retry_after=retry_after)
        scripted = self.next_scripted()
        if scripted is not None:
            return await self.respond(request, scripted, None)
        return web.json_response({"ok": True, "result": self._record(payload)})

    def _problem(self, payload: Any) -> web.Response | None:
        """Return the error response for an invalid request, or ``None``."""
        if not isinstance(payload, dict) or "chat_id" not in payload:
            return self._error(400, "Bad Request: chat_id is empty")
        chat = self._chats.get(payload["chat_id"])
        if chat is None:
            return self._error(400, "Bad Request: chat not found")
        if chat.migrate_to is not None:
            description = "Bad Request: group chat was upgraded to a supergroup chat"
            return self._error(400, description, migrate_to_chat_id=chat.migrate_to)
        if chat.blocked:
            return self._error(403, "Forbidden: bot was blocked by the user")
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le", "surrogatepass")) // 2 > MAX_TEXT_UNITS:
            return self._error(400, "Bad Request: message is too long")
        return None

    def _flood_wait(self, chat_id: int | str) -> float:
        """Count a message; return how long it must wait if a flood limit is reached, or 0."""
        now = time.monotonic()
        second, minute = self.time_scale, 60 * self.time_scale
        recent = self._recent.setdefault(chat_id, deque())
        while recent and recent[0] <= now - minute:
            recent.popleft()
        while self._overall and self._overall[0] <= now - second:
            self._overall.popleft()
        waits = []
        last_second = [at for at in recent if at > now - second]
        if len(last_second) >= PER_CHAT_SECOND:
            waits.append(last_second[0] + second - now)
        if isinstance(chat_id, int) and chat_id < 0 and len(recent) >= PER_GROUP_MINUTE:
            waits.append(recent[0] + minute - now)
        if len(self._overall) >= OVERALL_SECOND:
            waits.append(self._overall[0] + second - now)
        if waits:
            return max(max(waits), 0.001)
        recent.append(now)
        self._overall.append(now)
        return 0.0

    def _record(self, payload: dict[str, Any]) -> dict[str, Any]:
        chat_id, text = payload["chat_id"], payload["text"]
        self.messages.append(ReceivedText(chat_id, text, payload, time.monotonic()))
        message_id, self._next_id = self._next_id, self._next_id + 1
        kind = "group" if isinstance(chat_id, int) and chat_id < 0 else "private"
        chat = {"id": chat_id, "type": kind}
        return {"message_id": message_id, "date": int(time.time()), "chat": chat, "text": text}

    def _error(self, code: int, description: str, **parameters: int) -> web.Response:
        self.answered.append(code)
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)
