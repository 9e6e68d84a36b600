"""The wizard's steps in order, shared by the TUI, headless mode and the checklist.

Each step is a plain function: it takes what it needs (inputs, an ``Emit`` callback, a cancel flag) and
returns its result. This module holds the model half (checkpoint, variants); the AWS steps follow the same
shape. ``STEPS`` is the one ordered list of step names every front end uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import Checkpoint, load_checkpoint
from .errors import BadInputError, NcfError
from .events import CheckpointEvent, Emit, StepEvent, VariantEvent
from .preflight import DEFAULT_TVM_RELEASE
from .variants import VARIANT_NAMES, Variant, build_module, measure_fidelity, package, trace

STEPS: tuple[str, ...] = ("checkpoint", "variants", "compile", "settings", "permissions", "build", "verify")
DEFAULT_OUTPUT_DIR = Path("output/models/pruned")


class Cancelled(NcfError):
    """The user asked to stop; the step stopped at a safe point."""


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


@dataclass
class StepTimer:
    name: str
    emit: Emit

    def __enter__(self) -> StepTimer:
        self.start = time.monotonic()
        self.emit(StepEvent(name=self.name, status="started"))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        elapsed = round(time.monotonic() - self.start, 3)
        if exc is None:
            self.emit(StepEvent(name=self.name, status="done", elapsed=elapsed))
        elif isinstance(exc, Cancelled | KeyboardInterrupt):
            self.emit(StepEvent(name=self.name, status="cancelled", elapsed=elapsed))
        else:
            self.emit(StepEvent(name=self.name, status="failed", elapsed=elapsed, message=str(exc)))


def checkpoint_step(path: Path, emit: Emit) -> Checkpoint:
    """Load and describe the checkpoint; emits one ``checkpoint`` event."""
    with StepTimer("checkpoint", emit):
        ckpt = load_checkpoint(path)
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
            )
        )
        return ckpt


def check_output_dir(out_dir: Path) -> Path:
    """Refuse an output path that is a file (or under one) before anything is written."""
    out_dir = Path(out_dir)
    for p in (out_dir, *out_dir.parents):
        if p.exists() and not p.is_dir():
            raise BadInputError(f"--output-dir {out_dir}: {p} is a file, not a folder")
    return out_dir


def _preflight_dict(v: Variant) -> dict[str, object]:
    return {
        "release": v.preflight.release,
        "accepted": v.preflight.accepted,
        "missing": list(v.preflight.missing),
        "message": v.preflight.message,
    }


def variants_step(
    ckpt: Checkpoint,
    out_dir: Path,
    emit: Emit,
    *,
    names: Sequence[str] = VARIANT_NAMES,
    release: str = DEFAULT_TVM_RELEASE,
    cancel: threading.Event | None = None,
) -> list[Variant]:
    """Trace every variant, preflight it, measure its fidelity, then package them all.

    Nothing is written until every variant is traced and measured, so a failure or a cancel leaves no
    half-made output; each archive is itself written to a temporary name and renamed into place.
    """
    from .preflight import preflight
    from .variants import check_id_range

    out_dir = check_output_dir(out_dir)
    with StepTimer("variants", emit):
        check_id_range(ckpt.architecture)
        variants: list[Variant] = []
        for name in names:
            check_cancel(cancel)
            traced = trace(build_module(name, ckpt), ckpt.architecture)
            v = Variant(name=name, traced=traced, preflight=preflight(traced, release))
            variants.append(v)
            emit(VariantEvent(name=name, status="traced", preflight=_preflight_dict(v), message=v.description))
        check_cancel(cancel)

        def measured(v: Variant) -> None:
            check_cancel(cancel)
            assert v.fidelity is not None
            emit(VariantEvent(name=v.name, status="measured", fidelity=v.fidelity.as_dict()))

        measure_fidelity(variants, ckpt, on_measured=measured)
        for v in variants:
            check_cancel(cancel)
            package(v, ckpt.architecture, out_dir / v.name)
        for v in variants:
            status = "ready" if v.preflight.accepted else "rejected"
            emit(
                VariantEvent(
                    name=v.name,
                    status=status,
                    fidelity=v.fidelity.as_dict() if v.fidelity else None,
                    preflight=_preflight_dict(v),
                    failure_reason=v.preflight.message or None,
                    archive=str(v.archive),
                    message=v.description,
                )
            )
        return variants
