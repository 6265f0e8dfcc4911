"""Sender verification for webhook deliveries: HMAC signatures and shared tokens.

The module has two layers.

* Pure functions, one pair per scheme: ``verify_<scheme>(body, headers, secrets)``
  returns ``None`` for an authentic delivery and raises a ``SignatureError``
  otherwise, and ``sign_<scheme>(body, secret)`` produces the header value a
  sender would send. They work on the raw body bytes exactly as received, never
  on decoded text or re-serialised JSON, and compare digests with
  ``hmac.compare_digest``. Each accepts one secret or several (rotation: any
  of them may match).
* Verifier factories (``github()``, ``standard_webhooks()``, ``stripe()``, …)
  that endpoints pass as ``plugin.mount_webhook("/path", verify=...)``. A
  verifier reads the secret from a plugin config field on every request and
  fails closed: 503 while no secret is configured, 401 for a missing, malformed
  or wrong signature.

Exceptions::

    ValueError
    ├── SignatureError                 the delivery is not authentic (401)
    │   ├── MissingSignature           "missing signature"
    │   ├── MalformedSignature         "malformed signature"
    │   ├── SignatureMismatch          "signature mismatch"
    │   └── TimestampOutOfTolerance    "timestamp outside tolerance"
    └── InvalidSecret                  the configured secret is unusable (503)

Messages and log lines name the plugin, path, delivery id and config field,
never a secret or a signature.
"""

from __future__ import annotations

import abc
import base64
import binascii
import functools
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, NoReturn

import attrs
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from .config import toml_key
from .datastructures import Headers, make_headers
from .errors import ServiceUnavailable, Unauthorized
from .request import WebhookRequest

__all__ = [
    "DEFAULT_TOLERANCE",
    "GITEA_SIGNATURE_HEADERS",
    "GITHUB_DELIVERY_HEADER",
    "GITHUB_SHA1_HEADER",
    "GITHUB_SIGNATURE_HEADER",
    "GITLAB_TOKEN_HEADER",
    "GRAFANA_SIGNATURE_HEADER",
    "STANDARD_WEBHOOKS_ID_HEADER",
    "STANDARD_WEBHOOKS_SIGNATURE_HEADER",
    "STANDARD_WEBHOOKS_TIMESTAMP_HEADER",
    "STRIPE_SIGNATURE_HEADER",
    "BearerTokenVerifier",
    "GitHubVerifier",
    "GitLabVerifier",
    "GiteaVerifier",
    "GrafanaVerifier",
    "HmacVerifier",
    "InvalidSecret",
    "InvalidToken",
    "MalformedSignature",
    "MalformedToken",
    "MissingSignature",
    "MissingToken",
    "SignatureError",
    "SignatureMismatch",
    "SignatureVerifier",
    "StandardWebhooksVerifier",
    "StripeVerifier",
    "TimestampOutOfTolerance",
    "bearer_token",
    "gitea",
    "github",
    "gitlab",
    "grafana",
    "hmac_signature",
    "parse_secrets",
    "sign_gitea",
    "sign_github",
    "sign_grafana",
    "sign_hmac",
    "sign_standard_webhooks",
    "sign_stripe",
    "standard_webhooks",
    "stripe",
    "verify_bearer_token",
    "verify_gitea",
    "verify_github",
    "verify_gitlab",
    "verify_grafana",
    "verify_hmac",
    "verify_standard_webhooks",
    "verify_stripe",
]

logger = logging.getLogger("plughook.signatures")

# standardwebhooks 1.3 accepts timestamps within five minutes of the receiver's
# clock (``timedelta(minutes=5)`` in ``Webhook.verify``). Stripe-style and Grafana
# timestamps get the same window because Grafana documents no number.
DEFAULT_TOLERANCE = 300

# GitHub signs with HMAC-SHA256 as ``sha256=<hex>``. Per GitHub's changelog of
# 2020-10-26, the SHA-1 header is kept only for compatibility with existing
# integrations and should not be relied on because of SHA-1 collisions.
GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
GITHUB_SHA1_HEADER = "X-Hub-Signature"
GITHUB_DELIVERY_HEADER = "X-GitHub-Delivery"

STANDARD_WEBHOOKS_ID_HEADER = "webhook-id"
STANDARD_WEBHOOKS_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_WEBHOOKS_SIGNATURE_HEADER = "webhook-signature"
_STANDARD_WEBHOOKS_VERSION = "v1"

STRIPE_SIGNATURE_HEADER = "Stripe-Signature"

GRAFANA_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"

# Gitea sends X-Gitea-Signature, and Forgejo sends the same value under both names.
GITEA_SIGNATURE_HEADERS = ("X-Gitea-Signature", "X-Forgejo-Signature")

GITLAB_TOKEN_HEADER = "X-Gitlab-Token"

_AUTHORIZATION_HEADER = "Authorization"
_BEARER_SCHEME = "bearer"

