"""The ``http`` channel: delivers each message as a signed JSON POST to a URL.

The body is ``{"chat_key": …, "text": …, "message_id": …}``. With a ``secret``
the request is signed with the Standard Webhooks scheme (``webhook-id`` is the
message id, so a receiver can drop the repeats that retries may cause).

This module also contains the outbound HTTP plumbing that the chat channels
share: the ``SessionChannel`` base class, which owns one client session,
``post_json``, ``raise_for_http_status``, ``parse_retry_after`` and the helpers
that read JSON replies and mask credentials in errors.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, NoReturn, Protocol, TypeVar

import aiohttp
import attrs
import cattrs
from multidict import CIMultiDictProxy
from standardwebhooks import Webhook
from yarl import URL

from .channels import Channel, register_channel_kind
from .config import redacted_repr, setting, structure_config, toml_key
from .errors import ConfigError, DeliveryError
from .records import OutboxMessage

__all__ = [
    "ChannelOptions",
    "HttpChannel",
    "HttpChannelOptions",
    "HttpReply",
    "SessionChannel",
    "check_http_url",
    "check_limits",
    "mask_secret",
    "parse_json_reply",
    "parse_retry_after",
    "post_json",
    "post_json_redacted",
    "quote_body",
    "raise_for_foreign_reply",
    "raise_for_http_status",
    "redacted_error",
]

logger = logging.getLogger("plughook.channels")

# Statuses after which a later attempt may succeed: 408 Request Timeout,
# 429 Too Many Requests (RFC 9110 section 15.5.9, RFC 6585 section 4) and every 5xx.
RETRYABLE_STATUSES = frozenset({408, 429})
# Statuses that only a configuration change fixes: a missing or wrong credential.
CREDENTIAL_STATUSES = frozenset({401, 403})
# Prefix of Standard Webhooks secrets before their base64 key.
SECRET_PREFIX = "whsec_"
# Maximum length, in characters, of a response body quoted in an error message.
MAX_QUOTED_BODY = 200


T = TypeVar("T")


@attrs.frozen
class HttpReply:
    """Status, headers and body of a response to ``post_json``."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def check_http_url(url: str, key: str) -> list[tuple[str, str]]:
    """Return the configuration problems of ``url`` under the dotted ``key``: none if valid."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        return [(key, "expected an http:// or https:// URL, for example http://127.0.0.1:3000")]
    return []


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the delay in seconds that a ``Retry-After`` header requests, or ``None``.

    The header holds seconds or an HTTP date (RFC 9110 section 10.2.3); a date
    in the past gives 0.
    """
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    sender: str,
) -> HttpReply:
    """POST the JSON ``body`` to ``url`` and return the reply, whatever its status.

    Network failures become retryable ``DeliveryError``s whose message starts
    with ``sender`` (for example ``onebot_v11 channel 'qq'``). When the request
    may have reached the server before the failure (timeouts, connections closed
    mid-exchange), the error is marked ``maybe_delivered``. Redirects are not
    followed, because they would turn the POST into a GET. The session's
    ``timeout.total`` bounds the whole exchange.
    """
    timeout = session.timeout.total or 0.0
    all_headers = {"Content-Type": "application/json", **headers}
    try:
        async with session.post(
            url,
            data=body,
            headers=all_headers,
            allow_redirects=False,
        ) as response:
            content = await response.read()
            return HttpReply(response.status, response.headers, content)
    except aiohttp.ConnectionTimeoutError as exc:
        msg = f"{sender}: connecting timed out after {timeout:g} s; check that the server runs"
        raise DeliveryError(msg, retryable=True) from exc
    except TimeoutError as exc:
        msg = f"{sender}: no response within {timeout:g} s; the message may have been delivered"
        raise DeliveryError(msg, retryable=True, maybe_delivered=True) from exc
    except aiohttp.ClientConnectorError as exc:
        msg = f"{sender}: connection failed ({exc.os_error}); check that the server runs"
        raise DeliveryError(msg, retryable=True) from exc
    except aiohttp.InvalidURL as exc:
        msg = f"{sender}: invalid URL; fix the channel's URL setting"
        raise DeliveryError(msg, retryable=False, config_error=True) from exc
    except (
        aiohttp.ClientOSError,
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientPayloadError,
    ) as exc:
        msg = f"{sender}: connection lost during the request ({type(exc).__name__}: {exc})"
        raise DeliveryError(msg, retryable=True, maybe_delivered=True) from exc
    except aiohttp.ClientError as exc:
        msg = f"{sender}: request failed ({type(exc).__name__}: {exc})"
        raise DeliveryError(msg, retryable=True) from exc


