"""The wizard's steps in order, shared by the TUI, headless mode and the checklist.

Each step is a plain function: it takes what it needs (inputs, an ``Emit`` callback, a cancel flag) and
returns its result. This module holds the model half (checkpoint, variants); the AWS steps follow the same
shape. ``STEPS`` is the one ordered list of step names every front end uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .aws import Aws
from .checkpoint import Checkpoint, load_checkpoint
from .errors import BadInputError, Cancelled, check_cancel
from .events import CheckpointEvent, Emit, StepEvent, VariantEvent
from .neo import Candidate, CompileConfig, Job, compile_step, neo_inference_image
from .preflight import DEFAULT_TVM_RELEASE
from .state import RunState, StateStore, new_run_id
from .variants import VARIANT_NAMES, Variant, build_module, file_sha256, measure_fidelity, package, trace

STEPS: tuple[str, ...] = ("checkpoint", "variants", "compile", "settings", "permissions", "build", "verify")
DEFAULT_OUTPUT_DIR = Path("output/models/pruned")


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


# ------------------------------------------------------------------------------------- the state machine


@dataclass
class RunOptions:
    """What a run was asked to do (from flags, config or the wizard's answers)."""

    checkpoint: Path
    output_dir: Path = DEFAULT_OUTPUT_DIR
    until: str = STEPS[-1]
    release: str = DEFAULT_TVM_RELEASE
    force: frozenset[str] = frozenset()
    stop_on_cancel: bool = True
    mode: str = "aws"


@dataclass
class RunOutcome:
    run_id: str
    last_step: str
    chosen: str | None = None
    neo_model_s3_uri: str | None = None
    image_uri: str | None = None
    state_path: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)


BUILT_STEPS: tuple[str, ...] = ("checkpoint", "variants", "compile")
"""Steps the pipeline runs in this release; the rest answer with a clear 'not yet'."""


