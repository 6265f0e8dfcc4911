"""Exceptions raised by plughook.

Hierarchy::

    PlughookError
    ├── ConfigError (also ValueError)
    └── DeliveryError
    HTTPError (Exception)
    ├── BadRequest               400
    ├── Unauthorized             401
    ├── Forbidden                403
    ├── NotFound                 404
    ├── MethodNotAllowed         405
    ├── PayloadTooLarge          413
    ├── UnsupportedMediaType     415
    └── ServiceUnavailable       503
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

__all__ = [
    "BadRequest",
    "ConfigError",
    "DeliveryError",
    "Forbidden",
    "HTTPError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PlughookError",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "UnverifiedReplay",
]


class PlughookError(Exception):
    """Base class of plughook's own non-HTTP errors."""


class ConfigError(PlughookError, ValueError):
    """Raised when the app starts with invalid configuration.

    ``problems`` lists each problem as ``(key, message)``, where ``key`` is the
    dotted TOML key, for example ``plugins.github-notifier.EVENTS``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"{key}: {text}" if key else text for key, text in problems]
        super().__init__("invalid configuration:\n  " + "\n  ".join(lines))


class DeliveryError(PlughookError):
    """Raised by a channel when it could not deliver a message.

    ``retryable`` says whether a later attempt may succeed; ``retry_after`` is
    the delay in seconds the platform asked for, if any; ``config_error`` marks
    failures that only a configuration change fixes (a wrong token);
    ``maybe_delivered`` marks failures (timeouts) after which the platform may
    still have shown the message.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        config_error: bool = False,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.config_error = config_error
        self.maybe_delivered = maybe_delivered


class UnverifiedReplay(PlughookError, ValueError):
    """Raised by ``WebhookApp.replay`` for a record that did not pass verification.

    ``record_id`` names the record and ``reason`` gives why its sender is
    unknown. The message ends with the command that replays it anyway.
    """

    def __init__(self, record_id: str, reason: str) -> None:
        self.record_id = record_id
        self.reason = reason
        super().__init__(self.explain(f"plughook deliveries replay {record_id} --allow-unverified"))

    def explain(self, command: str) -> str:
        """Return the error message, ending with ``command`` as the way to replay anyway."""
        return (
            f"{self.reason}, so its sender is unknown; replay it only if you trust its body: "
            f"{command}"
        )


class HTTPError(Exception):
    """Raised by a handler or verifier to answer ``{"error": message}`` with ``status``."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class _FixedStatusError(HTTPError):
    status_code: ClassVar[int]

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(self.status_code, message, headers=headers)


class BadRequest(_FixedStatusError):
    """Raised when the request body or parameters are invalid (400)."""

    status_code = 400


class Unauthorized(_FixedStatusError):
    """Raised when the sender could not be authenticated (401)."""

    status_code = 401


class Forbidden(_FixedStatusError):
    """Raised when an authenticated sender may not do this (403)."""

    status_code = 403


class NotFound(_FixedStatusError):
    """Raised when the requested plugin, endpoint or resource does not exist (404)."""

    status_code = 404


class MethodNotAllowed(_FixedStatusError):
    """Raised when the endpoint does not accept the request method (405)."""

    status_code = 405


class PayloadTooLarge(_FixedStatusError):
    """Raised while reading a body that exceeds the endpoint's limit (413)."""

    status_code = 413


class UnsupportedMediaType(_FixedStatusError):
    """Raised when the body's content type or charset cannot be handled (415)."""

    status_code = 415


class ServiceUnavailable(_FixedStatusError):
    """Raised when the endpoint cannot serve now: missing secret, maintenance (503)."""

    status_code = 503
