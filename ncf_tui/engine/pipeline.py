"""The wizard's steps in order, shared by the TUI, headless mode and the checklist.

Each step is a plain function: it takes what it needs (inputs, an ``Emit`` callback, a cancel flag) and
returns its result. This module holds the model half (checkpoint, variants); the AWS steps follow the same
shape. ``STEPS`` is the one ordered list of step names every front end uses.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..build_source import source_root
from .aws import Aws, error_code
from .checkpoint import Checkpoint, load_checkpoint, resolve_behaviour
from .codebuild import (
    DEFAULT_IMAGE,
    BuildCancelled,
    BuildFailed,
    BuildResult,
    ProjectSpec,
    ensure_project,
    start_build,
    upload_source,
    watch_build,
)
from .ecr import SmokeRun, deploy_commands, instance_type_for, verify_image
from .errors import BadInputError, Cancelled, check_cancel
from .events import CheckpointEvent, Emit, StepEvent, VariantEvent
from .iam import Permission, permissions_step, source_permissions
from .logs import BuildValues, LogPosition
from .neo import Candidate, CompileConfig, Job, compile_step, neo_inference_image
from .preflight import DEFAULT_TVM_RELEASE
from .settings import Settings, save, saved_config_path, settings_step, split_s3_uri
from .state import RunState, StateStore, new_run_id
from .variants import VARIANT_NAMES, Variant, file_sha256, measure_fidelity, package

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


def checkpoint_step(
    path: Path,
    emit: Emit,
    *,
    key_map: Path | None = None,
    gmf_norm: str | None = None,
    output: str | None = None,
) -> Checkpoint:
    """Load and describe the checkpoint, settle how its model scores; emits one ``checkpoint`` event."""
    with StepTimer("checkpoint", emit):
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
    from .variants import check_id_range, make_variant

    out_dir = check_output_dir(out_dir)
    with StepTimer("variants", emit):
        check_id_range(ckpt.architecture)
        variants: list[Variant] = []
        for name in names:
            check_cancel(cancel)
            v = make_variant(name, ckpt, release)
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


Ask = Callable[[str, Any], bool]
"""A confirmation: ``ask(topic, detail)`` with topics ``setting-fix`` (a SettingIssue), ``attach-policy`` (the
policy document) and ``update-project`` (the list of field changes); True agrees."""

SOURCE_KEY = "source/ncf-tui-source.zip"


def refuse(_topic: str, _detail: Any) -> bool:
    return False


def agree(_topic: str, _detail: Any) -> bool:
    return True


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
    chosen: str | None = None
    neo_model_s3_uri: str | None = None
    image_uri: str | None = None
    state_path: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)


BUILT_STEPS: tuple[str, ...] = STEPS
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
        o = self.options
        self._ckpt = checkpoint_step(o.checkpoint, self.emit, key_map=o.key_map, gmf_norm=o.gmf_norm, output=o.output)
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
            self._ckpt = self._reload_checkpoint()
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

    def _reload_checkpoint(self) -> Checkpoint:
        """The checkpoint again on a resumed run, read as the finished checkpoint step read it."""
        o = self.options
        done = (self._done("checkpoint") or {}).get("summary") or {}
        key_map = o.key_map or (Path(done["key_map"]) if done.get("key_map") else None)
        ckpt = load_checkpoint(o.checkpoint, key_map=key_map)
        if done.get("gmf_norm") and done.get("output"):
            resolve_behaviour(ckpt, done["gmf_norm"], done["output"], by="the run state")
        resolve_behaviour(ckpt, o.gmf_norm, o.output)
        return ckpt

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

    # ---------------------------------------------------------------------------------- the AWS steps

    def _settings(self) -> Settings:
        entry = self._done("settings")
        if entry is None:
            raise BadInputError("the settings step has not run")
        return _settings_from_state(entry["values"])

    def _source_permission(self, settings: Settings) -> list[Permission]:
        return source_permissions(settings.partition, settings.bucket, f"{settings.prefix}/{SOURCE_KEY}")

    def _base_image(self, settings: Settings) -> str | None:
        """The Neo inference image the build pulls FROM: the compile step's lookup, else looked up now."""
        saved = (self._done("compile") or {}).get("inference_image")
        if saved:
            return str(saved)
        return neo_inference_image(settings.region, settings.target_device or "ml_c5")

    def _step_settings(self, outcome: RunOutcome) -> None:
        if self._done("settings"):
            self._skip("settings")
            return
        compile_entry = self._done("compile") or {}
        derived = {"NEO_MODEL_S3_URI": compile_entry.get("neo_model_s3_uri", "")}
        ask = self.options.ask
        with StepTimer("settings", self.emit):
            settings = settings_step(
                self.aws(),
                self.emit,
                flags=self.options.settings_flags,
                env=self.options.env,
                config=self.options.config,
                saved_dir=self.options.saved_dir,
                derived=derived,
                fix=lambda issue: ask("setting-fix", issue),
            )
            if self.options.save_answers:
                save(settings, saved_config_path(self.options.saved_dir, self.options.env))
        self.state.steps["settings"] = {"status": "done", "values": settings.as_dict()}
        outcome.results["settings"] = settings
        self.save()

    def _step_permissions(self, outcome: RunOutcome) -> None:
        if self._done("permissions"):
            self._skip("permissions")
            return
        settings = self._settings()
        ask = self.options.ask
        with StepTimer("permissions", self.emit):
            report = permissions_step(
                self.aws(),
                settings,
                self.emit,
                fix=lambda policy: ask("attach-policy", policy),
                extra=self._source_permission(settings),
                base_image=self._base_image(settings),
            )
            if not report.verified:
                self.emit(StepEvent(name="permissions", status="warning", message=report.warning))
        self.state.steps["permissions"] = {"status": "done", "report": report.to_dict()}
        if report.attached:
            self.state.steps["permissions"]["attached_at"] = time.time()
        outcome.results["permissions"] = report
        self.save()

    def _step_build(self, outcome: RunOutcome) -> None:
        saved = self._done("build")
        if saved:
            self._skip("build")
            return
        settings = self._settings()
        aws = self.aws()
        entry = self.state.steps.get("build") or {}
        ask = self.options.ask

        def started(build_id: str) -> None:
            self.state.steps["build"] = {"status": "running", "build_id": build_id}
            self.save()

        def position(pos: LogPosition) -> None:
            build = self.state.steps.get("build") or {}
            build["log_position"] = pos.to_dict()
            self.state.steps["build"] = build

        with StepTimer("build", self.emit):
            try:
                if entry.get("build_id") and entry.get("status") == "running":
                    log_pos = LogPosition.from_dict(entry["log_position"]) if entry.get("log_position") else None
                    result = watch_build(
                        aws,
                        entry["build_id"],
                        self.emit,
                        self.cancel,
                        stop_on_cancel=self.options.stop_on_cancel,
                        log_position=log_pos,
                        on_log_position=position,
                    )
                else:
                    source = upload_source(
                        aws, settings.bucket, f"{settings.prefix}/{SOURCE_KEY}", self.options.source_root
                    )
                    spec = ProjectSpec(
                        name=settings.project_name,
                        service_role_arn=settings.service_role,
                        source=source,
                        environment_variables={
                            **settings.codebuild_environment(),
                            "NEO_BASE_IMAGE": self._neo_base_image(settings),
                        },
                        image=settings.build_image or DEFAULT_IMAGE,
                        privileged_mode=True,
                    )
                    ensure_project(aws, spec, self.emit, lambda changes: ask("update-project", changes))
                    result = self._build_through_propagation(
                        lambda: start_build(
                            aws,
                            settings.project_name,
                            self.emit,
                            self.cancel,
                            stop_on_cancel=self.options.stop_on_cancel,
                            # This run's variables, whatever another run set on the shared project meanwhile.
                            environment_overrides=settings.codebuild_environment(),
                            on_started=started,
                            on_log_position=position,
                        )
                    )
            except BuildFailed as exc:
                self.state.steps["build"] = {
                    "status": "failed",
                    "build_id": exc.result.build_id,
                    "failed_phase": exc.result.failed_phase,
                }
                self.save()
                raise
            except BuildCancelled as exc:
                if exc.result.status == "STOPPED":  # stopped on CodeBuild: a resume starts a new build
                    self.state.steps["build"] = {"status": "stopped", "build_id": exc.result.build_id}
                self.save()
                raise Cancelled("cancelled while building") from None
        self.state.steps["build"] = {
            "status": "done",
            "build_id": result.build_id,
            "values": result.values.as_dict(),
            "duration": result.duration,
        }
        outcome.results["build"] = result
        self.save()

    def _smoke_pair(self) -> tuple[int, int] | None:
        """A (user, item) pair from the middle of the chosen variant's id ranges (its sidecar)."""
        import io
        import json
        import tarfile

        chosen = (self._done("compile") or {}).get("chosen")
        for candidate in (self._done("variants") or {}).get("candidates", []):
            if candidate.get("name") != chosen:
                continue
            try:
                with tarfile.open(str(candidate.get("archive")), "r:*") as tar:
                    member = tar.extractfile("ncf-model.json")
                    sidecar = json.load(io.TextIOWrapper(member, "utf-8")) if member else {}
                users, items = sidecar["user_id_range"], sidecar["item_id_range"]
                return (int(users[0]) + int(users[1])) // 2, (int(items[0]) + int(items[1])) // 2
            except (OSError, KeyError, ValueError, TypeError, tarfile.TarError):
                return None
        return None

    def _neo_base_image(self, settings: Settings) -> str:
        """The image the Dockerfile builds FROM: the Neo inference image looked up at compile time, else now."""
        compile_entry = self._done("compile") or {}
        image = compile_entry.get("inference_image")
        device = str(compile_entry.get("target_device") or settings.target_device or "ml_c5")
        if not image:
            image = neo_inference_image(settings.region, device)
        if not image:
            raise BadInputError(
                f"no SageMaker Neo PyTorch inference image is known for {settings.region} / {device}",
                hint="the Dockerfile builds FROM it: install the sagemaker SDK, or pick a region Neo serves",
            )
        return str(image)

    def _build_through_propagation(self, start: Callable[[], BuildResult]) -> BuildResult:
        """Start the build; if it fails early with AccessDenied within minutes of this run attaching a policy to
        its role, start it again (bounded, saying so): IAM is eventually consistent, so a change the
        simulation already sees may not have reached the build yet."""
        attached_at = (self.state.steps.get("permissions") or {}).get("attached_at")
        for attempt, delay in enumerate((*PROPAGATION_WAITS, None), start=1):
            try:
                return start()
            except BuildFailed as exc:
                since = time.time() - float(attached_at) if isinstance(attached_at, int | float) else None
                if delay is None or since is None or since > PROPAGATION_WINDOW or not denied_early(exc.result):
                    raise
                self.emit(
                    StepEvent(
                        name="build",
                        status="warning",
                        message=f"build {exc.result.build_id} was denied access in {exc.result.failed_phase} "
                        f"{since:.0f} s after the policy was attached; IAM changes take time "
                        f"to reach every service (eventual consistency): starting it again in {delay:.0f} s "
                        f"(attempt {attempt + 1} of {len(PROPAGATION_WAITS) + 1})",
                    )
                )
                if self.cancel.wait(delay):
                    raise Cancelled("cancelled while waiting for IAM to propagate") from None
        raise AssertionError("unreachable")

    def _step_verify(self, outcome: RunOutcome) -> None:
        saved = self._done("verify")
        if saved:
            self._skip("verify")
            outcome.image_uri = saved["image_uri"]
            return
        settings = self._settings()
        aws = self.aws()
        build = self._done("build") or {}
        values = BuildValues(**{k: v for k, v in (build.get("values") or {}).items() if k != "errors"})
        with StepTimer("verify", self.emit):
            expected_model = compiled_model_sha256(aws, settings.neo_model_s3_uri, settings.model_key)
            info = verify_image(
                aws,
                settings.image_repo_name,
                settings.image_tag,
                self.emit,
                expected_digest=values.image_digest,
                expected_model_sha256=expected_model,
                build_values=values,
                smoke_run=self.options.smoke_run,
                smoke_pair=self._smoke_pair(),
            )
            target = str((self._done("compile") or {}).get("target_device") or settings.target_device or "ml_c5")
            commands = deploy_commands(
                info.uri, settings.region, settings.sagemaker_role, instance_type=instance_type_for(target)
            )
        self.state.steps["verify"] = {
            "status": "done",
            "image_uri": info.uri,
            "digest": info.digest,
            "model_sha256": info.model_sha256,
            "verified": list(info.verified),
            "deploy_commands": commands,
            "smoke": info.smoke,
        }
        outcome.image_uri = info.uri
        outcome.results["image"] = info
        outcome.results["deploy_commands"] = commands
        self.save()


