"""The typed events every step emits (the event list in README.md; docs/CONTRACTS.md for the rest).

Steps never print: they call an ``Emit`` callback with one of these. Headless mode prints them (JSON lines
with ``--json``, human lines otherwise), the TUI turns them into messages. ``to_json`` gives the contract's
shape: ``{"event": <kind>, "ts": <ISO-8601 UTC>, ...fields}``.
"""

from __future__ import annotations

import json
import sys
import threading
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
class ResourceEvent(Event):
    """An input of the run (bucket, role, repository): found, to be created, created, deleted or kept."""

    kind: ClassVar[str] = "resource"
    setting: str  # bucket | sagemaker_role | service_role | IMAGE_REPO_NAME
    resource: str  # bucket | role | repository
    name: str
    arn: str = ""
    status: str  # present | will be created | created | deleted | kept
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class EndpointEvent(Event):
    """The SageMaker endpoint of the deploy step: created, re-attached, a status change, deleted."""

    kind: ClassVar[str] = "endpoint"
    name: str
    status: str  # DescribeEndpoint's EndpointStatus (Creating, InService, Failed, Deleting...), or Deleted
    config: str = ""
    model: str = ""
    instance_type: str = ""
    failure_reason: str = ""
    log_lines: list[str] = field(default_factory=list)
    """The endpoint's CloudWatch log lines (``/aws/sagemaker/Endpoints/<name>``) when it failed."""
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class InvocationEvent(Event):
    """One call (or the latency series) through sagemaker-runtime InvokeEndpoint."""

    kind: ClassVar[str] = "invocation"
    endpoint: str
    request: str  # pair | batch | top_k | latency
    ok: bool
    body: dict[str, Any] = field(default_factory=dict)
    """What was sent (the JSON body; for ``latency``, the pair repeated)."""
    scores: list[float] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    """For ``top_k``: ``{"item_id", "score"}`` best first."""
    latency_ms: float | None = None
    calls: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
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


class JsonLines:
    """An ``Emit`` for ``--json``: one event per line on ``stream`` (stdout), flushed at once so a reader sees
    it live; safe to call from several threads."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.stream.write(event.to_json() + "\n")
            self.stream.flush()


"""What a step calls to report progress."""


def discard(_event: Event) -> None:
    """An ``Emit`` that drops everything (for callers that want only the result)."""
