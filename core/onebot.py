"""The ``onebot_v11`` channel: sends QQ messages through a OneBot v11 HTTP API.

Works with the HTTP servers of NapCat, Lagrange.OneBot and go-cqhttp. Chat key
targets are ``group_<group id>`` (``send_group_msg``) and ``private_<user id>``
(``send_private_msg``). The text goes out as one ``text`` message segment, so
CQ codes such as ``[CQ:at,qq=all]`` in it reach the chat as literal characters.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from .channels import Channel, register_channel_kind, split_chat_key
from .config import redacted_repr, setting, structure_config, toml_key
from .errors import ConfigError, DeliveryError
from .http_channel import (
    MAX_QUOTED_BODY,
    SessionChannel,
    check_http_url,
    check_limits,
    mask_secret,
    parse_json_reply,
    post_json,
    raise_for_http_status,
)
from .records import OutboxMessage

__all__ = ["OneBotV11Channel", "OneBotV11Options"]

logger = logging.getLogger("plughook.channels")

KIND = "onebot_v11"

# Chat key targets and the API action and id parameter each maps to.
_TARGETS = {
    "group": ("send_group_msg", "group_id"),
    "private": ("send_private_msg", "user_id"),
}
_TARGET_PATTERN = re.compile(r"(?P<kind>[a-z]+)_(?P<id>[0-9]+)")
# QQ group and user ids are positive and fit OneBot's int64 id fields.
_MAX_ID = 2**63 - 1

# OneBot v11 "status" values meaning the message was accepted: "ok" (retcode 0)
# and "async" (retcode 1, queued by the implementation, result unknown).
_ACCEPTED_STATUSES = frozenset({"ok", "async"})
_ACCEPTED_RETCODES = frozenset({0, 1})
# Retcodes of "failed" responses that repeating the same request cannot fix:
# 100 is OneBot's invalid-parameters code, and 400/404/1400/1404 carry the HTTP
# meanings "bad request" and "no such API" (1xxx is the form used over WebSocket).
_PERMANENT_RETCODES = frozenset({100, 400, 404, 1400, 1404})
# The HTTP 401/403 meanings carried as retcodes: a missing or wrong access token.
_CREDENTIAL_RETCODES = frozenset({1401, 1403})
# Every other retcode (103 execution failed, 200, 1200, 9000 and unknown ones)
# is taken as a passing failure of the implementation or of QQ: retried.


@attrs.frozen(repr=False)
class OneBotV11Options:
    """Options of a ``kind = "onebot_v11"`` channel table.

    ``api_url`` is the base URL of the OneBot HTTP server, without the action
    (for example ``http://127.0.0.1:3000``). ``access_token`` is sent as
    ``Authorization: Bearer <token>`` when set. ``timeout`` and ``min_interval``
    are in seconds; ``max_length`` is in characters.
    """

    api_url: str
    access_token: str = setting("", title="Access token", secret=True)
    timeout: float = 10.0
    # NOTE: an estimate. OneBot v11 documents no maximum text length and QQ
    # publishes none, so longer parts may work and shorter ones may be needed.
    max_length: int = 1500
    min_interval: float = 1.0
    rate_per_minute: int = 60
    # Send messages that wait for one chat (behind the pace limits) as one.
    coalesce: bool = False

    def __repr__(self) -> str:
        return redacted_repr(self)


@attrs.frozen
class _ApiResponse:
    """The fields of a OneBot v11 API response that decide success.

    ``message`` is NapCat's and Lagrange's error text, ``msg`` go-cqhttp's, and
    ``wording`` a longer explanation that all three may send.
    """

    status: str = ""
    retcode: int | None = None
    message: str = ""
    msg: str = ""
    wording: str = ""

    def detail(self) -> str:
        return self.wording or self.message or self.msg


# Extra keys ("data", "echo", …) are ignored: only the fields above matter.
_response_converter = cattrs.Converter()


class OneBotV11Channel(SessionChannel[OneBotV11Options]):
    """Delivers messages to QQ groups and users through a OneBot v11 HTTP API."""

    _kind = KIND

    def check_chat_key(self, chat_key: str) -> None:
        """Raise the ``DeliveryError`` a send raises for a target other than group_ or private_."""
        self._resolve_target(chat_key)

    async def send(self, message: OutboxMessage) -> None:
        """Send ``message`` as one text segment; raise ``DeliveryError`` unless accepted."""
        session = self._started_session()

        action, id_field, target_id = self._resolve_target(message.chat_key)
        payload = {
            id_field: target_id,
            "message": [{"type": "text", "data": {"text": message.text}}],
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        url = f"{self._options.api_url.rstrip('/')}/{action}"
        reply = await post_json(session, url, body, self._auth_headers(), sender=self._sender)

        token = self._options.access_token
        raise_for_http_status(
            reply, sender=self._sender, credential_settings="access_token", redact=token
        )
        self._check_response(reply.body)
        logger.info("%s delivered message %s to %s", self._sender, message.id, message.chat_key)

    def _auth_headers(self) -> dict[str, str]:
        token = self._options.access_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _resolve_target(self, chat_key: str) -> tuple[str, str, int]:
        """Return the action, id parameter name and id for ``chat_key``."""
        try:
            _, target = split_chat_key(chat_key)
        except (TypeError, ValueError) as exc:
            raise DeliveryError(f"{self._sender}: {exc}", retryable=False) from None

        match = _TARGET_PATTERN.fullmatch(target)
        # The length check keeps int() away from ids of thousands of digits.
        fits = match is not None and len(match["id"]) <= len(str(_MAX_ID))
        target_id = int(match["id"]) if match is not None and fits else 0
        if match is None or match["kind"] not in _TARGETS or not 0 < target_id <= _MAX_ID:
            msg = (
                f"{self._sender}: invalid chat key {chat_key!r}: expected a target "
                f"'group_<group id>' or 'private_<user id>' with a positive numeric id"
            )
            raise DeliveryError(msg, retryable=False)

        action, id_field = _TARGETS[match["kind"]]
        return action, id_field, target_id

    def _check_response(self, body: bytes) -> None:
        """Raise ``DeliveryError`` unless ``body`` is a OneBot v11 success response."""
        response = self._parse_response(body)
        if response.status in _ACCEPTED_STATUSES:
            return
        if not response.status and response.retcode in _ACCEPTED_RETCODES:
            return

        retcode = response.retcode
        detail = mask_secret(response.detail(), self._options.access_token)[:MAX_QUOTED_BODY]
        described = f"{self._sender}: the API returned retcode {retcode}"
        if detail:
            described += f" ({detail!r})"
        if retcode in _CREDENTIAL_RETCODES:
            msg = f"{described}; check access_token"
            raise DeliveryError(msg, retryable=False, config_error=True)
        if retcode in _PERMANENT_RETCODES:
            msg = f"{described}; the request was rejected and is not retried"
            raise DeliveryError(msg, retryable=False)
        raise DeliveryError(described, retryable=True)

    def _parse_response(self, body: bytes) -> _ApiResponse:
        response = parse_json_reply(body, _response_converter, _ApiResponse)
        if response is not None:
            return response
        msg = (
            f"{self._sender}: the server's response is not a OneBot v11 API response; "
            f"check that api_url points to the OneBot HTTP server"
        )
        raise DeliveryError(msg, retryable=False, config_error=True)


def _onebot_factory(name: str, options: Mapping[str, Any]) -> Channel:
    key = f"channels.{toml_key(name)}"
    parsed = structure_config(OneBotV11Options, options, key)

    problems = check_http_url(parsed.api_url, f"{key}.api_url")
    problems.extend(check_limits(parsed, key))
    if problems:
        raise ConfigError(problems)
    return OneBotV11Channel(name, parsed)


register_channel_kind(KIND, _onebot_factory)