PROPAGATION_WINDOW = 600.0
"""A denial this many seconds after attaching the fix may be IAM's propagation, not a missing permission."""
PROPAGATION_WAITS = (10.0, 20.0, 40.0)
EARLY_PHASES = frozenset({"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD"})
_DENIED = re.compile(r"AccessDenied|Access Denied|not authorized to perform|\(403\)|403 Forbidden|Forbidden\b")


def denied_early(result: BuildResult) -> bool:
    """The build failed before its BUILD phase, with an access denial in its phase context or its log."""
    if result.failed_phase not in EARLY_PHASES:
        return False
    texts = [p.context for p in result.phases] + list(result.log_tail)
    return any(_DENIED.search(text) for text in texts)


def _sha_or_empty(path: Path) -> str:
    try:
        return file_sha256(path) if Path(path).is_file() else ""
    except OSError:
        return ""


def _settings_from_state(values: dict[str, str]) -> Settings:
    s = Settings()
    for name, value in values.items():
        s = s.with_value(name, value, "state")
    return s


def compiled_model_sha256(aws: Aws, neo_model_s3_uri: str, model_key: str = "") -> str | None:
    """sha256 of the compiled model (``model.pth``, else ``compiled.pt``) inside the Neo archive the build
    downloads: ``model_key`` when settings found it, else the archive NEO_MODEL_S3_URI names or the one the
    build's rule picks under it (None if it cannot be read)."""
    import hashlib

    from .artifact import choose_archive, compiled_model_in

    bucket, key = split_s3_uri(neo_model_s3_uri)
    key = model_key or key
    s3 = aws.client("s3")
    try:
        if not key.endswith(".tar.gz"):
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/").get("Contents", [])
            found, _why = choose_archive([str(o["Key"]) for o in listed], key)
            if found is None:
                return None
            key = found
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "NoSuchBucket", "404", "AccessDenied"):
            return None
        raise
    compiled = compiled_model_in(body)
    return hashlib.sha256(compiled[1]).hexdigest() if compiled else None
