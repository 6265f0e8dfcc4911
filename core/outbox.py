"""The outbox: durable queue of chat messages and the worker that delivers them.

Messages are committed before ``put`` returns and removed only after their
channel confirmed them (at-least-once). Messages of one chat key are delivered
in order; a failing chat waits on its own backoff without blocking others.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

import anyio
import attrs

from .channels import Channel, split_chat_key
from .config import toml_key
from .errors import DeliveryError
from .records import OutboxMessage
from .settings import OutboxSettings
from .splitting import split_text, text_length
from .store import Storage

__all__ = ["ChannelRouter", "Outbox", "retry_dead_messages"]

logger = logging.getLogger("plughook.outbox")

# The worker looks for due messages at least this often, so that messages
# added or retried by another process (the CLI, another instance) go out soon.
POLL_INTERVAL = 2.0
# Most messages one coalesced send carries, and what separates them.
COALESCE_MAX = 50
COALESCE_SEPARATOR = "\n\n"
# Pause after the storage could not be read, in seconds.
STORAGE_RETRY_DELAY = 1.0
# Rate windows are per minute, as the platforms state their limits.
RATE_WINDOW = 60.0
# Maximum wait, in seconds, to store a send cancelled at shutdown.
CANCELLED_RECORD_TIMEOUT = 2.0


class ChannelRouter:
    """Maps a chat key's platform to its channel, falling back to a default."""

    def __init__(
        self, channels: Mapping[str, Channel], default: Channel, *, warn_fallback: bool
    ) -> None:
        self.channels = dict(channels)
        self.default = default
        # False where every chat goes to the default on purpose (the test client).
        self.warn_fallback = warn_fallback
        self._warned: set[str] = set()

    def for_chat(self, chat_key: str) -> Channel:
        """Return the channel that delivers to ``chat_key``."""
        platform, _ = split_chat_key(chat_key)
        channel = self.channels.get(platform)
        if channel is not None:
            return channel
        if self.warn_fallback and platform != self.default.name and platform not in self._warned:
            self._warned.add(platform)
            logger.warning(
                "no [channels.%s] configured; messages to %s chats go to the %s channel",
                toml_key(platform),
                platform,
                self.default.name,
            )
        return self.default

    def all(self) -> list[Channel]:
        """Return every distinct channel."""
        unique = {id(c): c for c in [*self.channels.values(), self.default]}
        return list(unique.values())


