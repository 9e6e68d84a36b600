"""The one poller shape: fast while things change, patience, stretch to slow when idle, back off on failure."""

from __future__ import annotations

import threading

from ncf_tui.engine.logs import LogFollower
from ncf_tui.engine.polling import Backoff, wait


def test_idle_rounds_keep_fast_for_patience_then_stretch_to_slow_and_progress_resets() -> None:
    pace = Backoff(fast=0.5, slow=5.0, factor=1.5, patience=2)
    assert [round(pace.idle(), 3) for _ in range(10)] == [0.5, 0.5, 0.75, 1.125, 1.688, 2.531, 3.797, 5.0, 5.0, 5.0]
    assert pace.progressed() == 0.5
    assert pace.idle() == 0.5


def test_failures_double_towards_the_ceiling_with_jitter_never_below_fast() -> None:
    pace = Backoff(fast=0.5, slow=5.0, ceiling=10.0, jitter=False)
    assert [pace.failed() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    jittered = Backoff(fast=0.5, ceiling=10.0)
    for _ in range(50):
        assert 0.5 <= jittered.failed() <= 10.0


def test_wait_returns_at_once_on_cancel_and_early_on_wake() -> None:
    cancel, wake = threading.Event(), threading.Event()
    cancel.set()
    assert wait(3600, cancel) is True
    cancel.clear()
    wake.set()
    assert wait(3600, cancel, wake) is False and not wake.is_set()


def test_the_follower_reads_within_the_logs_quota_budget_by_default() -> None:
    """At most 2 GetLogEvents a second while lines flow (0.5 s apart) and one every 5 s when idle."""
    follower = LogFollower(None, "g", "s")
    assert follower.fast >= 0.5 and follower.slow >= 5.0
