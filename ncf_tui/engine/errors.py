"""Errors the engine raises, each carrying the exit code of the CLI contract.

Every failure a user can cause or fix is one of these, with a one-line message and, where there is one,
the fix. The CLI prints ``message`` (and ``hint``) and exits with ``exit_code``; nothing else is shown.
"""

from __future__ import annotations

import threading
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of ``ncf-tui`` (listed in the README, "Exit codes")."""

    OK = 0
    BAD_INPUT = 2
    PREFLIGHT_FAILED = 3
    NO_VARIANT_COMPILED = 4
    BUILD_FAILED = 5
    DEPLOY_FAILED = 6
    INTERRUPTED = 130


class NcfError(Exception):
    """A failure with a clear message for a person and an exit code for a script."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class BadInputError(NcfError):
    """The user gave something we cannot use: a path, a file, a flag value."""

    exit_code = ExitCode.BAD_INPUT


class CheckpointError(BadInputError):
    """A checkpoint file is missing, unreadable, unsafe or not an NCF model."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text (its type name when it has none), cut to ``limit`` characters."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class Cancelled(NcfError):
    """The user asked to stop; the step stopped at a safe point."""

    exit_code = ExitCode.INTERRUPTED


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise ``Cancelled`` at a safe point once the user has asked to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
