"""Monitor alerts: generic JSON alerts, Prometheus Alertmanager and Grafana alerting.

Endpoints, all under ``/api/plugin/monitor-alert/webhook/`` and all requiring
``Authorization: Bearer <API_TOKEN>`` (503 while ``API_TOKEN`` is empty):

* ``POST /alert``: ``{"service", "level", "message", "timestamp", "metrics"}``.
* ``POST /alertmanager``: an Alertmanager ``webhook_configs`` receiver; set
  ``http_config.authorization.credentials`` to the token.
* ``POST|PUT /grafana``: a Grafana webhook contact point; set its
  Authorization header credentials to the token. With ``GRAFANA_SECRET`` set,
  the contact point's HMAC signature is checked too.

Each request becomes one chat message to ``ALERT_CHAT``; alerts below
``MIN_LEVEL`` are dropped.
"""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core import Plugin, WebhookApp, WebhookRequest, current_app, signatures
from core.config import setting
from core.errors import BadRequest

from .._chat import send_to_chats
from .._i18n import LOCALES, resolve_locale
from .._payload import structure_body
from .._text import DEFAULT_MAX_MESSAGE_LENGTH, truncate_message
from .formatting import Display, format_alert_group, format_generic_alert
from .levels import Level, parse_level
from .models import AlertmanagerNotification, GenericAlert, GrafanaNotification, converter

__all__ = ["MonitorConfig", "alertmanager", "generic_alert", "grafana", "plugin"]

plugin = Plugin(
    "monitor-alert",
    version="1.0.0",
    description="Sends alerts from scripts, Prometheus Alertmanager and Grafana to chats",
    maintenance_aware=True,
)

logger = plugin.logger


@plugin.mount_config()
class MonitorConfig:
    """Settings of the monitor-alert plugin."""

    API_TOKEN: str = setting(
        "",
        title="API 令牌",
        description="Bearer token every sender must present; requests get 503 while it is empty",
        secret=True,
    )
    ALERT_CHAT: str = setting(
        "",
        title="告警会话",
        description="Chat key to alert, e.g. onebot_v11-group_123456; separate several with commas",
        chat_keys=True,
    )
    MIN_LEVEL: str = setting(
        "info",
        title="最低告警级别",
        description="critical, error, warning or info; alerts below it are dropped. Alertmanager "
        "and Grafana alerts take their level from the severity label",
        choices=("critical", "error", "warning", "info"),
    )
    GRAFANA_SECRET: str = setting(
        "",
        title="Grafana HMAC 密钥",
        description="When set, /grafana also checks the contact point's HMAC-SHA256 signature",
        secret=True,
    )
    GRAFANA_SIGNATURE_HEADER: str = setting(
        signatures.GRAFANA_SIGNATURE_HEADER,
        title="Grafana 签名请求头",
        description="The contact point's HMAC signature header",
    )
    GRAFANA_TIMESTAMP_HEADER: str = setting(
        "",
        title="Grafana 时间戳请求头",
        description="The contact point's HMAC timestamp header; empty when it sends none",
    )
    LOCALE: str = setting(
        "zh_CN", title="语言", description="Chat text language: zh_CN or en", choices=LOCALES
    )
    TIMEZONE: str = setting(
        "UTC", title="时区", description="IANA time zone of times in messages, e.g. Asia/Shanghai"
    )
    MAX_MESSAGE_LENGTH: int = setting(
        DEFAULT_MAX_MESSAGE_LENGTH,
        title="消息长度上限",
        description="Longer messages are cut and end in …; 0 disables the cut (characters)",
    )


def _config() -> MonitorConfig:
    return cast(MonitorConfig, plugin.config)


def _timezone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("TIMEZONE %r is not a known IANA time zone; using UTC", name)
        return UTC


def _min_level(name: str) -> Level:
    level = parse_level(name)
    if level is None:
        logger.warning("MIN_LEVEL %r is not critical, error, warning or info; using info", name)
        return Level.INFO
    return level


def _display(config: MonitorConfig) -> Display:
    timezone = _timezone(config.TIMEZONE)
    return Display(
        locale=resolve_locale(config.LOCALE, plugin.name),
        timezone=timezone,
        timezone_name=config.TIMEZONE if timezone is not UTC else "UTC",
        min_level=_min_level(config.MIN_LEVEL),
    )


