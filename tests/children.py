"""Child processes that a test interrupts with SIGINT, as Ctrl-C in a terminal would."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn``: SIGINT at its default in the child, as a terminal's Ctrl-C finds a foreground program.

    A CI runner, ``nohup`` or a shell's background job (``cmd &`` without job control) starts the suite with
    SIGINT ignored; POSIX keeps an ignored signal ignored across exec, and Python then installs no
    KeyboardInterrupt handler, so the child would never see the test's SIGINT and the test would wait for a
    hang. Only this one disposition is reset (async-signal-safe), so a threaded parent is no risk.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
