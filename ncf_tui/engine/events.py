"""The typed events every step emits (one JSON object per line with ``--json``).

Steps never print: they call an ``Emit`` callback with one of these. Headless mode prints them (JSON lines
with ``--json``, human lines otherwise), the TUI turns them into messages. ``to_json`` gives the contract's
shape: ``{"event": <kind>, "ts": <ISO-8601 UTC>, ...fields}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    ts: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        ts = data.pop("ts")
        return {"event": self.kind, "ts": ts, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True, kw_only=True)
class StepEvent(Event):
    """A pipeline step started, finished, was skipped or failed."""

    kind: ClassVar[str] = "step"
    name: str
    status: str  # started | done | skipped | failed | cancelled | warning | note
    message: str = ""
    elapsed: float | None = None


@dataclass(frozen=True, kw_only=True)
class CheckpointEvent(Event):
    kind: ClassVar[str] = "checkpoint"
    path: str
    params: int
    sparsity: float
    architecture: str = ""
    pruned_sparsity: float = 0.0
    file_size: int = 0
    layers: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    layout: str = ""
    gmf_norm: str | None = None
    output: str | None = None
    behaviour: str = ""


@dataclass(frozen=True, kw_only=True)
class VariantEvent(Event):
    """One variant changed: traced, measured, packaged, rejected offline, or a Neo job status."""

    kind: ClassVar[str] = "variant"
    name: str
    status: str
    fidelity: dict[str, Any] | None = None
    preflight: dict[str, Any] | None = None
    failure_reason: str | None = None
    job_name: str | None = None
    archive: str | None = None
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class SettingEvent(Event):
    kind: ClassVar[str] = "setting"
    name: str
    value: str
    ok: bool
    message: str = ""
    source: str = ""


@dataclass(frozen=True, kw_only=True)
class PermissionEvent(Event):
    kind: ClassVar[str] = "permission"
    action: str
    resource: str
    decision: str
    matched: list[str] = field(default_factory=list)
    blocked_by: str = ""  # "" | "permissions boundary" | "SCP": a cap no inline policy lifts


@dataclass(frozen=True, kw_only=True)
class BuildEvent(Event):
    kind: ClassVar[str] = "build"
    build_id: str
    phase: str
    status: str
    duration: float | None = None


@dataclass(frozen=True, kw_only=True)
class LogEvent(Event):
    kind: ClassVar[str] = "log"
    line: str
    timestamp: int


@dataclass(frozen=True, kw_only=True)
class ImageEvent(Event):
    kind: ClassVar[str] = "image"
    uri: str
    digest: str
    tag: str


@dataclass(frozen=True, kw_only=True)
class SmokeEvent(Event):
    """The pushed image started as SageMaker hosting starts it, `/ping` and one `/invocations` checked."""

    kind: ClassVar[str] = "smoke"
    image: str
    ok: bool
    ping_seconds: float | None = None
    pair: list[int] = field(default_factory=list)
    score: float | None = None
    runtime: str = ""
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class CheckEvent(Event):
    kind: ClassVar[str] = "check"
    id: str
    title: str
    status: str  # pass | warn | fail | skip
    evidence: str = ""
    fix: str = ""


@dataclass(frozen=True, kw_only=True)
class DoneEvent(Event):
    kind: ClassVar[str] = "done"
    status: str  # ok | failed | cancelled
    exit_code: int
    image_uri: str | None = None
    message: str = ""


Emit = Callable[[Event], None]
"""What a step calls to report progress."""


def discard(_event: Event) -> None:
    """An ``Emit`` that drops everything (for callers that want only the result)."""
