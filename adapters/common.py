"""Service routes, unread-body rules and client-disconnect handling shared by the adapters."""

from __future__ import annotations

import logging

from core.errors import BadRequest
from core.services import (
    HEALTH_PATH,
    PLUGINS_PATH,
    SERVICE_PATHS,
    health_response,
    not_found_response,
    plugins_response,
    service_response,
)

__all__ = [
    "CLOSE_DELAY",
    "HEALTH_PATH",
    "MAX_DISCARD_SIZE",
    "PLUGINS_PATH",
    "READ_CHUNK_SIZE",
    "SERVICE_PATHS",
    "ClientDisconnected",
    "client_disconnected",
    "discards_rest",
    "health_response",
    "not_found_response",
    "plugins_response",
    "service_response",
]

logger = logging.getLogger("plughook.adapters")

# Largest chunk handed to the core per read, which bounds the memory one
# request uses while a handler streams its body.
READ_CHUNK_SIZE = 256 * 1024

# An unread rest of a request body up to this size is read and dropped after
# the response so the connection stays open for the next request. Past it,
# when its size is unknown, and after a 413, the connection is closed instead,
# because reading megabytes that no handler uses costs more than a reconnect.
MAX_DISCARD_SIZE = 64 * 1024

# Seconds between sending a response and closing a connection whose request
# body is left unread. Closing a socket with unread input sends a TCP reset,
# which can destroy the response before the client has read it; Go's net/http
# server waits 500 ms (rstAvoidanceDelay) for the same reason.
CLOSE_DELAY = 0.5


class ClientDisconnected(BadRequest):
    """Raised from the request body stream when the client closes the connection mid-body.

    The core turns it into a 400 response like any ``BadRequest`` and records
    it in the delivery log. The client has gone and never receives it.
    """


def client_disconnected(
    method: str, path: str, client: str | None, received: int
) -> ClientDisconnected:
    """Log a client that went away mid-body and return the error to raise.

    ``path`` goes into the log without the query string, which may carry a token.
    """
    logger.warning(
        "client %s closed the connection after %d bytes of the body of %s %s",
        client or "(unknown)",
        received,
        method,
        path,
    )
    msg = f"the client closed the connection after {received} bytes of the request body"
    return ClientDisconnected(msg)


def discards_rest(status: int, declared: int | None, received: int) -> bool:
    """Return whether to drop the unread rest of a body and keep the connection open.

    ``declared`` is the Content-Length (None when chunked), ``received`` the
    bytes read so far. False means: close the connection after the response.
    """
    if status == 413 or declared is None:
        return False
    return declared - received <= MAX_DISCARD_SIZE