class Pipeline:
    """The wizard's steps as one ordered, resumable state machine.

    Each step's result goes into the run state as soon as the step finishes (the compile step also after
    every job it creates), so a run stopped at any point continues with ``resume`` without redoing finished
    steps and without launching any job twice.
    """

    def __init__(
        self,
        options: RunOptions,
        emit: Emit,
        store: StateStore,
        state: RunState,
        *,
        aws: Callable[[], Aws] | None = None,
        compile_config: Callable[[Aws], CompileConfig] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.options = options
        self.emit = emit
        self.store = store
        self.state = state
        self._aws_factory = aws
        self._aws: Aws | None = None
        self._compile_config = compile_config
        self.cancel = cancel or threading.Event()
        self._ckpt: Checkpoint | None = None

    # -------------------------------------------------------------------------------------- creation

    @classmethod
    def new(
        cls,
        options: RunOptions,
        emit: Emit,
        *,
        store: StateStore | None = None,
        state_dir: Path | None = None,
        **kw: Any,
    ) -> Pipeline:
        run_id = new_run_id()
        store = store or StateStore.for_run(run_id, state_dir)
        existing = store.load()
        if existing is not None and not existing.finished:
            raise BadInputError(
                f"{store.path} holds the unfinished run {existing.run_id}",
                hint="pass --resume to continue it, or choose another --state file",
            )
        state = RunState(
            run_id=run_id,
            mode=options.mode,
            checkpoint=str(options.checkpoint),
            checkpoint_sha256=_sha_or_empty(options.checkpoint),
            output_dir=str(options.output_dir),
        )
        return cls(options, emit, store, state, **kw)

    @classmethod
    def resume(cls, store: StateStore, options: RunOptions, emit: Emit, **kw: Any) -> Pipeline:
        state = store.load()
        if state is None:
            raise BadInputError(f"no run to resume: {store.path} does not exist")
        if state.finished:
            raise BadInputError(f"the run {state.run_id} in {store.path} already finished; start a new one")
        if state.mode != options.mode:
            raise BadInputError(f"the run {state.run_id} ran against {state.mode}, not {options.mode}")
        options.checkpoint = Path(state.checkpoint)
        options.output_dir = Path(state.output_dir)
        if _sha_or_empty(options.checkpoint) != state.checkpoint_sha256:
            raise BadInputError(
                f"the checkpoint {state.checkpoint} changed or vanished since run {state.run_id} started",
                hint="start a new run",
            )
        return cls(options, emit, store, state, **kw)

    # ------------------------------------------------------------------------------------------ running

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def aws(self) -> Aws:
        if self._aws is None:
            if self._aws_factory is None:
                raise BadInputError("this step needs AWS, and no AWS target was given")
            self._aws = self._aws_factory()
        return self._aws

    def save(self) -> None:
        self.store.save(self.state)

    def run(self, until: str | None = None) -> RunOutcome:
        until = until or self.options.until
        if until not in STEPS:
            raise BadInputError(f"unknown step {until!r}; the steps are {', '.join(STEPS)}")
        wanted = STEPS[: STEPS.index(until) + 1]
        missing = [s for s in wanted if s not in BUILT_STEPS]
        if missing:
            raise BadInputError(
                f"--until {until}: this release runs {', '.join(BUILT_STEPS)}; not built yet: {', '.join(missing)}"
            )
        self.save()
        outcome = RunOutcome(run_id=self.run_id, last_step=until, state_path=self.store.path)
        try:
            for step in wanted:
                check_cancel(self.cancel)
                getattr(self, f"_step_{step}")(outcome)
        except (Cancelled, KeyboardInterrupt):
            self.save()
            raise Cancelled(f"cancelled; continue with --resume (state in {self.store.path})") from None
        if until == STEPS[-1]:
            self.state.finished = True
        self.save()
        return outcome

    def _done(self, step: str) -> dict[str, Any] | None:
        entry = self.state.steps.get(step)
        return entry if isinstance(entry, dict) and entry.get("status") == "done" else None

    def _skip(self, step: str) -> None:
        self.emit(StepEvent(name=step, status="skipped", message=f"done earlier in run {self.run_id}"))

    def _step_checkpoint(self, outcome: RunOutcome) -> None:
        if self._done("checkpoint") and self._done("variants"):
            self._skip("checkpoint")
            return
        self._ckpt = checkpoint_step(self.options.checkpoint, self.emit)
        summary = self._ckpt.summary()
        summary.pop("layers", None)
        self.state.steps["checkpoint"] = {"status": "done", "summary": summary}
        self.save()

    def _step_variants(self, outcome: RunOutcome) -> None:
        saved = self._done("variants")
        if saved and all(
            Path(c["archive"]).is_file() and file_sha256(Path(c["archive"])) == c.get("sha256")
            for c in saved["candidates"]
        ):
            self._skip("variants")
            outcome.results["candidates"] = saved["candidates"]
            return
        if self._ckpt is None:
            self._ckpt = load_checkpoint(self.options.checkpoint)
        variants = variants_step(
            self._ckpt, self.options.output_dir, self.emit, release=self.options.release, cancel=self.cancel
        )
        candidates = [
            {
                **asdict(
                    Candidate(
                        name=v.name,
                        archive=str(v.archive),
                        accepted=v.preflight.accepted,
                        preflight_message=v.preflight.message,
                        fidelity=v.fidelity.as_dict() if v.fidelity else None,
                        data_input_config=str(v.sidecar.get("data_input_config", '{"input0": [1, 2]}')),
                    )
                ),
                "sha256": file_sha256(Path(str(v.archive))),
            }
            for v in variants
        ]
        self.state.steps["variants"] = {"status": "done", "candidates": candidates}
        outcome.results["candidates"] = candidates
        self.save()

    def _step_compile(self, outcome: RunOutcome) -> None:
        saved = self._done("compile")
        if saved:
            self._skip("compile")
            outcome.chosen, outcome.neo_model_s3_uri = saved["chosen"], saved["neo_model_s3_uri"]
            return
        if self._compile_config is None:
            raise BadInputError("the compile step needs a bucket, a prefix and a SageMaker role")
        aws = self.aws()
        cfg = self._compile_config(aws)
        if self.options.force:
            cfg.force = frozenset(self.options.force)
        variants_entry = self._done("variants") or {}
        candidates = [
            Candidate(**{k: v for k, v in c.items() if k != "sha256"}) for c in variants_entry.get("candidates", [])
        ]
        partial = self.state.steps.get("compile", {})
        known = {k: Job(**v) for k, v in (partial.get("jobs") or {}).items()}

        def on_jobs(jobs: dict[str, Job]) -> None:
            self.state.steps["compile"] = {"status": "running", "jobs": {k: asdict(v) for k, v in jobs.items()}}
            self.save()

        image: dict[str, str | None] = {}
        lookup = threading.Thread(
            target=lambda: image.update(uri=neo_inference_image(aws.region, cfg.target_device)),
            name="neo-image-uri",
            daemon=True,
        )
        lookup.start()  # the sagemaker SDK takes seconds to import: overlap it with the jobs
        with StepTimer("compile", self.emit):
            result = compile_step(
                aws,
                candidates,
                cfg,
                self.run_id,
                self.emit,
                cancel=self.cancel,
                known_jobs=known,
                on_jobs=on_jobs,
                stop_on_cancel=self.options.stop_on_cancel,
            )
        lookup.join(timeout=30)
        self.state.steps["compile"] = {
            "status": "done",
            **result.to_state(),
            "inference_image": image.get("uri"),
            "target_device": cfg.target_device,
        }
        outcome.results["inference_image"] = image.get("uri")
        outcome.chosen, outcome.neo_model_s3_uri = result.chosen, result.neo_model_s3_uri
        outcome.results["compile"] = result
        self.save()


def _sha_or_empty(path: Path) -> str:
    try:
        return file_sha256(path) if Path(path).is_file() else ""
    except OSError:
        return ""