async def post_json_redacted(
    session: aiohttp.ClientSession, url: str, body: bytes, *, sender: str, secret: str
) -> HttpReply:
    """POST as ``post_json`` does, without extra headers, to a ``url`` that contains ``secret``.

    Errors have ``secret`` masked in their message and no cause attached, so
    that neither the message nor a logged traceback shows the URL's credential.
    """
    try:
        return await post_json(session, url, body, {}, sender=sender)
    except DeliveryError as exc:
        raise redacted_error(exc, secret) from None


def raise_for_http_status(
    reply: HttpReply, *, sender: str, credential_settings: str, redact: str = ""
) -> None:
    """Raise ``DeliveryError`` unless ``reply`` has a 2xx status.

    401 and 403 are configuration errors whose message names
    ``credential_settings`` to check (for example ``access_token``); 408, 429 and 5xx are
    retryable and carry the ``Retry-After`` delay; any other status is
    permanent. ``redact`` (a credential) is masked wherever the quoted response
    body contains it.
    """
    status = reply.status
    if 200 <= status < 300:
        return

    detail = quote_body(reply.body, redact)
    if status in CREDENTIAL_STATUSES:
        msg = f"{sender}: HTTP {status} {detail}; check the channel's {credential_settings}"
        raise DeliveryError(msg, retryable=False, config_error=True)
    if status in RETRYABLE_STATUSES or status >= 500:
        msg = f"{sender}: HTTP {status} {detail}"
        retry_after = parse_retry_after(reply.headers)
        raise DeliveryError(msg, retryable=True, retry_after=retry_after)
    msg = f"{sender}: HTTP {status} {detail}; the request was rejected and is not retried"
    raise DeliveryError(msg, retryable=False)


def quote_body(body: bytes, redact: str = "") -> str:
    """Return the start of a response body for an error message, ``redact`` masked."""
    # Redact before cutting, so that a cut cannot leave part of ``redact`` behind.
    text = body.decode("utf-8", "replace").strip()
    if redact:
        text = text.replace(redact, "***")
    if len(text) > MAX_QUOTED_BODY:
        text = text[:MAX_QUOTED_BODY] + "…"
    return repr(text) if text else "(empty body)"


def mask_secret(text: str, secret: str) -> str:
    """Return ``text`` with every occurrence of ``secret`` shown as ``***``."""
    return text.replace(secret, "***") if secret else text


def redacted_error(error: DeliveryError, secret: str) -> DeliveryError:
    """Return a copy of ``error`` with ``secret`` masked in its message."""
    return DeliveryError(
        mask_secret(str(error), secret),
        retryable=error.retryable,
        retry_after=error.retry_after,
        config_error=error.config_error,
        maybe_delivered=error.maybe_delivered,
    )


def parse_json_reply(body: bytes, converter: cattrs.Converter, reply_type: type[T]) -> T | None:
    """Return ``body`` structured as ``reply_type``, or ``None`` unless it is such a JSON object."""
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            return converter.structure(data, reply_type)
    except (ValueError, TypeError, cattrs.BaseValidationError):
        pass
    return None


def raise_for_foreign_reply(
    reply: HttpReply,
    *,
    sender: str,
    expected: str,
    credential_settings: str,
    redact: str,
    check: str = "",
) -> NoReturn:
    """Raise ``DeliveryError`` for a reply that is not the platform's JSON response.

    A status other than 2xx raises as ``raise_for_http_status`` does. A 2xx
    reply is a configuration error, because the URL reached something other
    than ``expected``. Its message names ``check``, by default
    ``credential_settings``.
    """
    raise_for_http_status(
        reply, sender=sender, credential_settings=credential_settings, redact=redact
    )
    msg = f"{sender}: the response is not {expected}; check {check or credential_settings}"
    raise DeliveryError(msg, retryable=False, config_error=True)


class ChannelOptions(Protocol):
    """The options that every ``SessionChannel`` reads: request timeout and pacing."""

    @property
    def timeout(self) -> float: ...

    @property
    def max_length(self) -> int | None: ...

    @property
    def min_interval(self) -> float: ...

    @property
    def rate_per_minute(self) -> int: ...


OptionsT = TypeVar("OptionsT", bound=ChannelOptions)


