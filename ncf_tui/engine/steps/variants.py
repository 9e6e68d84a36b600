"""The variants step: trace every variant, preflight it for Neo, measure its fidelity, package it."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadInputError, check_cancel
from .base import Step, StepContext

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint
    from ..events import Emit
    from ..neo import Candidate
    from ..variants import Variant

DEFAULT_OUTPUT_DIR = Path("output/models/pruned")


@dataclass
class VariantsResult:
    candidates: list[Candidate]
    """What the compile step needs of each variant, in the order they were made."""
    sha256: dict[str, str] = field(default_factory=dict)
    """Each archive's sha256 by variant, so a resumed run reuses only archives that are still the same."""

    def to_state(self) -> dict[str, Any]:
        return {"candidates": [{**asdict(c), "sha256": self.sha256.get(c.name)} for c in self.candidates]}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> VariantsResult:
        from ..neo import Candidate

        known = {f.name for f in fields(Candidate)}
        saved = [c for c in data.get("candidates") or [] if isinstance(c, Mapping)]
        return cls(
            candidates=[Candidate(**{k: v for k, v in c.items() if k in known}) for c in saved],
            sha256={str(c["name"]): str(c["sha256"]) for c in saved if c.get("sha256")},
        )

    def by_name(self, name: str) -> Candidate | None:
        return next((c for c in self.candidates if c.name == name), None)


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
    names: Sequence[str] | None = None,
    release: str | None = None,
    cancel: threading.Event | None = None,
) -> list[Variant]:
    """Trace every variant, preflight it, measure its fidelity, then package them all.

    Nothing is written until every variant is traced and measured, so a failure or a cancel leaves no
    half-made output; each archive is itself written to a temporary name and renamed into place.
    """
    from ..events import VariantEvent
    from ..preflight import DEFAULT_TVM_RELEASE
    from ..variants import VARIANT_NAMES, check_id_range, make_variant, measure_fidelity, package

    out_dir = check_output_dir(out_dir)
    check_id_range(ckpt.architecture)
    variants: list[Variant] = []
    for name in VARIANT_NAMES if names is None else names:
        check_cancel(cancel)
        v = make_variant(name, ckpt, release or DEFAULT_TVM_RELEASE)
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


class VariantsStep(Step[VariantsResult]):
    name = "variants"
    title = "Variants"
    result_type = VariantsResult
    needs_aws = False

    def reusable(self, ctx: StepContext, saved: VariantsResult) -> bool:
        from ..variants import file_sha256

        return bool(saved.candidates) and all(
            Path(c.archive).is_file() and file_sha256(Path(c.archive)) == saved.sha256.get(c.name)
            for c in saved.candidates
        )

    def run(self, ctx: StepContext) -> VariantsResult:
        from ..neo import Candidate
        from ..variants import file_sha256
        from .checkpoint import loaded_checkpoint

        o = ctx.options
        variants = variants_step(loaded_checkpoint(ctx), o.output_dir, ctx.emit, release=o.release, cancel=ctx.cancel)
        candidates = [
            Candidate(
                name=v.name,
                archive=str(v.archive),
                accepted=v.preflight.accepted,
                preflight_message=v.preflight.message,
                fidelity=v.fidelity.as_dict() if v.fidelity else None,
                data_input_config=str(v.sidecar.get("data_input_config", '{"input0": [1, 2]}')),
            )
            for v in variants
        ]
        return VariantsResult(candidates, {v.name: file_sha256(Path(str(v.archive))) for v in variants})
