"""GitHub notifier: turns GitHub webhook deliveries into chat messages.

Endpoint: ``POST /api/plugin/github-notifier/webhook/github``. Set the hook's
secret in ``WEBHOOK_SECRET``; until it is set, every delivery gets status 503.
Both content types GitHub offers are accepted: ``application/json`` and
``application/x-www-form-urlencoded`` (the JSON in a ``payload`` field).
A redelivered ``X-GitHub-Delivery`` id gets ``{"status": "duplicate"}`` and
no second message.
"""

from __future__ import annotations

import json
from typing import Any, cast

from core import Plugin, WebhookRequest, signatures
from core.config import setting
from core.errors import BadRequest, UnsupportedMediaType

from .._chat import send_to_chats
from .._i18n import LOCALES, resolve_locale
from .._text import DEFAULT_MAX_MESSAGE_LENGTH, truncate_message
from .filters import event_allowed, parse_list, ref_allowed
from .formatting import format_event

__all__ = ["GitHubConfig", "github_webhook", "plugin"]

EVENT_HEADER = "X-GitHub-Event"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
# GitHub's form-encoded deliveries carry the JSON document in this field.
FORM_PAYLOAD_FIELD = "payload"

plugin = Plugin(
    "github-notifier",
    version="1.0.0",
    description="Sends GitHub events (push, issues, pull requests, releases, …) to chats",
    maintenance_aware=True,
)


@plugin.mount_config()
class GitHubConfig:
    """Settings of the GitHub notifier."""

    WEBHOOK_SECRET: str = setting(
        "",
        title="Webhook 密钥",
        description="The secret set on the GitHub hook; deliveries get 503 while it is empty. "
        "Several secrets separated by commas are all accepted while rotating.",
        secret=True,
    )
    NOTIFICATION_CHAT: str = setting(
        "",
        title="通知会话",
        description="Chat key to notify, e.g. onebot_v11-group_123456; "
        "separate several with commas",
        chat_keys=True,
    )
    EVENTS: str = setting(
        "",
        title="事件白名单",
        description="Comma-separated events (push) or event.action (issues.opened) to notify "
        "about; empty notifies about every event",
    )
    BRANCHES: str = setting(
        "",
        title="分支过滤",
        description="Comma-separated globs of branch names (main, release/*) whose pushes are "
        "notified; refs/tags/* admits tag pushes; empty admits every push",
    )
    LOCALE: str = setting(
        "zh_CN", title="语言", description="Chat text language: zh_CN or en", choices=LOCALES
    )
    MAX_MESSAGE_LENGTH: int = setting(
        DEFAULT_MAX_MESSAGE_LENGTH,
        title="消息长度上限",
        description="Longer messages are cut and end in …; 0 disables the cut (characters)",
    )


def _config() -> GitHubConfig:
    return cast(GitHubConfig, plugin.config)


async def _read_payload(request: WebhookRequest) -> dict[str, Any]:
    """Decode the JSON document of a JSON or form-encoded delivery."""
    content_type = request.content_type
    if content_type == FORM_TYPE:
        form = await request.form()
        field = form.get(FORM_PAYLOAD_FIELD)
        if not isinstance(field, str):
            msg = f"form-encoded delivery without a {FORM_PAYLOAD_FIELD!r} field"
            raise BadRequest(msg)
        try:
            payload = json.loads(field)
        except json.JSONDecodeError as exc:
            msg = f"invalid JSON in the {FORM_PAYLOAD_FIELD!r} field: {exc.msg} (char {exc.pos})"
            raise BadRequest(msg) from None
    elif content_type in (JSON_TYPE, ""):
        payload = await request.json()
    else:
        msg = f"unsupported Content-Type {content_type!r}: use {JSON_TYPE} or {FORM_TYPE}"
        raise UnsupportedMediaType(msg)

    if not isinstance(payload, dict):
        msg = f"the payload must be a JSON object, got {type(payload).__name__}"
        raise BadRequest(msg)
    return payload


def _ignored(event: str, reason: str) -> dict[str, Any]:
    return {"status": "ignored", "event": event, "reason": reason}


@plugin.mount_webhook("/github", methods=["POST"], verify=signatures.github("WEBHOOK_SECRET"))
async def github_webhook(request: WebhookRequest) -> dict[str, Any]:
    """Return ``pong`` for ``ping``; send every other event to ``NOTIFICATION_CHAT``."""
    event = request.headers.get(EVENT_HEADER, "").strip()
    if not event:
        msg = f"missing {EVENT_HEADER} header: GitHub names the event there"
        raise BadRequest(msg)
    payload = await _read_payload(request)
    if event == "ping":
        plugin.logger.info(
            "delivery %s: ping from hook %s", request.delivery_id, payload.get("hook_id")
        )
        return {"message": "pong"}

    config = _config()
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    if not event_allowed(parse_list(config.EVENTS), event, action):
        return _ignored(event, "event not in EVENTS")
    ref = payload.get("ref") if isinstance(payload.get("ref"), str) else None
    if event == "push" and not ref_allowed(parse_list(config.BRANCHES), ref):
        return _ignored(event, "ref not matched by BRANCHES")

    text = format_event(event, payload, resolve_locale(config.LOCALE, plugin.name))
    if text is None:  # pragma: no cover - only ping has no text, and it returned above
        return _ignored(event, "no message for this event")
    text = truncate_message(text, config.MAX_MESSAGE_LENGTH)
    sent = await send_to_chats(config.NOTIFICATION_CHAT, text, plugin.logger, "NOTIFICATION_CHAT")
    plugin.logger.info(
        "delivery %s: %s event queued for %d chat(s)", request.delivery_id, event, sent
    )
    return {"status": "success", "event": event, "notified": sent}
