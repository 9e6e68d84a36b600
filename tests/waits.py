"""Waiting on an event, never on the clock: poll a condition until it holds.

``HANG`` is not a timing target: it is how long a wait may last before the test calls it a hang, so it is
generous enough that a machine under heavy load never reaches it. A test that must not wait that long on a
real hang has a bug to fix, not a shorter number to pick.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HANG = 300.0
"""Seconds after which a wait for an event is a hang (the event would have come long before)."""


def wait_for(condition: Callable[[], T | None], what: str, *, every: float = 0.05, hang: float = HANG) -> T:
    """``condition()``'s first truthy value, polled every ``every`` seconds; AssertionError naming ``what``
    if it has not held after ``hang`` seconds."""
    deadline = time.monotonic() + hang
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {hang:.0f} s for {what}")
        time.sleep(every)
