"""A watchdog for handler deadlines: one periodic check instead of a timer per request.

A timer per request (``loop.call_later``) costs several microseconds to arm
and cancel on every dispatch; deadlines are seconds long, so checking them
every ``CHECK_INTERVAL`` is precise enough and costs a dict insert and delete.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import anyio

__all__ = ["CHECK_INTERVAL", "Deadlines"]

# Deadlines fire at most this many seconds late.
CHECK_INTERVAL = 0.05


class Deadlines:
    """Calls a callback once its deadline has passed, unless it was removed first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[int, tuple[float, Callable[[], None]]] = {}
        self._ids = itertools.count()

    def add(self, seconds: float, callback: Callable[[], None]) -> int:
        """Call ``callback`` after ``seconds`` (monotonic); return the id that ``remove`` takes."""
        key = next(self._ids)
        self._pending[key] = (self._clock() + seconds, callback)
        return key

    def remove(self, key: int) -> None:
        """Forget the deadline ``key``; nothing happens if it already fired."""
        self._pending.pop(key, None)

    def fire_due(self) -> None:
        """Call and forget every callback whose deadline has passed."""
        now = self._clock()
        due = [key for key, (deadline, _) in self._pending.items() if deadline <= now]
        for key in due:
            _, callback = self._pending.pop(key)
            callback()

    async def run(self) -> None:
        """Check deadlines every ``CHECK_INTERVAL`` until cancelled."""
        while True:
            await anyio.sleep(CHECK_INTERVAL)
            if self._pending:
                self.fire_due()