# GitHub and Standard Webhooks ids are UUIDs or short tokens, so a longer header
# value is not written to the log.
_MAX_LOGGED_DELIVERY_ID = 128

Algorithm = Literal["sha256", "sha1", "sha512"]
Encoding = Literal["hex", "base64"]
_ALGORITHMS: tuple[Algorithm, ...] = ("sha256", "sha1", "sha512")
_ENCODINGS: tuple[Encoding, ...] = ("hex", "base64")

Secret = str | bytes
Secrets = str | bytes | Iterable[str | bytes]


class SignatureError(ValueError):
    """Raised when a delivery is not authentic. ``reason`` is the fixed client-facing text."""

    reason: ClassVar[str] = "invalid signature"

    def __init__(self) -> None:
        super().__init__(self.reason)


class MissingSignature(SignatureError):
    """Raised when the signature or token header is absent or empty."""

    reason = "missing signature"


class MalformedSignature(SignatureError):
    """Raised when a signature header is present but cannot be parsed.

    This covers a wrong prefix, bad hex or base64, a digest of the wrong
    length, and a signed timestamp or message id that is absent or not a
    decimal number.
    """

    reason = "malformed signature"


class SignatureMismatch(SignatureError):
    """Raised when no configured secret produces a received signature or token."""

    reason = "signature mismatch"


class MissingToken(MissingSignature):
    """Raised when a shared-token header (bearer, GitLab) is absent or empty."""

    reason = "missing token"


class MalformedToken(MalformedSignature):
    """Raised when ``Authorization`` does not hold ``Bearer <token>``."""

    reason = "malformed token"


class InvalidToken(SignatureMismatch):
    """Raised when a shared token matches no configured secret."""

    reason = "invalid token"


class TimestampOutOfTolerance(SignatureError):
    """Raised when a signed timestamp is further from the clock than the tolerance."""

    reason = "timestamp outside tolerance"


class InvalidSecret(ValueError):
    """Raised when no secret is given, or a secret cannot be used by the scheme.

    A Standard Webhooks secret must be base64 (optionally ``whsec_``-prefixed).
    The message never contains the secret.
    """


# ---------------------------------------------------------------------------
# Shared steps


def _secret_list(secrets: Secrets) -> list[Secret]:
    """Return the non-empty secrets. A lone ``str`` or ``bytes`` is one secret, not a sequence."""
    items = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    kept = [item for item in items if item]
    if not kept:
        msg = "no webhook secret given: pass at least one non-empty secret"
        raise InvalidSecret(msg)
    return kept


def _secret_keys(secrets: Secrets) -> list[bytes]:
    """Return the non-empty secrets as HMAC keys, encoding a ``str`` as UTF-8."""
    return [item.encode() if isinstance(item, str) else item for item in _secret_list(secrets)]


def _header(headers: Headers, name: str) -> str | None:
    """Return the first value of a header with surrounding whitespace removed, or None if empty."""
    value = headers.get(name, "").strip()
    return value or None


# ASCII hex digits only: bytes.fromhex would also accept spaces between pairs.
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")


def _decode_digest(text: str, encoding: Encoding, size: int) -> bytes:
    """Decode a received digest, raising ``MalformedSignature`` unless it is ``size`` bytes."""
    if encoding == "hex":
        if len(text) != 2 * size or _HEX_DIGITS.fullmatch(text) is None:
            raise MalformedSignature
        return bytes.fromhex(text)

    try:
        digest = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII str
        raise MalformedSignature from None
    if len(digest) != size:
        raise MalformedSignature
    return digest


def _strip_prefix(value: str, prefix: str) -> str:
    if not value.startswith(prefix):
        raise MalformedSignature
    return value[len(prefix) :]


def _check_digests(
    keys: list[bytes], message: bytes, received: list[bytes], algorithm: Algorithm
) -> None:
    """Raise ``SignatureMismatch`` unless some key signs ``message`` to some received digest."""
    for key in keys:
        expected = hmac.new(key, message, algorithm).digest()
        for digest in received:
            if hmac.compare_digest(expected, digest):
                return
    raise SignatureMismatch


def _parse_timestamp(text: str | None) -> int:
    """Parse a signed Unix timestamp in seconds, as ASCII decimal digits only."""
    if text is None or not (text.isascii() and text.isdigit()):
        raise MalformedSignature
    try:
        return int(text)
    except ValueError:  # longer than Python's int conversion limit
        raise MalformedSignature from None


def _check_tolerance(timestamp: int, now: float | None, tolerance: float) -> None:
    current = time.time() if now is None else now
    # Comparing an int with a float is exact in Python, while ``current - timestamp``
    # would overflow for a timestamp of hundreds of digits.
    if timestamp < current - tolerance or timestamp > current + tolerance:
        raise TimestampOutOfTolerance


# Digest sizes in bytes, looked up once instead of building a hash object per request.
_DIGEST_SIZES = {name: hashlib.new(name).digest_size for name in _ALGORITHMS}


