"""The SageMaker Neo compile stage: upload, one job per variant, one poller, the choice.

Every variant that passed the offline preflight (or that the user forces) is uploaded to
``s3://BUCKET/PREFIX/<run-id>/<variant>/model.tar.gz`` (skipped when the same sha256 is already there) and
compiled by its own Neo job, all created concurrently. Neo writes its own archive (``model-<target>.tar.gz``,
reported in S3ModelArtifacts) holding only the compiled model; once a job completes, the engine writes the
sidecar ``ncf-model.json`` beside it (``artifact.py``), since the server needs the id ranges Neo knows nothing of.
One poller watches them all: a single ``ListCompilationJobs`` call per round (filtered to the run), a
``DescribeCompilationJob`` only for a job whose status changed, and an interval of a tenth of the jobs'
running time (so a finish is seen within ~10% of a job's length); throttling is retried by botocore's standard
mode (``aws.MAX_ATTEMPTS``), not here. Job names are
derived from the run id and the variant, so a resumed run finds its jobs by name and never launches one twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .artifact import SIDECAR_NAME, compiled_model_in, sidecar_key
from .aws import Aws, aws_errors, error_code, error_message
from .errors import Cancelled, ExitCode, NcfError, check_cancel
from .events import Emit, VariantEvent
from .metrics import faithfulness_key, score_diff_text
from .polling import Poller
from .settings import split_s3_uri
from .variants import VARIANT_NAMES, file_sha256

NOT_KNOWN_TO_EXIST = frozenset({"404", "NoSuchKey", "NotFound", "403", "Forbidden", "AccessDenied"})
"""S3 HEAD answers for "no such object, as far as this caller may know" (403 without s3:ListBucket)."""
TERMINAL = frozenset({"COMPLETED", "FAILED", "STOPPED"})
QUEUED = "QUEUED"
"""Not created yet: the account's concurrent compilation-job quota is full (our status, not SageMaker's)."""
QUOTA_CODE = "ResourceLimitExceeded"
STOPPED = frozenset({"STOPPING", "STOPPED"})
"""A job in these states was stopped on request; a resumed run compiles its variant again."""
JOB_NAME_MAX = 63
_JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
NEO_FRAMEWORK_VERSION = "2.0"
"""The newest PyTorch version SageMaker Neo lists for inference images (sagemaker SDK, neo-pytorch.json)."""


class NoVariantCompiled(NcfError):
    exit_code = ExitCode.NO_VARIANT_COMPILED


@dataclass(frozen=True)
class Candidate:
    """What the compile stage needs to know of a variant (saved in the run state, so resume needs no torch)."""

    name: str
    archive: str
    accepted: bool
    preflight_message: str = ""
    fidelity: dict[str, Any] | None = None
    data_input_config: str = '{"input0": [1, 2]}'


@dataclass
class Job:
    """One variant's Neo job, as the run state records it."""

    variant: str
    job_name: str
    input_uri: str
    output_uri: str
    status: str = "PENDING"
    failure_reason: str | None = None
    artifact_uri: str | None = None
    sha256: str = ""
    started: float | None = None
    ended: float | None = None
    model_file: str | None = None
    """The compiled model's name inside Neo's archive (``model.pth`` or ``compiled.pt``), once read."""
    compiled_sha256: str | None = None
    """sha256 of that file: what the image must hold."""
    sidecar_uri: str | None = None
    """Where the engine wrote ``ncf-model.json`` for this job (``s3://``), beside Neo's archive."""

    @property
    def model_uri(self) -> str:
        """NEO_MODEL_S3_URI for this job, as docs/CONTRACTS.md means it: the bucket/prefix of its Neo output, no ``s3://``.

        The folder of S3ModelArtifacts when SageMaker reported it, else the S3OutputLocation asked for."""
        if self.artifact_uri:
            return strip_s3(self.artifact_uri).rsplit("/", 1)[0]
        return strip_s3(self.output_uri).rstrip("/")


@dataclass
class CompileConfig:
    bucket: str
    prefix: str
    role_arn: str
    target_device: str = "ml_c5"
    framework_version: str = NEO_FRAMEWORK_VERSION
    max_runtime_seconds: int = 900
    force: frozenset[str] = frozenset()
    poll_min: float = 0.5
    poll_max: float = 15.0


