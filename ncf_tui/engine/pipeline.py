"""A run: the steps of ``steps.REGISTRY`` in order, resumable, shared by the TUI, headless mode and the checklist.

``Pipeline`` is one loop over the registry: for each step it either reuses the result the run state already
holds (``skipped``) or times the step, runs it and saves its result (``result.to_state()`` under the step's
name). The step bodies live in ``engine/steps/<name>.py``; nothing here knows what any one step does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..build_source import source_root
from .aws import Aws
from .ecr import SmokeRun
from .errors import BadInputError, Cancelled, check_cancel
from .events import Emit, StepEvent
from .neo import CompileConfig, CompileResult
from .preflight import DEFAULT_TVM_RELEASE
from .state import RunState, StateStore, new_run_id
from .steps import DEFAULT_STEPS, REGISTRY, StepSpec, load_step, wanted_steps
from .steps.base import Step, StepContext, StepResult
from .steps.variants import DEFAULT_OUTPUT_DIR
from .steps.verify import VerifyResult
from .variants import file_sha256


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


# ------------------------------------------------------------------------------------- the state machine


Ask = Callable[[str, Any], bool]
"""A confirmation: ``ask(topic, detail)`` with topics ``setting-fix`` (a SettingIssue), ``attach-policy`` (the
policy document) and ``update-project`` (the list of field changes); True agrees."""


def refuse(_topic: str, _detail: Any) -> bool:
    return False


def agree(_topic: str, _detail: Any) -> bool:
    return True


@dataclass
class RunOptions:
    """What a run was asked to do (from flags, config or the wizard's answers)."""

    checkpoint: Path
    output_dir: Path = DEFAULT_OUTPUT_DIR
    until: str = DEFAULT_STEPS[-1]
    delete_endpoint: bool = False
    """With the deploy step: delete the endpoint, its config and model after the invocations."""
    also: frozenset[str] = frozenset()
    """Opt-in steps (``StepSpec.opt_in``) this run runs too; naming one in ``until`` asks for it as well."""
    release: str = DEFAULT_TVM_RELEASE
    force: frozenset[str] = frozenset()
    stop_on_cancel: bool = True
    mode: str = "aws"
    settings_flags: dict[str, str | None] = field(default_factory=dict)
    config: Path | None = None
    saved_dir: Path | None = None
    env: dict[str, str] | None = None
    save_answers: bool = True
    source_root: Path = field(default_factory=source_root)
    """Where the build source (``container/``, ``buildspec.yml``) is zipped from: the installed package's copy."""
    ask: Ask = refuse
    smoke_run: SmokeRun | None = None
    """Runs the pushed image as SageMaker would (the sandbox with a Docker Engine gives one)."""
    key_map: Path | None = None
    gmf_norm: str | None = None
    output: str | None = None
    """How the model scores (``--gmf-norm``, ``--output`` or the wizard); None: from the checkpoint itself."""


@dataclass
class RunOutcome:
    run_id: str
    last_step: str
    state_path: Path | None = None
    results: dict[str, StepResult] = field(default_factory=dict)
    """The typed result of every step this run ran or reused, by step name."""

    def result(self, name: str) -> Any:
        """The typed result of ``name`` (e.g. ``VariantsResult``), None when the run did not reach it."""
        return self.results.get(name)

    @property
    def chosen(self) -> str | None:
        compiled = self.results.get("compile")
        return compiled.chosen if isinstance(compiled, CompileResult) else None

    @property
    def neo_model_s3_uri(self) -> str | None:
        compiled = self.results.get("compile")
        return compiled.neo_model_s3_uri if isinstance(compiled, CompileResult) else None

    @property
    def image_uri(self) -> str | None:
        verified = self.results.get("verify")
        return verified.image_uri if isinstance(verified, VerifyResult) else None


class Pipeline:
    """The steps of a registry as one ordered, resumable state machine.

    Each step's result goes into the run state as soon as the step finishes (a step may also save its
    progress while it runs, as the compile step does after every job it creates), so a run stopped at any
    point continues with ``resume`` without redoing finished steps and without launching any job twice.
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
        registry: Sequence[StepSpec] = REGISTRY,
    ) -> None:
        self.options = options
        self.emit = emit
        self.store = store
        self.state = state
        self._aws_factory = aws
        self._aws: Aws | None = None
        self.extras: dict[str, Any] = {"compile_config": compile_config}
        self.cancel = cancel or threading.Event()
        self.registry = tuple(registry)

    # -------------------------------------------------------------------------------------- creation

    @classmethod
    def new(
        cls,
        options: RunOptions,
        emit: Emit,
        *,
        store: StateStore | None = None,
        state_dir: Path | None = None,
        run_id: str | None = None,
        **kw: Any,
    ) -> Pipeline:
        run_id = run_id or new_run_id()
        store = store or StateStore.for_run(run_id, state_dir)
        store.lock()
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
        store.lock()
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
        try:
            wanted = wanted_steps(until, self.options.also, self.registry)
        except KeyError:
            known = ", ".join(s.name for s in self.registry)
            raise BadInputError(f"unknown step {until!r}; the steps are {known}") from None
        # Unfinished while it runs (a deploy asked for after verify included), so a stop leaves it resumable.
        finished_before, self.state.finished = self.state.finished, False
        self.save()
        outcome = RunOutcome(run_id=self.run_id, last_step=until, state_path=self.store.path)
        ctx = StepContext(
            options=self.options,
            emit=self.emit,
            state=self.state,
            save=self.save,
            aws=self.aws,
            cancel=self.cancel,
            results=outcome.results,
            extras=self.extras,
            registry=self.registry,
            wanted=tuple(s.name for s in wanted),
        )
        try:
            for spec in wanted:
                check_cancel(self.cancel)
                self._run_step(load_step(spec), ctx)
        except (Cancelled, KeyboardInterrupt):
            self.save()
            raise Cancelled(f"cancelled; continue with --resume (state in {self.store.path})") from None
        # Finished once the last step of a plain run is done: opt-in steps after it do not keep a run open.
        names = [s.name for s in self.registry]
        if finished_before or names.index(until) >= max(i for i, s in enumerate(self.registry) if not s.opt_in):
            self.state.finished = True
        self.save()
        return outcome

    def _run_step(self, step: Step[Any], ctx: StepContext) -> None:
        """Reuse the saved result if the step accepts it; else time, run and save the step."""
        entry = self.state.steps.get(step.name)
        if isinstance(entry, dict) and entry.get("status") == "done":
            saved = step.result_type.from_state(entry)
            if step.reusable(ctx, saved):
                self.emit(StepEvent(name=step.name, status="skipped", message=f"done earlier in run {self.run_id}"))
                ctx.results[step.name] = saved
                return
        with StepTimer(step.name, self.emit):
            result = step.run(ctx)
        self.state.steps[step.name] = {**result.to_state(), "status": "done"}
        ctx.results[step.name] = result
        self.save()


def _sha_or_empty(path: Path) -> str:
    try:
        return file_sha256(path) if Path(path).is_file() else ""
    except OSError:
        return ""
