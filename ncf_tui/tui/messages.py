"""The wizard's messages; each is a small dataclass so handlers read like the engine's events.

A worker's end reaches the screen that asked for it (``reply_to``) as one of these; they bubble on to the app,
which keeps its own bookkeeping (the badge, whether a run is active). Engine events travel as ``EngineEvent``
to the app, which publishes each on the ``Signal`` for its class (``NcfApp.engine_signal``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from ..engine.events import Event
    from .session import Connection


@dataclass
class EngineEvent(Message):
    """One engine event, posted to the app from a worker thread (``post_message`` is thread-safe)."""

    event: Event


@dataclass
class Connected(Message):
    connection: Connection


@dataclass
class ConnectFailed(Message):
    message: str
    hint: str = ""


@dataclass
class PreflightDone(Message):
    """What the account has and lacks for this run (``engine.account.Preflight``), or why it could not tell."""

    preflight: Any
    error: str = ""
    hint: str = ""


@dataclass
class CheckpointDescribed(Message):
    path: str
    summary: dict[str, Any] | None
    error: str = ""
    hint: str = ""


@dataclass
class RunFinished(Message):
    """``Session.run(until)`` returned, failed or was cancelled."""

    until: str
    status: str  # ok | failed | cancelled | unavailable
    message: str = ""
    hint: str = ""
    outcome: Any = None


@dataclass
class PolicyProposed(Message):
    """The engine proposes this policy document for the denied permissions (it asks before attaching)."""

    policy: Any


@dataclass
class ChecklistFinished(Message):
    """The checklist (or one fix and its re-runs) finished; ``error`` when it could not run."""

    message: str
    error: str = ""
    hint: str = ""


@dataclass
class UserScored(Message):
    """One user's top-k from the deployed endpoint (``engine.deploy.invoke``), or why it could not be had."""

    user: int
    items: list[dict[str, Any]]
    latency_ms: float | None = None
    error: str = ""


@dataclass
class EndpointDeleted(Message):
    """The endpoint, its config and its model were deleted (what was), or why not."""

    deleted: list[str]
    error: str = ""


class NewRun(Message):
    """Another checkpoint (or other answers) was chosen: the next compile is a new run."""
