"""The service routes beside the webhook URLs: health and the plugin list."""

from __future__ import annotations

from .app import WebhookApp
from .response import WebhookResponse, json_response

__all__ = [
    "HEALTH_PATH",
    "PLUGINS_PATH",
    "SERVICE_METHODS",
    "SERVICE_PATHS",
    "health_response",
    "not_found_response",
    "plugins_response",
    "service_response",
]

HEALTH_PATH = "/healthz"
PLUGINS_PATH = "/api/plugins"


def health_response(app: WebhookApp) -> WebhookResponse:
    """Build the ``GET /healthz`` response: 200 while serving, 503 while starting or stopping."""
    return app.health()


def plugins_response(app: WebhookApp) -> WebhookResponse:
    """Build the ``GET /api/plugins`` response: plugins, endpoints and redacted config."""
    return json_response(app.describe())


def not_found_response() -> WebhookResponse:
    """Build the 404 for a path that is neither a webhook URL nor a service route."""
    return json_response({"error": "not found"}, 404)


# Methods the service routes accept. Servers send no body in a HEAD response.
SERVICE_METHODS = ("GET", "HEAD")
_SERVICES = {HEALTH_PATH: health_response, PLUGINS_PATH: plugins_response}
SERVICE_PATHS = tuple(_SERVICES)


def service_response(app: WebhookApp, method: str, path: str) -> WebhookResponse | None:
    """Build the response of service route ``path``, or return None for any other path.

    A method other than GET and HEAD gets a 405 with an ``Allow`` header.
    """
    build = _SERVICES.get(path)
    if build is None:
        return None
    if method not in SERVICE_METHODS:
        response = json_response({"error": f"method {method} is not allowed on {path}"}, 405)
        response.headers["Allow"] = ", ".join(SERVICE_METHODS)
        return response
    return build(app)