class SessionChannel(Channel, Generic[OptionsT]):
    """A channel that sends through one HTTP client session, open from ``start()`` to ``close()``.

    The session's total timeout is ``options.timeout``. A ``max_length`` of
    ``None`` counts as 0, no limit. Subclasses set ``_kind``, the channel kind
    that starts their error messages.
    """

    _kind: ClassVar[str]

    def __init__(self, name: str, options: OptionsT) -> None:
        self.name = name
        self.max_length = options.max_length or 0
        self.min_interval = options.min_interval
        self.rate_per_minute = options.rate_per_minute
        self.coalesce = bool(getattr(options, "coalesce", False))
        self.send_timeout = options.timeout
        self._options = options
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, options={self._options!r})"

    @property
    def _sender(self) -> str:
        return f"{self._kind} channel {self.name!r}"

    async def start(self) -> None:
        """Open the HTTP client session."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._options.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        """Close the HTTP client session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _started_session(self) -> aiohttp.ClientSession:
        """Return the open session; raise ``RuntimeError`` before ``start()``."""
        if self._session is None:
            msg = f"{self._sender} is not started; call start() before send()"
            raise RuntimeError(msg)
        return self._session


@attrs.frozen(repr=False)
class HttpChannelOptions:
    """Options of a ``kind = "http"`` channel table.

    ``secret`` is a Standard Webhooks secret (base64, optionally prefixed with
    ``whsec_``); empty sends unsigned requests. ``headers`` are added to every
    request, for example an ``Authorization`` header. ``timeout`` is in seconds.
    """

    url: str
    secret: str = setting("", title="Signing secret", secret=True)
    # Secret because the headers usually carry a credential.
    headers: dict[str, str] = setting({}, title="Extra request headers", secret=True)
    timeout: float = 10.0
    max_length: int = 0
    min_interval: float = 0.0
    rate_per_minute: int = 0
    # Send messages that wait for one chat as one request.
    coalesce: bool = False

    def __repr__(self) -> str:
        return redacted_repr(self)


class HttpChannel(SessionChannel[HttpChannelOptions]):
    """Delivers messages as JSON POSTs to one URL, signed when a secret is set."""

    _kind = "http"

    def __init__(
        self,
        name: str,
        options: HttpChannelOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, options)
        self._signer = Webhook(options.secret) if options.secret else None
        self._clock = clock

    async def send(self, message: OutboxMessage) -> None:
        """POST ``message`` to the URL; raise ``DeliveryError`` unless the response is 2xx."""
        session = self._started_session()
        sender = self._sender

        payload = {"chat_key": message.chat_key, "text": message.text, "message_id": message.id}
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {**self._options.headers, **self._signature_headers(message.id, body)}
        reply = await post_json(
            session,
            self._options.url,
            body,
            headers,
            sender=sender,
        )
        raise_for_http_status(
            reply,
            sender=sender,
            credential_settings="secret and headers",
            redact=self._options.secret,
        )
        logger.info(
            "http channel %s delivered message %s to %s", self.name, message.id, message.chat_key
        )

    def _signature_headers(self, message_id: str, body: bytes) -> dict[str, str]:
        if self._signer is None:
            return {}
        timestamp = datetime.fromtimestamp(int(self._clock()), UTC)
        signature: str = self._signer.sign(message_id, timestamp, body)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature,
        }


def _http_channel_factory(name: str, options: Mapping[str, Any]) -> Channel:
    key = f"channels.{toml_key(name)}"
    parsed = structure_config(HttpChannelOptions, options, key)

    problems = check_http_url(parsed.url, f"{key}.url")
    if parsed.secret and not _is_valid_secret(parsed.secret):
        problems.append(
            (f"{key}.secret", "expected a base64 secret, optionally prefixed with 'whsec_'")
        )
    problems.extend(check_limits(parsed, key))
    if problems:
        raise ConfigError(problems)
    return HttpChannel(name, parsed)


def _is_valid_secret(secret: str) -> bool:
    # Webhook() skips characters outside the base64 alphabet; a typo would
    # silently become another key, so the check here is strict.
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        return False
    return bool(key)


def check_limits(options: Any, key: str) -> list[tuple[str, str]]:
    """Return problems with the ``timeout`` and pacing fields of channel ``options``."""
    problems: list[tuple[str, str]] = []
    if options.timeout <= 0:
        problems.append((f"{key}.timeout", "expected a number of seconds greater than 0"))
    for field in ("max_length", "min_interval", "rate_per_minute"):
        if getattr(options, field) < 0:
            problems.append((f"{key}.{field}", "expected 0 (no limit) or a positive number"))
    return problems


register_channel_kind("http", _http_channel_factory)