def _digest_size(algorithm: Algorithm) -> int:
    size = _DIGEST_SIZES.get(algorithm)
    if size is None:
        msg = f"unsupported HMAC algorithm {algorithm!r}: use one of {', '.join(_ALGORITHMS)}"
        raise ValueError(msg)
    return size


def _check_encoding(encoding: Encoding) -> None:
    if encoding not in _ENCODINGS:
        msg = f"unsupported digest encoding {encoding!r}: use one of {', '.join(_ENCODINGS)}"
        raise ValueError(msg)


def _encode_digest(digest: bytes, encoding: Encoding) -> str:
    _check_encoding(encoding)
    if encoding == "hex":
        return digest.hex()
    return base64.b64encode(digest).decode("ascii")


def _key(secret: Secret) -> bytes:
    return _secret_keys(secret)[0]


# ---------------------------------------------------------------------------
# Generic HMAC


def sign_hmac(
    body: bytes,
    secret: Secret,
    *,
    algorithm: Algorithm = "sha256",
    encoding: Encoding = "hex",
    prefix: str = "",
) -> str:
    """Return ``prefix`` followed by the encoded HMAC of ``body`` under ``secret``."""
    _digest_size(algorithm)
    digest = hmac.new(_key(secret), body, algorithm).digest()
    return prefix + _encode_digest(digest, encoding)


def verify_hmac(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Secrets,
    *,
    header: str,
    algorithm: Algorithm = "sha256",
    encoding: Encoding = "hex",
    prefix: str = "",
) -> None:
    """Verify an HMAC of the raw body sent in ``header`` as ``<prefix><hex or base64>``.

    Raises ``MissingSignature``, ``MalformedSignature`` or ``SignatureMismatch``.
    """
    size = _digest_size(algorithm)
    _check_encoding(encoding)
    keys = _secret_keys(secrets)
    value = _header(make_headers(headers), header)
    if value is None:
        raise MissingSignature

    digest = _decode_digest(_strip_prefix(value, prefix), encoding, size)
    _check_digests(keys, body, [digest], algorithm)


# ---------------------------------------------------------------------------
# GitHub


def sign_github(
    body: bytes, secret: Secret, *, algorithm: Literal["sha256", "sha1"] = "sha256"
) -> str:
    """Return the ``X-Hub-Signature-256`` value ``sha256=<hex>``.

    With ``algorithm="sha1"`` it returns the legacy ``X-Hub-Signature`` value ``sha1=<hex>``.
    """
    return sign_hmac(body, secret, algorithm=algorithm, prefix=f"{algorithm}=")


def verify_github(
    body: bytes, headers: Mapping[str, str], secrets: Secrets, *, allow_sha1: bool = False
) -> None:
    """Verify GitHub's ``X-Hub-Signature-256: sha256=<hex>`` over the raw body.

    With ``allow_sha1=True`` a delivery without that header may instead carry
    the legacy ``X-Hub-Signature: sha1=<hex>``. When both are present, only the
    SHA-256 one is checked.
    """
    keys = _secret_keys(secrets)
    headers = make_headers(headers)
    algorithm: Algorithm = "sha256"
    value = _header(headers, GITHUB_SIGNATURE_HEADER)
    if value is None and allow_sha1:
        algorithm = "sha1"
        value = _header(headers, GITHUB_SHA1_HEADER)
    if value is None:
        raise MissingSignature

    hex_digest = _strip_prefix(value, f"{algorithm}=")
    digest = _decode_digest(hex_digest, "hex", _digest_size(algorithm))
    _check_digests(keys, body, [digest], algorithm)


# ---------------------------------------------------------------------------
# Standard Webhooks, through the official ``standardwebhooks`` package


def _standard_webhook(secret: Secret) -> Webhook:
    """Build the library's signer, turning its secret errors into ``InvalidSecret``."""
    try:
        return Webhook(secret)
    except (binascii.Error, EmptyWebhookSecretError):
        msg = "Standard Webhooks secret is not valid: expected base64, optionally prefixed whsec_"
        raise InvalidSecret(msg) from None


