"""The deadline watchdog that triggers early 202 answers."""

from __future__ import annotations

import functools

from core.deadlines import Deadlines


def test_due_callback_fires_once() -> None:
    now = [100.0]
    fired: list[str] = []
    deadlines = Deadlines(clock=lambda: now[0])
    deadlines.add(9.0, lambda: fired.append("slow"))
    deadlines.fire_due()
    now[0] = 109.0
    deadlines.fire_due()
    deadlines.fire_due()
    assert fired == ["slow"]


def test_removed_callback_never_fires() -> None:
    now = [0.0]
    fired: list[str] = []
    deadlines = Deadlines(clock=lambda: now[0])
    key = deadlines.add(1.0, lambda: fired.append("x"))
    deadlines.remove(key)
    now[0] = 5.0
    deadlines.fire_due()
    assert fired == []


def test_only_due_callbacks_fire() -> None:
    now = [0.0]
    fired: list[float] = []
    deadlines = Deadlines(clock=lambda: now[0])
    for seconds in (1.0, 2.0, 3.0):
        deadlines.add(seconds, functools.partial(fired.append, seconds))
    now[0] = 2.5
    deadlines.fire_due()
    assert fired == [1.0, 2.0]