class Outbox:
    """Durable message queue with a delivery worker (``run``)."""

    def __init__(
        self,
        storage: Storage,
        router: ChannelRouter,
        settings: OutboxSettings,
        clock: Callable[[], float],
    ) -> None:
        self._storage = storage
        self.router = router
        self._settings = settings
        self._clock = clock
        self._wake = anyio.Event()
        self._busy: set[str] = set()
        # Chat key -> id of the message being sent to it, for the shutdown warning.
        self._sending: dict[str, str] = {}
        self._stopping = False
        # Set when the last send in flight ends.
        self._idle = anyio.Event()
        self._last_sent: dict[str, float] = {}
        self._channel_sends: dict[int, deque[float]] = {}
        self.delivered = 0
        self.retried = 0
        self.dead_lettered = 0
        self.possible_duplicates = 0

    async def put(self, chat_key: str, text: str, *, plugin: str = "") -> list[str]:
        """Commit ``text`` for ``chat_key`` durably; return the message ids.

        A text longer than the channel's limit becomes several numbered
        messages, delivered in order.
        """
        if not isinstance(text, str):
            msg = f"message text must be a str, got {type(text).__name__}"
            raise TypeError(msg)
        if not text.isascii():
            # A lone surrogate (a header byte that was not UTF-8, say) has no
            # UTF-8 form, so no store can keep it. It becomes "?", as the
            # channels would send it.
            text = text.encode("utf-8", "replace").decode()
        channel = self.router.for_chat(chat_key)
        parts = [text]
        limit, unit = channel.max_length, channel.length_unit
        if limit > 0 and text_length(text, unit) > limit:
            parts = split_text(text, limit, unit=unit)
        ids = []
        for part in parts:
            message = OutboxMessage(uuid.uuid4().hex, chat_key, part, self._clock(), plugin)
            message.next_attempt_at = message.created_at
            await self._storage.outbox_add(message)
            ids.append(message.id)
        self._wake.set()
        return ids

    async def run(self) -> None:
        """Deliver due messages until cancelled."""
        async with anyio.create_task_group() as task_group:
            while True:
                self._wake = anyio.Event()
                try:
                    wait = await self._dispatch(task_group)
                except Exception:
                    # Storage may be briefly unreachable (a Redis restart); the
                    # messages stay stored, so the worker backs off and goes on.
                    logger.exception("outbox worker failed to read due messages; retrying")
                    wait = STORAGE_RETRY_DELAY
                with anyio.move_on_after(wait):
                    await self._wake.wait()

    async def _dispatch(self, task_group: anyio.abc.TaskGroup) -> float:
        """Start sends for due messages; return how long to sleep before looking again."""
        if self._stopping:
            return POLL_INTERVAL
        free = self._settings.concurrency - len(self._busy)
        now = self._clock()
        wait = POLL_INTERVAL
        if free > 0:
            due = await self._storage.outbox_due(now, free, frozenset(self._busy))
            for message in due:
                channel = self.router.for_chat(message.chat_key)
                not_before = self._pace(channel, message.chat_key, now)
                if not_before > now:
                    # Store the deferral, which also ends this worker's claim on the message.
                    message.next_attempt_at = not_before
                    await self._storage.outbox_update(message)
                    wait = min(wait, not_before - now)
                    continue
                self._busy.add(message.chat_key)
                self._sending[message.chat_key] = message.id
                self._note_send(channel, message.chat_key, now)
                task_group.start_soon(self._deliver, channel, message, now)
        next_due = await self._storage.outbox_next_due(frozenset(self._busy))
        if next_due is not None and next_due > now:
            wait = min(wait, next_due - now)
        return max(wait, 0.001)

    def _pace(self, channel: Channel, chat_key: str, now: float) -> float:
        """Return the earliest time the flood limits allow a send to ``chat_key``."""
        not_before = now
        if channel.min_interval > 0:
            last = self._last_sent.get(chat_key)
            if last is not None:
                not_before = max(not_before, last + channel.min_interval)
        if channel.rate_per_minute > 0:
            sends = self._channel_sends.get(id(channel))
            if sends is not None:
                while sends and sends[0] <= now - RATE_WINDOW:
                    sends.popleft()
                if len(sends) >= channel.rate_per_minute:
                    not_before = max(not_before, sends[0] + RATE_WINDOW)
        return not_before

    def _note_send(self, channel: Channel, chat_key: str, now: float) -> None:
        """Count a send starting at ``now`` against the chat's and the channel's limits."""
        if channel.min_interval > 0:
            self._last_sent[chat_key] = now
        if channel.rate_per_minute > 0:
            self._channel_sends.setdefault(id(channel), deque()).append(now)

    def _restamp_send(self, channel: Channel, chat_key: str, noted: float, now: float) -> None:
        """Move a send counted at ``noted`` to ``now``, when its request leaves.

        Storage reads run between the two (due messages, coalescing). When one
        send waited on a slow read and the next did not, pacing from the
        earlier time would let their requests reach the platform closer
        together than ``min_interval``.
        """
        if channel.min_interval > 0:
            self._last_sent[chat_key] = now
        sends = self._channel_sends.get(id(channel))
        if channel.rate_per_minute > 0 and sends is not None:
            with contextlib.suppress(ValueError):
                # Gone already when the window has moved past it.
                sends.remove(noted)
            bisect.insort(sends, now)

    async def _coalesced(
        self, channel: Channel, message: OutboxMessage
    ) -> tuple[OutboxMessage, list[str]]:
        """Join the chat's waiting messages behind ``message`` into one, up to the length limit.

        Returns the message to send and the ids of the extra messages it carries.
        """
        if not channel.coalesce or channel.max_length <= 0:
            return message, []
        waiting = await self._storage.outbox_chat_pending(message.chat_key, COALESCE_MAX)
        now = self._clock()
        text = message.text
        extra: list[str] = []
        for follower in waiting:
            if follower.id == message.id:
                continue
            if follower.next_attempt_at > now:
                break
            joined = f"{text}{COALESCE_SEPARATOR}{follower.text}"
            if text_length(joined, channel.length_unit) > channel.max_length:
                break
            text = joined
            extra.append(follower.id)
        if not extra:
            return message, []
        return attrs.evolve(message, text=text), extra

    async def _deliver(self, channel: Channel, message: OutboxMessage, noted: float) -> None:
        extra: list[str] = []
        try:
            sending, extra = await self._coalesced(channel, message)
            self._restamp_send(channel, message.chat_key, noted, self._clock())
            await channel.send(sending)
        except DeliveryError as exc:
            await self._record(self._failed(channel, message, exc), message)
        except Exception as exc:
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
            logger.exception("channel %s raised while sending message %s", channel.name, message.id)
            await self._record(self._failed(channel, message, error), message)
        except anyio.get_cancelled_exc_class():
            # Shutdown past the grace period: the platform may have the message
            # already, so the cut-off send counts as an attempt and a possible
            # duplicate. It does not dead-letter the message even at
            # max_attempts, because the channel did not fail: the next failed
            # attempt does. Storing this ends the worker's claim, so another
            # instance can send the message at once instead of after the
            # visibility timeout.
            message.attempts += 1
            message.possible_duplicates += 1
            message.last_error = "send cancelled at shutdown; the chat may have the message"
            message.next_attempt_at = self._clock()
            with anyio.CancelScope(shield=True), anyio.move_on_after(CANCELLED_RECORD_TIMEOUT):
                await self._record(self._storage.outbox_update(message), message)
            raise
        else:
            self.delivered += 1 + len(extra)
            if message.possible_duplicates:
                # The outbox entry is removed next, so the log keeps the mark.
                logger.warning(
                    "message %s to %s delivered; %d earlier attempt(s) may have reached the "
                    "chat too, so it may show more than once",
                    message.id,
                    message.chat_key,
                    message.possible_duplicates,
                )
            # Followers first: removing the head lets another worker take the chat.
            for follower_id in extra:
                await self._record(self._storage.outbox_remove(follower_id), message)
            await self._record(self._storage.outbox_remove(message.id), message)
        finally:
            self._busy.discard(message.chat_key)
            self._sending.pop(message.chat_key, None)
            if not self._busy:
                self._idle.set()
            self._wake.set()

    async def _record(self, update: Awaitable[None], message: OutboxMessage) -> None:
        """Run a storage update after a send; a storage error is logged, not raised.

        The message stays stored as it was, so it is sent again later: a
        possible duplicate, never a loss.
        """
        try:
            await update
        except Exception:
            logger.exception(
                "recording the outcome of message %s to %s failed; it will be sent again",
                message.id,
                message.chat_key,
            )

    async def _failed(self, channel: Channel, message: OutboxMessage, error: DeliveryError) -> None:
        now = self._clock()
        message.attempts += 1
        message.last_error = str(error)
        if error.maybe_delivered:
            message.possible_duplicates += 1
            self.possible_duplicates += 1
        too_old = now - message.created_at >= self._settings.max_age
        out_of_attempts = message.attempts >= self._settings.max_attempts
        if not error.retryable or too_old or out_of_attempts:
            message.state = "dead"
            self.dead_lettered += 1
            reason = (
                "configuration error"
                if error.config_error
                else "permanent error"
                if not error.retryable
                else "attempts exhausted"
                if out_of_attempts
                else "message too old"
            )
            logger.error(
                "message %s to %s dead-lettered after %d attempt(s) (%s) on channel %s: %s; "
                "once the cause is fixed, resend it with `plughook outbox retry %s`",
                message.id,
                message.chat_key,
                message.attempts,
                reason,
                channel.name,
                error,
                message.id,
            )
        else:
            delay = self.backoff(message.attempts)
            if error.retry_after is not None:
                delay = max(delay, error.retry_after)
            # The chat's flood limits (min_interval, rate_per_minute) may allow
            # the next send only later, so the delay includes them and the log
            # line names the real wait.
            delay = max(delay, self._pace(channel, message.chat_key, now) - now)
            message.next_attempt_at = now + delay
            self.retried += 1
            self._log_retry(message, delay, error)
        await self._storage.outbox_update(message)

    def _log_retry(self, message: OutboxMessage, delay: float, error: DeliveryError) -> None:
        """Log a failed attempt and when the message is tried again."""
        duplicate = (
            " (possible duplicate: the platform may have shown it)" if error.maybe_delivered else ""
        )
        if not self._stopping:
            logger.warning(
                "message %s to %s failed on attempt %d, retrying in %.1f s%s: %s",
                message.id,
                message.chat_key,
                message.attempts,
                delay,
                duplicate,
                error,
            )
            return
        # The worker starts no sends once stop() was called, so this process
        # never makes the retry.
        if self._storage.shared:
            after = "stays queued for another instance or the next start"
        else:
            after = "stays queued and is sent after the next start"
        logger.warning(
            "message %s to %s failed on attempt %d during shutdown, so it %s%s: %s",
            message.id,
            message.chat_key,
            message.attempts,
            after,
            duplicate,
            error,
        )

    def backoff(self, attempts: int) -> float:
        """Return a random delay with full jitter.

        The delay is uniform in [0, min(max_delay, base_delay * 2 ** (attempts - 1))].
        """
        ceiling = min(
            self._settings.max_delay, self._settings.base_delay * 2 ** max(attempts - 1, 0)
        )
        return random.uniform(0, ceiling)

    async def stop(self, grace: float) -> None:
        """Start no new sends and wait up to ``grace`` seconds for the sends in flight.

        A send still running after that is cancelled when the worker is, and
        its message stays stored, so it is sent again later, possibly twice.
        """
        self._stopping = True
        self._wake.set()
        with anyio.move_on_after(grace):
            while self._busy:
                self._idle = anyio.Event()
                await self._idle.wait()
        if self._busy:
            sending = ", ".join(f"{chat} (message {id_})" for chat, id_ in self._sending.items())
            logger.warning(
                "sends to %d chat(s) still running after %.1f s at shutdown: %s; they are "
                "cancelled and will be sent again, possibly twice",
                len(self._busy),
                grace,
                sending,
            )

    async def wait_idle(self) -> None:
        """Wait until no message is pending or in flight."""
        while self._busy or await self._storage.outbox_count("pending"):
            self._wake.set()
            await anyio.sleep(0.005)

    async def retry_dead(self, message_id: str | None) -> int:
        """Move one dead message (or every one when None) back to pending; return the count."""
        count = await retry_dead_messages(self._storage, message_id, self._clock())
        self._wake.set()
        return count


async def retry_dead_messages(storage: Storage, message_id: str | None, now: float) -> int:
    """Move one dead message, or every one when ``message_id`` is None, back to pending.

    The messages are due at ``now`` with no attempts counted. This touches
    only the storage, so a process without channels, such as ``plughook
    outbox retry``, can call it. The worker of a running server finds the
    messages at its next poll. Returns the number of messages moved.
    """
    if message_id is None:
        messages = await storage.outbox_list("dead", 1_000_000)
    else:
        found = await storage.outbox_get(message_id)
        messages = [found] if found is not None and found.state == "dead" else []
    for message in messages:
        message.state = "pending"
        message.attempts = 0
        message.next_attempt_at = now
        await storage.outbox_update(message)
    return len(messages)
