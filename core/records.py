"""Durable records kept by a storage backend: tasks, outbox messages, deliveries."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["DeliveryRecord", "OutboxMessage", "TaskRecord", "TaskState"]

TaskState = Literal["running", "completed", "failed", "interrupted"]
OutboxState = Literal["pending", "dead"]


@attrs.define
class TaskRecord:
    """Status of one background task; ``result`` is JSON text when completed."""

    id: str
    plugin: str
    name: str
    state: TaskState
    created_at: float
    updated_at: float
    result: str | None = None
    error: str | None = None
    # Instance that runs the task, so another instance can tell when it died.
    owner: str = ""


@attrs.define
class OutboxMessage:
    """One chat message waiting for delivery.

    ``seq`` orders messages of one chat key; the backend assigns it when the
    message is added.
    """

    id: str
    chat_key: str
    text: str
    created_at: float
    plugin: str = ""
    seq: int = 0
    attempts: int = 0
    next_attempt_at: float = 0.0
    state: OutboxState = "pending"
    last_error: str = ""
    # Attempts that may have reached the chat already: failures such as a
    # timeout after the request went out, sends cut off at shutdown and, on
    # Redis, sends taken over from a consumer that went silent.
    possible_duplicates: int = 0
    # End of a worker's claim on the message, in seconds since the epoch, or
    # 0.0 when no worker has claimed it. ``outbox_due`` sets it when a worker
    # takes the message to send, and ``outbox_update`` and ``outbox_remove``
    # end the claim.
    claimed_until: float = 0.0

    def is_sending(self, now: float) -> bool:
        """Return whether a worker is sending the message: pending, with a claim past ``now``."""
        return self.state == "pending" and self.claimed_until > now


@attrs.define
class DeliveryRecord:
    """One inbound webhook request and how it was answered."""

    id: str
    delivery_id: str
    received_at: float
    plugin: str
    path: str
    method: str
    headers: list[tuple[str, str]]
    query: str
    body: bytes
    body_truncated: bool
    status: int
    duration_ms: float
    error_id: str = ""
    # Record id of the original delivery when this one is a replay.
    replay_of: str = ""
    # Whether the endpoint's verifier accepted the request: None when nothing
    # was checked (no verifier, a verifier allowing unsigned requests, or a
    # record from before this field), False when the request was rejected
    # before or by the verifier. A replay keeps the value of its original,
    # since replays skip verification.
    verified: bool | None = None
    # True when duplicate detection found an earlier delivery with the same
    # id, so the handler did not run.
    duplicate: bool = False