def _standard_webhooks_sign(webhook: Webhook, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the library's ``v1,<base64>`` signature of ``{msg_id}.{timestamp}.{body}``."""
    signed_at = datetime.fromtimestamp(timestamp, tz=UTC)
    signature: str = webhook.sign(msg_id=msg_id, timestamp=signed_at, data=body)
    return signature


def _standard_webhooks_digests(value: str) -> list[bytes]:
    """Return the ``v1`` digests of a ``webhook-signature`` value, ignoring other versions."""
    digests = []
    for entry in value.split():
        version, comma, encoded = entry.partition(",")
        if not comma:
            raise MalformedSignature
        if version == _STANDARD_WEBHOOKS_VERSION:
            digests.append(_decode_digest(encoded, "base64", hashlib.sha256().digest_size))
    if not digests:
        raise MalformedSignature
    return digests


def sign_standard_webhooks(body: bytes, secret: Secret, *, msg_id: str, timestamp: int) -> str:
    """Return the ``webhook-signature`` value (``v1,<base64>``) for one message.

    ``secret`` is ``whsec_<base64>`` (the prefix is optional) or the raw key bytes.
    """
    return _standard_webhooks_sign(_standard_webhook(secret), msg_id, timestamp, body)


def verify_standard_webhooks(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Secrets,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Verify a Standard Webhooks delivery (``webhook-id``, ``-timestamp``, ``-signature``).

    ``webhook-signature`` may list several space-separated signatures. Any
    ``v1`` one may match, and other versions are ignored. The timestamp must be
    within ``tolerance`` seconds of ``now`` (the system clock when None).

    The package's own ``Webhook.verify`` reads the system clock, so this
    function checks the timestamp itself and uses the package to compute the
    expected signature. An absent ``webhook-signature`` raises
    ``MissingSignature``, and an absent id or timestamp next to a signature
    raises ``MalformedSignature``. A secret that is not base64 raises ``InvalidSecret``.
    """
    webhooks = [_standard_webhook(secret) for secret in _secret_list(secrets)]
    headers = make_headers(headers)
    value = _header(headers, STANDARD_WEBHOOKS_SIGNATURE_HEADER)
    if value is None:
        raise MissingSignature
    msg_id = _header(headers, STANDARD_WEBHOOKS_ID_HEADER)
    if msg_id is None:
        raise MalformedSignature
    timestamp = _parse_timestamp(_header(headers, STANDARD_WEBHOOKS_TIMESTAMP_HEADER))
    received = _standard_webhooks_digests(value)

    _check_tolerance(timestamp, now, tolerance)

    for webhook in webhooks:
        signature = _standard_webhooks_sign(webhook, msg_id, timestamp, body)
        expected = base64.b64decode(signature.partition(",")[2])
        if any(hmac.compare_digest(expected, digest) for digest in received):
            return
    raise SignatureMismatch


# ---------------------------------------------------------------------------
# Stripe-style: ``t=<unix>,v1=<hex>[,v1=<hex>…]`` over ``{t}.{body}``


def sign_stripe(body: bytes, secret: Secret, *, timestamp: int) -> str:
    """Return a ``Stripe-Signature`` value ``t=<timestamp>,v1=<hex>``.

    The secret is used as its UTF-8 bytes (a ``whsec_`` prefix is part of the key).
    """
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, "sha256").hexdigest()
    return f"t={timestamp},v1={digest}"


def _parse_stripe_header(value: str) -> tuple[str, list[bytes]]:
    """Split a ``Stripe-Signature`` value into its timestamp text and ``v1`` digests."""
    timestamp: str | None = None
    digests = []
    for item in value.split(","):
        key, equals, text = item.strip().partition("=")
        if not equals:
            raise MalformedSignature
        if key == "t":
            if timestamp is not None:
                raise MalformedSignature
            timestamp = text
        elif key == "v1":
            digests.append(_decode_digest(text, "hex", hashlib.sha256().digest_size))
    if timestamp is None or not digests:
        raise MalformedSignature
    return timestamp, digests


def verify_stripe(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Secrets,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Verify ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`` over ``{t}.{body}``.

    Any ``v1`` signature may match, and other schemes in the header (``v0``)
    are ignored. The timestamp must be within ``tolerance`` seconds of ``now``
    (the system clock when None), in either direction.
    """
    keys = _secret_keys(secrets)
    value = _header(make_headers(headers), STRIPE_SIGNATURE_HEADER)
    if value is None:
        raise MissingSignature
    timestamp_text, digests = _parse_stripe_header(value)
    timestamp = _parse_timestamp(timestamp_text)

    _check_tolerance(timestamp, now, tolerance)

    signed = timestamp_text.encode("ascii") + b"." + body
    _check_digests(keys, signed, digests, "sha256")


# ---------------------------------------------------------------------------
# Grafana alerting: hex HMAC-SHA256 of ``{timestamp}:{body}`` or of the body


def sign_grafana(body: bytes, secret: Secret, *, timestamp: int | None = None) -> str:
    """Return Grafana's hex signature, over ``{timestamp}:{body}`` when ``timestamp`` is given."""
    signed = body if timestamp is None else f"{timestamp}:".encode() + body
    return sign_hmac(signed, secret)


def verify_grafana(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Secrets,
    *,
    header: str = GRAFANA_SIGNATURE_HEADER,
    timestamp_header: str | None = None,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Verify a Grafana alerting webhook's hex HMAC-SHA256 signature in ``header``.

    With ``timestamp_header`` set (as in Grafana's contact point settings), the
    signed content is ``{timestamp}:{body}``, and the Unix timestamp must be
    within ``tolerance`` seconds of ``now`` (the system clock when None).
    Without it, the signed content is the body.
    """
    keys = _secret_keys(secrets)
    headers = make_headers(headers)
    value = _header(headers, header)
    if value is None:
        raise MissingSignature
    digest = _decode_digest(value, "hex", hashlib.sha256().digest_size)

    signed = body
    if timestamp_header is not None:
        timestamp_text = _header(headers, timestamp_header)
        timestamp = _parse_timestamp(timestamp_text)
        _check_tolerance(timestamp, now, tolerance)
        signed = f"{timestamp_text}:".encode() + body

    _check_digests(keys, signed, [digest], "sha256")


# ---------------------------------------------------------------------------
# Gitea and Forgejo: hex HMAC-SHA256 of the body, no prefix


def sign_gitea(body: bytes, secret: Secret) -> str:
    """Return the ``X-Gitea-Signature`` value (hex HMAC-SHA256 of the body)."""
    return sign_hmac(body, secret)


def verify_gitea(body: bytes, headers: Mapping[str, str], secrets: Secrets) -> None:
    """Verify ``X-Gitea-Signature`` (or Forgejo's ``X-Forgejo-Signature``) over the raw body.

    When both headers are present, ``X-Gitea-Signature`` is checked.
    """
    keys = _secret_keys(secrets)
    headers = make_headers(headers)
    values = (_header(headers, name) for name in GITEA_SIGNATURE_HEADERS)
    value = next((value for value in values if value is not None), None)
    if value is None:
        raise MissingSignature

    digest = _decode_digest(value, "hex", hashlib.sha256().digest_size)
    _check_digests(keys, body, [digest], "sha256")


# ---------------------------------------------------------------------------
# Shared tokens: GitLab's X-Gitlab-Token, bearer tokens


def _check_token(token: str, keys: list[bytes]) -> None:
    """Raise ``InvalidToken`` unless ``token`` equals a key.

    Both sides are hashed first, so ``compare_digest`` always compares 32 bytes
    and its timing does not reveal the secret's length.
    """
    received = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    for key in keys:
        if hmac.compare_digest(received, hashlib.sha256(key).digest()):
            return
    raise InvalidToken


def verify_bearer_token(
    headers: Mapping[str, str], secrets: Secrets, *, header: str = _AUTHORIZATION_HEADER
) -> None:
    """Verify a shared token, as ``Authorization: Bearer <token>`` or the whole value of ``header``.

    The ``Bearer`` scheme name is matched case-insensitively, as HTTP
    authentication scheme names are.
    Another scheme, or ``Bearer`` without a token, raises ``MalformedToken``.
    """
    keys = _secret_keys(secrets)
    value = _header(make_headers(headers), header)
    if value is None:
        raise MissingToken

    token = value
    if header.lower() == _AUTHORIZATION_HEADER.lower():
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != _BEARER_SCHEME or not token:
            raise MalformedToken
    _check_token(token, keys)


def verify_gitlab(headers: Mapping[str, str], secrets: Secrets) -> None:
    """Verify GitLab's ``X-Gitlab-Token`` header, a plain shared token."""
    verify_bearer_token(headers, secrets, header=GITLAB_TOKEN_HEADER)


# ---------------------------------------------------------------------------
# Verifiers: what endpoints pass as ``verify=`` (``core.plugin.Verifier``)


def parse_secrets(value: object) -> list[str]:
    """Return the secrets held by a config value, empty when none is configured.

    The value may be one secret, a comma-separated string of secrets or a list
    of strings. Surrounding whitespace is removed and empty entries dropped, so
    a secret cannot contain a comma unless it is given in a list.
    Anything else raises ``InvalidSecret``.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return list(_parse_secret_string(value))
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        parts = list(value)
    else:
        msg = f"a webhook secret must be a string or a list of strings, not {type(value).__name__}"
        raise InvalidSecret(msg)
    stripped = (part.strip() for part in parts)
    return [part for part in stripped if part]


# The secret field of a plugin holds the same string on every request.
@functools.lru_cache(maxsize=64)
def _parse_secret_string(value: str) -> tuple[str, ...]:
    stripped = (part.strip() for part in value.split(","))
    return tuple(part for part in stripped if part)


@attrs.frozen(kw_only=True)
class SignatureVerifier(abc.ABC):
    """Base class of the verifiers, which read secrets from ``plugin.config.<secret_field>``.

    The secret is read on every request, so a config reload takes effect at
    once, and the verifier itself never stores a secret (its repr is safe to log).
    """

    secret_field: str = "WEBHOOK_SECRET"
    allow_unsigned: bool = False
    """Let requests through unchecked while the secret field is empty (they are still logged)."""

    delivery_id_header: ClassVar[str | None] = None
    _reads_body: ClassVar[bool] = True
    _signature_headers: ClassVar[tuple[str, ...]] = ()
    # What the secret field contains, as the 503 message and log lines name it.
    _secret_kind: ClassVar[str] = "webhook secret"

    @property
    def credential_headers(self) -> tuple[str, ...]:
        """Names of the headers that carry the signature or token.

        The delivery log records their values as ``[redacted]``.
        """
        return self._signature_headers

    @property
    def expected(self) -> str:
        """The header and value format a sender must send, for a 401 response."""
        return " and ".join(self._signature_headers)

    async def __call__(self, request: WebhookRequest, plugin: Any) -> None:
        """Return if ``request`` is authentic, else raise ``Unauthorized`` (401) or 503.

        The body is read (and cached on the request) only by signature schemes.
        """
        secrets = self._configured_secrets(request, plugin)
        if not secrets:
            self._handle_unconfigured(request, plugin)
            return

        body = await request.body() if self._reads_body else b""
        try:
            self.check(body, request.headers, secrets)
        except SignatureError as exc:
            logger.warning(
                "rejected delivery %s for plugin %s path %s: %s",
                _delivery_label(request, self.delivery_id_header),
                _plugin_name(plugin, request),
                request.path,
                exc.reason,
            )
            message = exc.reason
            if isinstance(exc, MissingSignature | MalformedSignature):
                # Tell the sender what to send, never the value expected.
                message = f"{exc.reason}: expected {self.expected}"
            raise Unauthorized(message) from None
        except InvalidSecret as exc:
            self._reject_invalid_secret(request, plugin, exc)

    @abc.abstractmethod
    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Raise a ``SignatureError`` unless the delivery is signed with one of ``secrets``."""

    def _configured_secrets(self, request: WebhookRequest, plugin: Any) -> list[str]:
        config = getattr(plugin, "config", None)
        try:
            return parse_secrets(getattr(config, self.secret_field, None))
        except InvalidSecret as exc:
            self._reject_invalid_secret(request, plugin, exc)

    def _handle_unconfigured(self, request: WebhookRequest, plugin: Any) -> None:
        name = _plugin_name(plugin, request)
        if self.allow_unsigned:
            logger.warning(
                "accepting unsigned delivery %s for plugin %s path %s: config field %s is empty "
                "and the verifier allows unsigned requests",
                _delivery_label(request, self.delivery_id_header),
                name,
                request.path,
                self.secret_field,
            )
            # Nothing was checked, so the delivery log records no verdict, as
            # for an endpoint without a verifier.
            request.verified = None
            return
        logger.warning(
            "rejected delivery %s for plugin %s path %s with 503: config field %s is empty, "
            "set the %s there",
            _delivery_label(request, self.delivery_id_header),
            name,
            request.path,
            self.secret_field,
            self._secret_kind,
        )
        key = f"plugins.{toml_key(name)}.{self.secret_field}"
        msg = f"{self._secret_kind} is not configured: set {key}"
        raise ServiceUnavailable(msg)

    def _reject_invalid_secret(
        self, request: WebhookRequest, plugin: Any, exc: InvalidSecret
    ) -> NoReturn:
        logger.warning(
            "rejected delivery %s for plugin %s path %s with 503: config field %s is invalid: %s",
            _delivery_label(request, self.delivery_id_header),
            _plugin_name(plugin, request),
            request.path,
            self.secret_field,
            exc,
        )
        msg = "webhook secret is not valid"
        raise ServiceUnavailable(msg) from None


def _delivery_label(request: WebhookRequest, header: str | None) -> str:
    """Return the delivery id for log lines, read from ``header`` when the app has not set it yet.

    A header value is sender-controlled, so it is used only when short and printable.
    """
    if request.delivery_id:
        return request.delivery_id
    value = request.headers.get(header, "") if header is not None else ""
    if value and len(value) <= _MAX_LOGGED_DELIVERY_ID and value.isprintable():
        return value
    return "-"


def _plugin_name(plugin: Any, request: WebhookRequest) -> str:
    name = getattr(plugin, "name", None)
    return name if isinstance(name, str) else request.plugin


@attrs.frozen(kw_only=True)
class GitHubVerifier(SignatureVerifier):
    """Verifies GitHub's ``X-Hub-Signature-256`` (see ``verify_github``)."""

    _signature_headers: ClassVar[tuple[str, ...]] = (GITHUB_SIGNATURE_HEADER, GITHUB_SHA1_HEADER)

    allow_sha1: bool = False
    delivery_id_header: ClassVar[str | None] = GITHUB_DELIVERY_HEADER

    @property
    def expected(self) -> str:
        """``X-Hub-Signature-256`` with its format, and the SHA-1 header when allowed."""
        hint = f"{GITHUB_SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body>"
        if self.allow_sha1:
            hint += f" or {GITHUB_SHA1_HEADER}: sha1=<hex HMAC-SHA1 of the body>"
        return hint

    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Run ``verify_github``."""
        verify_github(body, headers, secrets, allow_sha1=self.allow_sha1)


@attrs.frozen(kw_only=True)
class StandardWebhooksVerifier(SignatureVerifier):
    """Verifies Standard Webhooks signatures (see ``verify_standard_webhooks``)."""

    _signature_headers: ClassVar[tuple[str, ...]] = (STANDARD_WEBHOOKS_SIGNATURE_HEADER,)

    tolerance: float = attrs.field(default=DEFAULT_TOLERANCE, validator=attrs.validators.gt(0))
    clock: Callable[[], float] = attrs.field(default=time.time, repr=False)
    delivery_id_header: ClassVar[str | None] = STANDARD_WEBHOOKS_ID_HEADER

    @property
    def expected(self) -> str:
        """The three Standard Webhooks headers."""
        return (
            f"{STANDARD_WEBHOOKS_ID_HEADER}, {STANDARD_WEBHOOKS_TIMESTAMP_HEADER} (Unix seconds) "
            f"and {STANDARD_WEBHOOKS_SIGNATURE_HEADER}: v1,<base64 HMAC-SHA256>"
        )

    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Run ``verify_standard_webhooks`` at ``clock()``."""
        verify_standard_webhooks(body, headers, secrets, now=self.clock(), tolerance=self.tolerance)


@attrs.frozen(kw_only=True)
class StripeVerifier(SignatureVerifier):
    """Verifies Stripe-style ``Stripe-Signature`` headers (see ``verify_stripe``)."""

    _signature_headers: ClassVar[tuple[str, ...]] = (STRIPE_SIGNATURE_HEADER,)

    tolerance: float = attrs.field(default=DEFAULT_TOLERANCE, validator=attrs.validators.gt(0))
    clock: Callable[[], float] = attrs.field(default=time.time, repr=False)

    @property
    def expected(self) -> str:
        """``Stripe-Signature`` with its format."""
        return f"{STRIPE_SIGNATURE_HEADER}: t=<Unix seconds>,v1=<hex HMAC-SHA256>"

    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Run ``verify_stripe`` at ``clock()``."""
        verify_stripe(body, headers, secrets, now=self.clock(), tolerance=self.tolerance)


@attrs.frozen(kw_only=True)
class GrafanaVerifier(SignatureVerifier):
    """Verifies Grafana alerting HMAC signatures (see ``verify_grafana``)."""

    header: str = GRAFANA_SIGNATURE_HEADER
    timestamp_header: str | None = None
    tolerance: float = attrs.field(default=DEFAULT_TOLERANCE, validator=attrs.validators.gt(0))
    clock: Callable[[], float] = attrs.field(default=time.time, repr=False)

    @property
    def credential_headers(self) -> tuple[str, ...]:
        """The configured ``header``."""
        return (self.header,)

    @property
    def expected(self) -> str:
        """The signature header with its format, and the timestamp header when one is set."""
        hint = f"{self.header}: <hex HMAC-SHA256>"
        if self.timestamp_header is not None:
            hint += f" and {self.timestamp_header} (Unix seconds)"
        return hint

    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Run ``verify_grafana`` at ``clock()``."""
        verify_grafana(
            body,
            headers,
            secrets,
            header=self.header,
            timestamp_header=self.timestamp_header,
            now=self.clock(),
            tolerance=self.tolerance,
        )


@attrs.frozen(kw_only=True)
class GiteaVerifier(SignatureVerifier):
    """Verifies Gitea's ``X-Gitea-Signature`` or Forgejo's ``X-Forgejo-Signature``."""

    _signature_headers: ClassVar[tuple[str, ...]] = GITEA_SIGNATURE_HEADERS

    @property
    def expected(self) -> str:
        """Either signature header with its format."""
        return " or ".join(
            f"{name}: <hex HMAC-SHA256 of the body>" for name in GITEA_SIGNATURE_HEADERS
        )

    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Run ``verify_gitea``."""
        verify_gitea(body, headers, secrets)


@attrs.frozen(kw_only=True)
class GitLabVerifier(SignatureVerifier):
    """Verifies GitLab's ``X-Gitlab-Token`` shared token without reading the body."""

    _signature_headers: ClassVar[tuple[str, ...]] = (GITLAB_TOKEN_HEADER,)

    _reads_body: ClassVar[bool] = False
    _secret_kind: ClassVar[str] = "token"

    @property
    def expected(self) -> str:
        """``X-Gitlab-Token`` with the shared token."""
        return f"{GITLAB_TOKEN_HEADER}: <token>"

    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Run ``verify_gitlab``."""
        verify_gitlab(headers, secrets)


@attrs.frozen(kw_only=True)
class HmacVerifier(SignatureVerifier):
    """Verifies an HMAC of the raw body in a configurable header (see ``verify_hmac``)."""

    header: str
    algorithm: Algorithm = attrs.field(
        default="sha256", validator=attrs.validators.in_(_ALGORITHMS)
    )
    encoding: Encoding = attrs.field(default="hex", validator=attrs.validators.in_(_ENCODINGS))
    prefix: str = ""

    @property
    def credential_headers(self) -> tuple[str, ...]:
        """The configured ``header``."""
        return (self.header,)

    @property
    def expected(self) -> str:
        """The configured header with its prefix, encoding and algorithm."""
        digest = f"{self.encoding} HMAC-{self.algorithm.upper()} of the body"
        return f"{self.header}: {self.prefix}<{digest}>"

    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Run ``verify_hmac`` with this verifier's header, algorithm, encoding and prefix."""
        verify_hmac(
            body,
            headers,
            secrets,
            header=self.header,
            algorithm=self.algorithm,
            encoding=self.encoding,
            prefix=self.prefix,
        )


@attrs.frozen(kw_only=True)
class BearerTokenVerifier(SignatureVerifier):
    """Verifies a shared token in ``Authorization: Bearer`` or a named header.

    The body is not read.
    """

    header: str = _AUTHORIZATION_HEADER
    _reads_body: ClassVar[bool] = False
    _secret_kind: ClassVar[str] = "token"

    @property
    def credential_headers(self) -> tuple[str, ...]:
        """The configured ``header``."""
        return (self.header,)

    @property
    def expected(self) -> str:
        """``Authorization: Bearer <token>``, or the configured header with the token."""
        if self.header.lower() == _AUTHORIZATION_HEADER.lower():
            return f"{_AUTHORIZATION_HEADER}: {_BEARER_SCHEME.capitalize()} <token>"
        return f"{self.header}: <token>"

    def check(self, body: bytes, headers: Headers, secrets: list[str]) -> None:
        """Run ``verify_bearer_token`` on this verifier's header."""
        verify_bearer_token(headers, secrets, header=self.header)


def github(
    secret_field: str = "WEBHOOK_SECRET", *, allow_sha1: bool = False, allow_unsigned: bool = False
) -> GitHubVerifier:
    """Return a verifier for GitHub webhooks signed with the secret in ``secret_field``."""
    return GitHubVerifier(
        secret_field=secret_field, allow_sha1=allow_sha1, allow_unsigned=allow_unsigned
    )


def standard_webhooks(
    secret_field: str = "WEBHOOK_SECRET",
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    clock: Callable[[], float] = time.time,
    allow_unsigned: bool = False,
) -> StandardWebhooksVerifier:
    """Return a verifier for Standard Webhooks senders.

    The config field contains ``whsec_<base64>`` secrets (the prefix is optional).
    """
    return StandardWebhooksVerifier(
        secret_field=secret_field, tolerance=tolerance, clock=clock, allow_unsigned=allow_unsigned
    )


def stripe(
    secret_field: str = "WEBHOOK_SECRET",
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    clock: Callable[[], float] = time.time,
    allow_unsigned: bool = False,
) -> StripeVerifier:
    """Return a verifier for Stripe-style ``Stripe-Signature`` headers."""
    return StripeVerifier(
        secret_field=secret_field, tolerance=tolerance, clock=clock, allow_unsigned=allow_unsigned
    )


def grafana(
    secret_field: str = "WEBHOOK_SECRET",
    *,
    header: str = GRAFANA_SIGNATURE_HEADER,
    timestamp_header: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    clock: Callable[[], float] = time.time,
    allow_unsigned: bool = False,
) -> GrafanaVerifier:
    """Return a verifier for Grafana alerting contact points with HMAC signing enabled.

    Pass the contact point's header names; ``timestamp_header`` must be set here
    exactly when it is set in Grafana, or every delivery fails.
    """
    return GrafanaVerifier(
        secret_field=secret_field,
        header=header,
        timestamp_header=timestamp_header,
        tolerance=tolerance,
        clock=clock,
        allow_unsigned=allow_unsigned,
    )


def gitea(secret_field: str = "WEBHOOK_SECRET", *, allow_unsigned: bool = False) -> GiteaVerifier:
    """Return a verifier for Gitea and Forgejo webhooks."""
    return GiteaVerifier(secret_field=secret_field, allow_unsigned=allow_unsigned)


def gitlab(secret_field: str = "WEBHOOK_SECRET", *, allow_unsigned: bool = False) -> GitLabVerifier:
    """Return a verifier for GitLab's ``X-Gitlab-Token`` (the config field is the token)."""
    return GitLabVerifier(secret_field=secret_field, allow_unsigned=allow_unsigned)


def hmac_signature(
    secret_field: str = "WEBHOOK_SECRET",
    *,
    header: str,
    algorithm: Algorithm = "sha256",
    encoding: Encoding = "hex",
    prefix: str = "",
    allow_unsigned: bool = False,
) -> HmacVerifier:
    """Return a verifier for an HMAC of the raw body sent in ``header`` as ``<prefix><digest>``."""
    return HmacVerifier(
        secret_field=secret_field,
        header=header,
        algorithm=algorithm,
        encoding=encoding,
        prefix=prefix,
        allow_unsigned=allow_unsigned,
    )


def bearer_token(
    secret_field: str = "WEBHOOK_SECRET",
    header: str = _AUTHORIZATION_HEADER,
    *,
    allow_unsigned: bool = False,
) -> BearerTokenVerifier:
    """Return a verifier for a shared token in ``Authorization: Bearer <token>`` or ``header``."""
    return BearerTokenVerifier(
        secret_field=secret_field, header=header, allow_unsigned=allow_unsigned
    )
