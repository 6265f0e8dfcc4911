"""A OneBot v11 HTTP API stand-in with the message actions NapCat serves.

``/send_group_msg`` and ``/send_private_msg`` check the access token, validate
the body as NapCat does, record the message and respond like NapCat:
``{"status": "ok", "retcode": 0, "data": {"message_id": N}, "message": "", "wording": ""}``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
from aiohttp import web

from . import LoopbackServer, ScriptedResponse

__all__ = ["OneBotStandIn", "ReceivedMessage"]

# Action -> the kind of target it sends to and the id parameter it requires.
ACTIONS = {"send_group_msg": ("group", "group_id"), "send_private_msg": ("private", "user_id")}
# NapCat's response to a missing or wrong access token: HTTP 403 with this message.
TOKEN_FAILED_MESSAGE = "token verify failed"
# Retcode of a request whose parameters fail validation (NapCat and Lagrange).
INVALID_PARAMS_RETCODE = 1400


@attrs.frozen
class ReceivedMessage:
    """A message the stand-in accepted.

    ``target`` is ``group`` or ``private``. ``message`` is the ``message``
    parameter as sent: a segment list, or a CQ-code string from a client that
    sends one. ``body`` is the raw request body, and ``received_at`` is
    ``time.monotonic()`` on arrival.
    """

    action: str
    target: str
    target_id: int
    message: list[dict[str, Any]] | str
    body: bytes
    received_at: float

    @property
    def texts(self) -> list[str]:
        """The ``text`` of each text segment, in order."""
        if isinstance(self.message, str):
            return []
        return [s["data"]["text"] for s in self.message if s.get("type") == "text"]


class OneBotStandIn(LoopbackServer):
    """OneBot v11 HTTP server on loopback that records ``send_*_msg`` calls.

    ``token`` is the access token it expects, from ``Authorization: Bearer`` or
    the ``access_token`` query parameter; empty accepts any request.
    """

    def __init__(
        self,
        *,
        token: str = "",
        failure_ratio: float = 0.0,
        failure: ScriptedResponse | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(failure_ratio=failure_ratio, failure=failure, seed=seed)
        self.token = token
        self.messages: list[ReceivedMessage] = []
        self._next_message_id = 1

    def routes(self) -> list[web.RouteDef]:
        """Return the two message actions, for GET and POST as NapCat serves them."""
        return [
            web.route(method, f"/{action}", self._handle)
            for action in ACTIONS
            for method in ("GET", "POST")
        ]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.request_count += 1
        if not self._token_matches(request):
            return web.json_response({"message": TOKEN_FAILED_MESSAGE}, status=403)

        action = request.path.strip("/")
        params = await self._read_params(request)
        if isinstance(params, web.StreamResponse):
            return params
        problem = _validate(action, params)
        if problem:
            return web.json_response(_result(INVALID_PARAMS_RETCODE, None, problem))

        scripted = self.next_scripted() or ScriptedResponse()
        if scripted.http_status != 200:
            # An HTTP error carries no OneBot result, as from a proxy in front of the server.
            return await self.respond(request, scripted, None)
        data: dict[str, Any] | None = None
        if scripted.delivers:
            data = {"message_id": self._record(action, params, await request.read())}
        return await self.respond(request, scripted, _result(scripted.retcode, data, ""))

    def _token_matches(self, request: web.Request) -> bool:
        if not self.token:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip() == self.token:
            return True
        return request.query.get("access_token") == self.token

    async def _read_params(self, request: web.Request) -> dict[str, Any] | web.StreamResponse:
        if request.method == "GET":
            return dict(request.query)
        if request.content_type != "application/json":
            # OneBot v11 rejects an unsupported Content-Type with 406.
            return web.Response(status=406)
        try:
            params = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400)
        if not isinstance(params, dict):
            return web.Response(status=400)
        return params

    def _record(self, action: str, params: dict[str, Any], body: bytes) -> int:
        target, id_field = ACTIONS[action]
        message_id = self._next_message_id
        self._next_message_id += 1
        self.messages.append(
            ReceivedMessage(
                action=action,
                target=target,
                target_id=int(params[id_field]),
                message=params["message"],
                body=body,
                received_at=time.monotonic(),
            )
        )
        return message_id


def _result(retcode: int, data: dict[str, Any] | None, message: str) -> dict[str, Any]:
    status = {0: "ok", 1: "async"}.get(retcode, "failed")
    return {
        "status": status,
        "retcode": retcode,
        "data": data,
        "message": message,
        "wording": message,
    }


def _validate(action: str, params: dict[str, Any]) -> str:
    """Return what is wrong with the parameters of ``action``, or ``""``."""
    _, id_field = ACTIONS[action]
    target_id = params.get(id_field)
    if isinstance(target_id, bool) or not isinstance(target_id, int | str):
        return f"{id_field} must be a number"
    if not str(target_id).isdigit() or int(target_id) <= 0:
        return f"{id_field} must be a positive number"

    message = params.get("message")
    if isinstance(message, str):
        return "" if message else "message must not be empty"
    if not isinstance(message, list) or not message:
        return "message must be a non-empty segment list or a string"
    for segment in message:
        problem = _validate_segment(segment)
        if problem:
            return problem
    return ""


def _validate_segment(segment: Any) -> str:
    if not isinstance(segment, dict) or not isinstance(segment.get("type"), str):
        return "each message segment must be an object with a string 'type'"
    data = segment.get("data")
    if not isinstance(data, dict):
        return "each message segment must have an object 'data'"
    if segment["type"] == "text" and not isinstance(data.get("text"), str):
        return "a text segment must have a string data.text"
    return ""