@dataclass
class CompileResult:
    jobs: dict[str, Job]
    chosen: str
    reason: str
    neo_model_s3_uri: str
    api_calls: int = 0
    skipped_uploads: list[str] = field(default_factory=list)
    framework_version: str = NEO_FRAMEWORK_VERSION
    """The FrameworkVersion sent to Neo."""
    trace_torch_version: str = ""
    """The torch that traced the chosen variant (from its sidecar)."""
    inference_image: str | None = None
    """The Neo inference image the build pulls FROM (looked up while the jobs ran; None if unknown)."""
    target_device: str = ""

    def to_state(self) -> dict[str, Any]:
        chosen = self.jobs.get(self.chosen)
        return {
            "jobs": {k: asdict(v) for k, v in self.jobs.items()},
            "chosen": self.chosen,
            "reason": self.reason,
            "neo_model_s3_uri": self.neo_model_s3_uri,
            "sidecar_uri": chosen.sidecar_uri if chosen else None,
            "framework_version": self.framework_version,
            "trace_torch_version": self.trace_torch_version,
            "inference_image": self.inference_image,
            "target_device": self.target_device,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> CompileResult:
        """The result a run state holds (``api_calls`` and ``skipped_uploads`` are this process's only)."""
        return cls(
            jobs=jobs_from_state(data.get("jobs")),
            chosen=str(data.get("chosen") or ""),
            reason=str(data.get("reason") or ""),
            neo_model_s3_uri=str(data.get("neo_model_s3_uri") or ""),
            framework_version=str(data.get("framework_version") or NEO_FRAMEWORK_VERSION),
            trace_torch_version=str(data.get("trace_torch_version") or ""),
            inference_image=str(data["inference_image"]) if data.get("inference_image") else None,
            target_device=str(data.get("target_device") or ""),
        )


def jobs_from_state(saved: object) -> dict[str, Job]:
    """The job table as the run state records it (``Job`` fields by variant): unknown keys are ignored and a
    missing name or URI reads as empty, so a hand-edited or older state still reads."""
    known = {f.name for f in fields(Job)}
    if not isinstance(saved, Mapping):
        return {}
    jobs: dict[str, Job] = {}
    for key, entry in saved.items():
        if not isinstance(entry, Mapping):
            continue
        data: dict[str, Any] = {"variant": str(key), "job_name": "", "input_uri": "", "output_uri": ""}
        data.update({f: v for f, v in entry.items() if f in known and v is not None})
        jobs[str(key)] = Job(**data)
    return jobs


def check_config(cfg: CompileConfig) -> None:
    """Refuse a malformed or hostile bucket, prefix, role or target device before any AWS call.

    These values come straight from flags or a config file and are used here, ahead of the settings step
    that validates the rest; unchecked, a bucket such as ``x;touch f`` reached botocore's own validation
    and ended the run with a traceback. ``SettingsError`` (exit 3), as for any other refused setting.
    """
    from .settings import SettingIssue, SettingsError, check_value, shown

    values = (
        ("bucket", cfg.bucket),
        ("prefix", cfg.prefix),
        ("sagemaker_role", cfg.role_arn),
        ("target_device", cfg.target_device),
    )
    issues = []
    for name, value in values:
        check = check_value(name, value)
        if not check.ok:
            issues.append(SettingIssue(name, shown(value), "compile", check.reason))
    if issues:
        raise SettingsError(issues, hint="fix them with --set NAME=VALUE or in the --config file")


def job_name(run_id: str, variant: str, attempt: int = 1) -> str:
    """``ncf-<run-id>-<variant>``: unique per run, traceable to it, within SageMaker's 63-character rule.

    A later ``attempt`` (a job compiled again after it was stopped) adds ``-r<attempt>``: SageMaker never
    reuses a job name."""
    name = f"ncf-{run_id}-{variant.replace('_', '-')}" + (f"-r{attempt}" if attempt > 1 else "")
    if len(name) > JOB_NAME_MAX or not _JOB_NAME_RE.match(name):
        raise NcfError(f"job name {name!r} breaks SageMaker's naming rule (run id too long?)")
    return name


def strip_s3(uri: str) -> str:
    return uri[5:] if uri.startswith("s3://") else uri


def rank_key(c: Candidate) -> tuple[float, float, int]:
    """Most faithful first (top-10 overlap, then max score difference); ties go to the simplest variant."""
    f = c.fidelity or {}
    order = VARIANT_NAMES.index(c.name) if c.name in VARIANT_NAMES else len(VARIANT_NAMES)
    return (*faithfulness_key(float(f.get("top10_overlap", 0.0)), float(f.get("max_abs_diff", 1.0))), order)


class _Counter:
    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def add(self, k: int = 1) -> None:
        with self.lock:
            self.n += k


def _upload(aws: Aws, c: Candidate, job: Job, calls: _Counter) -> bool:
    """Upload the archive unless the same sha256 is already at the key; True when skipped."""
    s3 = aws.client("s3")
    bucket, key = split_s3_uri(job.input_uri)
    calls.add()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == job.sha256:
            return True
    except Exception as exc:
        # 403 too: without s3:ListBucket, S3 answers HEAD of a missing key 403, not 404 (HeadObject's
        # Permissions). Not known to exist, so upload; a real denial shows on the PutObject itself.
        if error_code(exc) not in NOT_KNOWN_TO_EXIST:
            raise
    calls.add()
    s3.upload_file(c.archive, bucket, key, ExtraArgs={"Metadata": {"sha256": job.sha256}})
    return False


def _describe(aws: Aws, name: str, calls: _Counter) -> dict[str, Any] | None:
    calls.add()
    try:
        r: dict[str, Any] = aws.client("sagemaker").describe_compilation_job(CompilationJobName=name)
        return r
    except Exception as exc:
        if error_code(exc) in ("ResourceNotFound", "ValidationException") and "not" in error_message(exc).lower():
            return None
        raise


def _create(aws: Aws, c: Candidate, job: Job, cfg: CompileConfig, calls: _Counter) -> None:
    calls.add()
    aws.client("sagemaker").create_compilation_job(
        CompilationJobName=job.job_name,
        RoleArn=cfg.role_arn,
        InputConfig={
            "S3Uri": job.input_uri,
            "DataInputConfig": c.data_input_config,
            "Framework": "PYTORCH",
            "FrameworkVersion": cfg.framework_version,
        },
        OutputConfig={"S3OutputLocation": job.output_uri, "TargetDevice": cfg.target_device},
        StoppingCondition={"MaxRuntimeInSeconds": cfg.max_runtime_seconds},
        Tags=[{"Key": "ncf-tui:variant", "Value": c.name}],
    )


def compile_step(
    aws: Aws,
    candidates: Sequence[Candidate],
    cfg: CompileConfig,
    run_id: str,
    emit: Emit,
    *,
    cancel: threading.Event | None = None,
    known_jobs: dict[str, Job] | None = None,
    on_jobs: Callable[[dict[str, Job]], None] | None = None,
    stop_on_cancel: bool = True,
) -> CompileResult:
    """Compile every eligible variant with Neo and choose the most faithful one that compiled.

    ``known_jobs`` (from a saved run) are re-attached by name instead of created again; ``on_jobs`` is
    called whenever the job table changes so the caller can save it. On cancel the jobs still running are
    stopped (unless ``stop_on_cancel`` is False) and ``Cancelled`` is raised.
    """
    check_config(cfg)
    calls = _Counter()
    jobs: dict[str, Job] = dict(known_jobs or {})
    lock = threading.Lock()
    eligible = [c for c in candidates if c.accepted or c.name in cfg.force]
    for c in candidates:
        if c.name not in {e.name for e in eligible}:
            emit(
                VariantEvent(
                    name=c.name,
                    status="not-submitted",
                    failure_reason=c.preflight_message,
                    fidelity=c.fidelity,
                    message="rejected by the offline Neo preflight; not submitted (force it to try anyway)",
                )
            )
    if not eligible:
        raise NoVariantCompiled("no variant passed the Neo preflight, so none was submitted")
    skipped: list[str] = []
    stopping = threading.Event()
    """Set on cancel before the running jobs are listed for stopping: a job created after that stops itself."""

    def changed() -> None:
        if on_jobs is not None:
            with lock:
                snapshot = {k: Job(**asdict(v)) for k, v in jobs.items()}
            on_jobs(snapshot)

    def new_job(c: Candidate, attempt: int) -> Job:
        name = job_name(run_id, c.name, attempt)
        return Job(
            variant=c.name,
            job_name=name,
            input_uri=f"s3://{cfg.bucket}/{cfg.prefix}/{run_id}/{c.name}/model.tar.gz",
            output_uri=f"s3://{cfg.bucket}/{cfg.prefix}/compilation-output/{name}/",
        )

    def submit(c: Candidate) -> None:
        if stopping.is_set() or (cancel is not None and cancel.is_set()):
            return
        job = jobs.get(c.name) or new_job(c, 1)
        existing = _describe(aws, job.job_name, calls)
        attempt = 1
        while existing is not None and existing["CompilationJobStatus"] in STOPPED:
            # Stopped when an earlier run was cancelled: resuming means compiling it again, as a new job
            # (SageMaker never reuses a name), instead of ending with "no variant compiled".
            attempt += 1
            job = new_job(c, attempt)
            existing = _describe(aws, job.job_name, calls)
        name = job.job_name
        if existing is not None:
            job.status = existing["CompilationJobStatus"]
            job.failure_reason = existing.get("FailureReason") or None
            job.artifact_uri = (existing.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
            with lock:
                jobs[c.name] = job
            emit(VariantEvent(name=c.name, status=job.status, job_name=name, message="re-attached to the running job"))
            changed()
            return
        job.sha256 = file_sha256(Path(c.archive))
        if _upload(aws, c, job, calls):
            skipped.append(c.name)
        with lock:
            jobs[c.name] = job
        create(c, job)

    def create(c: Candidate, job: Job) -> bool:
        """Create the job; past the account's concurrent-job quota it waits, QUEUED, for a free slot."""
        forced = " (forced past the preflight)" if not c.accepted else ""
        if stopping.is_set():
            return False
        try:
            _create(aws, c, job, cfg, calls)
        except Exception as exc:
            if error_code(exc) != QUOTA_CODE:
                raise
            first = job.status != QUEUED
            job.status = QUEUED
            job.failure_reason = None
            if first:
                emit(
                    VariantEvent(
                        name=c.name,
                        status=QUEUED,
                        job_name=job.job_name,
                        message=f"waiting for a free Neo job slot, created when one ends: {error_message(exc)}",
                    )
                )
                changed()
            return False
        with lock:
            job.status = "STARTING"
            job.started = time.time()
            late = stopping.is_set() and stop_on_cancel
        emit(VariantEvent(name=c.name, status="STARTING", job_name=job.job_name, message=f"Neo job created{forced}"))
        if late:  # created while the run was being cancelled, after the jobs to stop were listed
            _stop_all(aws, {c.name: job}, emit, calls)
        changed()
        return True

    def create_queued() -> None:
        """Create queued jobs, oldest first, until the quota refuses again."""
        by_name = {c.name: c for c in eligible}
        for name, job in list(jobs.items()):
            if job.status == QUEUED and name in by_name and not create(by_name[name], job):
                return

    try:
        with aws_errors(aws.target), ThreadPoolExecutor(max_workers=min(8, len(eligible))) as pool:
            todo = [c for c in eligible if c.name not in jobs or jobs[c.name].status not in TERMINAL - STOPPED]
            for future in [pool.submit(submit, c) for c in todo]:
                future.result()
            _poll(aws, jobs, cfg, run_id, emit, calls, cancel, changed, create_queued)
            by_name = {c.name: c for c in candidates}
            for name, job in sorted(jobs.items()):
                if job.status == "COMPLETED" and not job.sidecar_uri and name in by_name:
                    check_cancel(cancel)
                    write_sidecar(aws, job, by_name[name], cfg, emit, calls)
                    changed()
    except (Cancelled, KeyboardInterrupt):
        stopping.set()
        if stop_on_cancel:
            # A worker whose thread start the interrupt cut short is not joined by the pool and may still be
            # adding jobs: stop a snapshot of the created ones; create() stops any it makes after this.
            with lock:
                snapshot = dict(jobs)
            _stop_all(aws, snapshot, emit, calls)
            changed()
        raise Cancelled("cancelled while compiling") from None
    by_name = {c.name: c for c in candidates}
    compiled = sorted(
        (by_name[n] for n, j in jobs.items() if j.status == "COMPLETED" and j.sidecar_uri and n in by_name),
        key=rank_key,
    )
    if not compiled:
        reasons = "; ".join(f"{n}: {j.failure_reason or j.status}" for n, j in sorted(jobs.items()))
        raise NoVariantCompiled(f"no variant compiled ({reasons})")
    best = compiled[0]
    f = best.fidelity or {}
    reason = (
        f"most faithful variant that compiled: top-10 overlap {float(f.get('top10_overlap', 0)):.0%}, "
        f"max |Δscore| {score_diff_text(float(f.get('max_abs_diff', 0)))} against the original"
    )
    if len(compiled) > 1:
        reason += f"; {len(compiled) - 1} other compiled variant(s) rank lower"
    job = jobs[best.name]
    uri = job.model_uri
    emit(VariantEvent(name=best.name, status="chosen", job_name=job.job_name, fidelity=best.fidelity, message=reason))
    return CompileResult(
        jobs=jobs,
        chosen=best.name,
        reason=reason,
        neo_model_s3_uri=uri,
        api_calls=calls.n,
        skipped_uploads=skipped,
        framework_version=cfg.framework_version,
        trace_torch_version=str(_traced_sidecar(aws, best, job).get("torch_version", "")),
    )


def _traced_sidecar(aws: Aws, c: Candidate, job: Job) -> dict[str, Any]:
    """The sidecar the engine packed with the traced variant: from the local archive, else the uploaded one."""
    data: bytes | None = None
    path = Path(c.archive)
    if path.is_file():
        data = path.read_bytes()
    else:
        bucket, key = split_s3_uri(job.input_uri)
        try:
            data = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            if error_code(exc) not in ("NoSuchKey", "404", "AccessDenied"):
                raise
    if not data:
        return {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            handle = tar.extractfile(SIDECAR_NAME)
            raw = json.loads(handle.read()) if handle else {}
    except (tarfile.TarError, KeyError, OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def write_sidecar(
    aws: Aws, job: Job, c: Candidate, cfg: CompileConfig, emit: Emit, calls: _Counter | None = None
) -> None:
    """Read the compiled model from Neo's archive and write ``ncf-model.json`` beside it (never inside it).

    The sidecar is the traced variant's (id ranges, input, variant) with what only now is known: the
    compiled file's name and sha256, the Neo job, the target, the FrameworkVersion sent to Neo and the torch
    that traced the variant. On success ``job`` records where it went; a Neo archive without ``model.pth``
    or ``compiled.pt`` leaves ``job.sidecar_uri`` unset (the variant cannot be built) and says so."""
    counter = calls or _Counter()
    if not job.artifact_uri:
        emit(
            VariantEvent(name=job.variant, status=job.status, job_name=job.job_name, message="Neo reported no artifact")
        )
        return
    s3 = aws.client("s3")
    bucket, key = split_s3_uri(job.artifact_uri)
    counter.add()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    found = compiled_model_in(body)
    if found is None:
        emit(
            VariantEvent(
                name=job.variant,
                status=job.status,
                job_name=job.job_name,
                message=f"{job.artifact_uri} holds neither model.pth nor compiled.pt: this variant cannot be built",
            )
        )
        return
    name, model = found
    job.model_file = name
    job.compiled_sha256 = hashlib.sha256(model).hexdigest()
    traced = _traced_sidecar(aws, c, job)
    sidecar = {
        **traced,
        "format": traced.get("format", "ncf-tui/1"),
        "variant": c.name,
        "compiled": True,
        "compiler": f"SageMaker Neo job {job.job_name} for {cfg.target_device}",
        "model_file": name,
        "model_sha256": job.compiled_sha256,
        "traced_model_sha256": traced.get("model_sha256"),
        "neo_job": job.job_name,
        "neo_artifact": job.artifact_uri,
        "target_device": cfg.target_device,
        "neo_framework_version": cfg.framework_version,
        "trace_torch_version": traced.get("torch_version"),
    }
    target = sidecar_key(key)
    counter.add()
    s3.put_object(
        Bucket=bucket,
        Key=target,
        Body=json.dumps(sidecar, indent=2, sort_keys=True).encode(),
        ContentType="application/json",
    )
    job.sidecar_uri = f"s3://{bucket}/{target}"


def _poll(
    aws: Aws,
    jobs: dict[str, Job],
    cfg: CompileConfig,
    run_id: str,
    emit: Emit,
    calls: _Counter,
    cancel: threading.Event | None,
    changed: Callable[[], None],
    create_queued: Callable[[], None] = lambda: None,
) -> None:
    sm = aws.client("sagemaker")
    poller = Poller(cancel=cancel)  # its pace is set below, from the jobs' running time
    names = {j.job_name: j for j in jobs.values()}
    while any(j.status not in TERMINAL for j in jobs.values()):
        check_cancel(cancel)
        if any(j.status == QUEUED for j in jobs.values()):
            create_queued()
        # Throttling is botocore's to retry (standard mode, aws.MAX_ATTEMPTS attempts, jittered backoff): an
        # error that still comes through ends the step, and --resume re-attaches to the jobs by name.
        calls.add()
        listed = sm.list_compilation_jobs(NameContains=f"ncf-{run_id}-", MaxResults=100)
        statuses = {s["CompilationJobName"]: s["CompilationJobStatus"] for s in listed["CompilationJobSummaries"]}
        moved = False
        for name, job in names.items():
            status = statuses.get(name)
            if status is None or status == job.status or job.status in TERMINAL or job.status == QUEUED:
                continue
            moved = True
            job.status = status
            if status in TERMINAL:
                job.ended = time.time()
                info = _describe(aws, name, calls) or {}
                job.failure_reason = info.get("FailureReason") or None
                job.artifact_uri = (info.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
            emit(
                VariantEvent(
                    name=job.variant,
                    status=status,
                    job_name=name,
                    failure_reason=job.failure_reason,
                    message=f"{status.lower()} after {_elapsed(job):.0f} s" if status in TERMINAL else "",
                )
            )
        if moved:
            changed()
        # Poll at a tenth of the time the jobs have run so far: a job is seen done within ~10% of its length,
        # and a long real Neo job costs a handful of calls a minute (one List call covers every job).
        running = [time.time() - j.started for j in jobs.values() if j.started and j.status not in TERMINAL]
        interval = min(cfg.poll_max, max(cfg.poll_min, 0.1 * max(running, default=0.0)))
        if any(j.status not in TERMINAL for j in jobs.values()):
            poller.sleep(interval)


def _elapsed(job: Job) -> float:
    return (job.ended or time.time()) - (job.started or job.ended or time.time())


def _stop_all(aws: Aws, jobs: dict[str, Job], emit: Emit, calls: _Counter) -> None:
    sm = aws.client("sagemaker")
    for job in jobs.values():
        if job.status in TERMINAL or job.status in (QUEUED, "PENDING"):  # never created (yet): nothing to stop
            continue
        calls.add()
        try:
            sm.stop_compilation_job(CompilationJobName=job.job_name)
        except Exception as exc:
            emit(
                VariantEvent(name=job.variant, status=job.status, job_name=job.job_name, message=f"stop failed: {exc}")
            )
            continue
        job.status = "STOPPING"
        emit(VariantEvent(name=job.variant, status="STOPPING", job_name=job.job_name, message="stop requested"))


CACHE_DIR_ENV = "NCF_TUI_CACHE_DIR"
"""Where the image lookups are cached (else platformdirs' user cache folder for ncf-tui)."""


def _image_cache_file() -> Path:
    found = os.environ.get(CACHE_DIR_ENV)
    if found:
        return Path(found) / "neo-images.json"
    import platformdirs

    return Path(platformdirs.user_cache_dir("ncf-tui")) / "neo-images.json"


def _sdk_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("sagemaker-core")
    except metadata.PackageNotFoundError:
        return None


def neo_inference_image(region: str, target_device: str = "ml_c5", version: str = NEO_FRAMEWORK_VERSION) -> str | None:
    """The Neo PyTorch inference image for a region and target, from the sagemaker SDK's image table.

    Importing the SDK costs seconds of CPU, so each answer is cached on disk under the SDK's version (a new
    SDK, with a new table, asks again); a cache that cannot be read or written is only a slower lookup."""
    sdk = _sdk_version()
    if sdk is None:
        return None
    key = f"sagemaker-core {sdk} | {region} | {target_device} | {version}"
    cache = _image_cache_file()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), str):
        return str(known[key])
    try:
        from sagemaker.core import image_uris
    except ImportError:
        return None
    try:
        uri = str(image_uris.retrieve("neo-pytorch", region=region, version=version, instance_type=target_device))
    except (ValueError, KeyError):
        return None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fresh = cache.with_name(f".{cache.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # then one rename
        fresh.write_text(json.dumps({**known, key: uri}, indent=1))
        fresh.replace(cache)
    except OSError:
        pass
    return uri
