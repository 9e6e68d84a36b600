"""One poller shape for every loop that waits on AWS: an interval, a backoff, and a cancellable wait.

A poller reads at ``fast`` while something changes, stretches by ``factor`` per idle round (after
``patience`` idle rounds at ``fast``) up to ``slow``, and doubles towards ``ceiling`` on each failed round
(throttling after botocore's own retries, a 5xx, a refused quota), with full jitter so many pollers of one
account do not hit the service in step. ``wait`` returns early, and True, when the cancel flag is set.

botocore's ``standard`` retry mode already retries throttling and transient errors inside one call; a
``Backoff`` is only the pace *between* calls of a loop that must keep going (a build being watched, a log
stream being followed, a quota slot being waited for), never a second retry loop around one call.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Backoff:
    fast: float = 0.5
    slow: float = 5.0
    factor: float = 1.5
    ceiling: float = 30.0
    patience: int = 0
    """Idle rounds kept at ``fast`` before the interval starts to stretch."""
    jitter: bool = True
    interval: float = field(init=False)
    idle_rounds: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.interval = self.fast

    def progressed(self) -> float:
        """Something changed: poll again soon."""
        self.idle_rounds = 0
        self.failures = 0
        self.interval = self.fast
        return self.interval

    def idle(self) -> float:
        """Nothing changed: keep ``fast`` for ``patience`` rounds, then stretch towards ``slow``."""
        self.failures = 0
        self.idle_rounds += 1
        if self.idle_rounds > self.patience:
            self.interval = min(self.slow, max(self.interval, self.fast) * self.factor)
        return self.interval

    def failed(self) -> float:
        """The round failed (throttled, 5xx, quota): double towards ``ceiling``, jittered."""
        self.failures += 1
        self.interval = min(self.ceiling, max(self.interval, self.fast) * 2)
        return random.uniform(self.fast, self.interval) if self.jitter else self.interval


class Poller:
    """One loop's pace and its way out: a ``Backoff`` for the interval, ``cancel`` to stop, ``wake`` to hurry.

    Every loop of the engine that waits on AWS (the Neo jobs, the build watcher, the log follower) waits
    through one of these, so no wait outlasts a cancel: ``sleep`` and the round helpers return True at once
    when the cancel flag is set, False when the time is up (or ``wake`` was set).
    """

    def __init__(
        self, backoff: Backoff | None = None, cancel: threading.Event | None = None, wake: threading.Event | None = None
    ) -> None:
        self.backoff = backoff or Backoff()
        self.cancel = cancel if cancel is not None else threading.Event()
        self.wake = wake

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` (a pace of the caller's own); True when cancelled."""
        return wait(seconds, self.cancel, self.wake)

    def next_round(self, changed: bool, spent: float = 0.0) -> bool:
        """Wait before the next round: ``fast`` after a change, stretching while idle; ``spent`` (the round's own
        time) is taken off, so rounds start an interval apart. True when cancelled."""
        interval = self.backoff.progressed() if changed else self.backoff.idle()
        return self.sleep(interval - spent)

    def failed_round(self) -> bool:
        """The round failed (after botocore's own retries, or a refused quota): wait longer, jittered."""
        return self.sleep(self.backoff.failed())


def wait(seconds: float, cancel: threading.Event | None = None, wake: threading.Event | None = None) -> bool:
    """Sleep ``seconds``: True at once when ``cancel`` is set; False when the time is up or ``wake`` is set."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        if cancel is not None and cancel.is_set():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        step = min(left, 0.1) if cancel is not None else left
        if wake is not None:
            if wake.wait(step):
                wake.clear()
                return bool(cancel is not None and cancel.is_set())
        elif cancel is not None:
            cancel.wait(step)
        else:
            time.sleep(step)
