"""The checkpoint step: load and describe the checkpoint, settle how its model scores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Step, StepContext

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint
    from ..events import Emit


@dataclass
class CheckpointResult:
    summary: dict[str, Any]
    """``Checkpoint.summary()`` without its layer list: what the run state keeps."""
    checkpoint: Checkpoint | None = field(default=None, compare=False, repr=False)
    """The loaded tensors, in this process only (a resumed run loads them again, see ``reload``)."""

    def to_state(self) -> dict[str, Any]:
        return {"summary": self.summary}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> CheckpointResult:
        summary = data.get("summary")
        return cls(summary=dict(summary) if isinstance(summary, Mapping) else {})


def checkpoint_step(
    path: Path,
    emit: Emit,
    *,
    key_map: Path | None = None,
    gmf_norm: str | None = None,
    output: str | None = None,
) -> Checkpoint:
    """Load and describe the checkpoint, settle how its model scores; emits one ``checkpoint`` event."""
    from ..checkpoint import load_checkpoint, resolve_behaviour
    from ..events import CheckpointEvent

    ckpt = load_checkpoint(path, key_map=key_map)
    resolve_behaviour(ckpt, gmf_norm, output)
    s = ckpt.summary()
    emit(
        CheckpointEvent(
            path=s["path"],
            params=s["params"],
            sparsity=s["sparsity"],
            architecture=s["architecture"],
            pruned_sparsity=s["pruned_sparsity"],
            file_size=s["file_size"],
            layers=s["layers"],
            metadata=s["metadata"],
            layout=s["layout"],
            gmf_norm=s["gmf_norm"],
            output=s["output"],
            behaviour=s["behaviour"],
        )
    )
    return ckpt


def loaded_checkpoint(ctx: StepContext) -> Checkpoint:
    """The checkpoint's tensors: this run's, else read again as the finished checkpoint step read them
    (its key map and scoring, unless the options now say otherwise)."""
    from ..checkpoint import load_checkpoint, resolve_behaviour

    done: CheckpointResult | None = ctx.saved("checkpoint")
    if done is not None and done.checkpoint is not None:
        return done.checkpoint
    o = ctx.options
    summary = done.summary if done is not None else {}
    key_map = o.key_map or (Path(summary["key_map"]) if summary.get("key_map") else None)
    ckpt = load_checkpoint(o.checkpoint, key_map=key_map)
    if summary.get("gmf_norm") and summary.get("output"):
        resolve_behaviour(ckpt, summary["gmf_norm"], summary["output"], by="the run state")
    resolve_behaviour(ckpt, o.gmf_norm, o.output)
    if done is not None:
        done.checkpoint = ckpt
    return ckpt


class CheckpointStep(Step[CheckpointResult]):
    name = "checkpoint"
    title = "Checkpoint"
    result_type = CheckpointResult
    needs_aws = False

    def reusable(self, ctx: StepContext, saved: CheckpointResult) -> bool:
        # Only the variants step uses the tensors: once it is done too, nothing needs them loaded.
        return ctx.saved("variants") is not None

    def run(self, ctx: StepContext) -> CheckpointResult:
        o = ctx.options
        ckpt = checkpoint_step(o.checkpoint, ctx.emit, key_map=o.key_map, gmf_norm=o.gmf_norm, output=o.output)
        summary = ckpt.summary()
        summary.pop("layers", None)
        return CheckpointResult(summary=summary, checkpoint=ckpt)