async def _send(text: str, config: MonitorConfig, request: WebhookRequest) -> dict[str, Any]:
    text = truncate_message(text, config.MAX_MESSAGE_LENGTH)
    sent = await send_to_chats(config.ALERT_CHAT, text, logger, "ALERT_CHAT")
    logger.info("delivery %s to %s queued for %d chat(s)", request.delivery_id, request.path, sent)
    return {"status": "success", "notified": sent}


def _ignored(reason: str) -> dict[str, Any]:
    return {"status": "ignored", "reason": reason}


_require_token = signatures.bearer_token("API_TOKEN")


@plugin.mount_webhook("/alert", methods=["POST"], verify=_require_token)
async def generic_alert(request: WebhookRequest) -> dict[str, Any]:
    """Send one generic alert; 400 names missing or invalid fields."""
    alert = structure_body(converter, await request.json(), GenericAlert, "alert")
    level = parse_level(alert.level)
    if level is None:
        msg = (
            f"invalid alert: invalid fields: level (expected critical, error, warning or info, "
            f"got {alert.level!r})"
        )
        raise BadRequest(msg)

    config = _config()
    display = _display(config)
    if level < display.min_level:
        return _ignored(f"level {level.name.lower()} is below MIN_LEVEL")
    received_at = datetime.fromtimestamp(current_app().clock(), UTC)
    return await _send(format_generic_alert(alert, level, received_at, display), config, request)


@plugin.mount_webhook("/alertmanager", methods=["POST"], verify=_require_token)
async def alertmanager(request: WebhookRequest) -> dict[str, Any]:
    """Send one message for the alert group of an Alertmanager notification."""
    notification = structure_body(
        converter, await request.json(), AlertmanagerNotification, "Alertmanager notification"
    )
    config = _config()
    text = format_alert_group(notification, "Alertmanager", _display(config))
    if text is None:
        return _ignored("no alert at or above MIN_LEVEL")
    return await _send(text, config, request)


class _GrafanaVerifier:
    """Checks the bearer token, then the HMAC signature when ``GRAFANA_SECRET`` is set.

    ``secret_field`` names the setting without which the endpoint returns 503,
    as the core's start-up warning reads it from verifiers.
    """

    secret_field = "API_TOKEN"

    def __init__(self) -> None:
        # Apps that have logged the unchecked-signature warning once.
        self._warned: weakref.WeakSet[WebhookApp] = weakref.WeakSet()

    async def __call__(self, request: WebhookRequest, owner: Plugin) -> None:
        await _require_token(request, owner)
        config = _config()
        if config.GRAFANA_SECRET:
            verify_signature = signatures.grafana(
                "GRAFANA_SECRET",
                header=config.GRAFANA_SIGNATURE_HEADER,
                timestamp_header=config.GRAFANA_TIMESTAMP_HEADER or None,
            )
            await verify_signature(request, owner)
        elif request.headers.get(config.GRAFANA_SIGNATURE_HEADER):
            # Grafana signs only when its contact point has a secret, so the
            # operator most likely forgot to give plughook the same one. Once
            # per app: every alert would repeat it.
            app = current_app()
            if app in self._warned:
                return
            self._warned.add(app)
            logger.warning(
                "delivery %s carries %s, but GRAFANA_SECRET is empty, so only the token was "
                "checked; set plugins.monitor-alert.GRAFANA_SECRET to the contact point's "
                "secret to check the signature too",
                request.delivery_id,
                config.GRAFANA_SIGNATURE_HEADER,
            )


_verify_grafana = _GrafanaVerifier()


# Grafana's contact point lets the user choose POST or PUT.
@plugin.mount_webhook("/grafana", methods=["POST", "PUT"], verify=_verify_grafana)
async def grafana(request: WebhookRequest) -> dict[str, Any]:
    """Send one message for the alert group of a Grafana alerting notification."""
    notification = structure_body(
        converter, await request.json(), GrafanaNotification, "Grafana notification"
    )
    config = _config()
    text = format_alert_group(notification, "Grafana", _display(config))
    if text is None:
        return _ignored("no alert at or above MIN_LEVEL")
    return await _send(text, config, request)
