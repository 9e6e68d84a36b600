"""The CodeBuild project and its builds: create or update the project, run a build, watch it to the end.

``ensure_project`` makes the project say what the build needs (privileged mode for docker, the five
variables, the service role, the buildspec, a supported image) and shows what it changes, field by field,
before touching an existing project. ``start_build``/``watch_build`` poll BatchGetBuilds with backoff, emit
one ``build`` event per phase change, follow the log stream at the same time (``logs.LogFollower``) and end
with the build's status; a failed build raises ``BuildFailed`` (exit 5) naming the failing phase with its
last log lines. ``watch_build`` attaches to a build that is already running (``--resume``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..build_source import ITEMS
from .aws import Aws, aws_errors, error_code, error_message
from .errors import BadInputError, ExitCode, NcfError
from .events import BuildEvent, Emit, SettingEvent, StepEvent
from .logs import NCF_PREFIX, BuildValues, LogFollower, LogPosition, reader_client
from .polling import Backoff, Poller

SEED_IMAGE = "aws/codebuild/amazonlinux2-x86_64-standard:3.0"
DEFAULT_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
IMAGE_REASON = (
    f"{SEED_IMAGE} (Amazon Linux 2) was deprecated by CodeBuild on 9 May 2023: it is no longer "
    "cached on build hosts (slower provisioning) nor patched, and Amazon Linux 2 reaches end of life on "
    f"30 June 2026; {DEFAULT_IMAGE} is the current Amazon Linux 2023 standard image (CodeBuild renamed the "
    "'amazonlinux2-' aliases to 'amazonlinux-' in November 2024; the old names still resolve)"
)
DEPRECATED_IMAGES: dict[str, str] = {
    SEED_IMAGE: "deprecated 2023-05-09",
    "aws/codebuild/amazonlinux2-x86_64-standard:2.0": "deprecated 2022-06-30",
    "aws/codebuild/standard:4.0": "deprecated 2023-03-31",
    "aws/codebuild/standard:3.0": "deprecated 2022-06-30",
    "aws/codebuild/amazonlinux2-aarch64-standard:1.0": "deprecated 2023-03-31",
}
FAILED_STATES = frozenset({"FAILED", "FAULT", "TIMED_OUT", "STOPPED"})
VARIABLE_NAMES = ("AWS_DEFAULT_REGION", "AWS_ACCOUNT_ID", "IMAGE_REPO_NAME", "IMAGE_TAG", "NEO_MODEL_S3_URI")
REPO_BUILDSPEC = "buildspec.yml"


class ProjectRefused(NcfError):
    """The project differs from what the build needs and the user kept it as it is."""

    exit_code = ExitCode.BUILD_FAILED


class BuildFailed(NcfError):
    """The build ended without success; ``result`` holds its phases, values and last log lines."""

    exit_code = ExitCode.BUILD_FAILED

    def __init__(self, message: str, *, hint: str | None = None, result: BuildResult) -> None:
        super().__init__(message, hint=hint)
        self.result = result


class BuildCancelled(NcfError):
    """The user interrupted the build (stopped on CodeBuild, or left running to resume later)."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str, *, hint: str | None = None, result: BuildResult) -> None:
        super().__init__(message, hint=hint)
        self.result = result


def image_advice(image: str) -> str | None:
    """Why ``image`` should not be used (deprecated by CodeBuild), or None if it is fine."""
    if image == SEED_IMAGE:
        return IMAGE_REASON
    if image in DEPRECATED_IMAGES:
        return f"{image} is {DEPRECATED_IMAGES[image]} by CodeBuild; use {DEFAULT_IMAGE}"
    return None


# ------------------------------------------------------------------------------------------ project


@dataclass(frozen=True)
class SourceSpec:
    """Where the build's files and buildspec come from.

    ``buildspec`` is either inline YAML or a path inside the source ("" means the source's
    ``buildspec.yml``). ``NO_SOURCE`` needs an inline buildspec; ``S3`` wants ``bucket/key.zip`` (see
    ``upload_source``); GITHUB/CODECOMMIT want the repository URL.
    """

    type: str = "NO_SOURCE"
    location: str = ""
    buildspec: str = ""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.location:
            out["location"] = self.location
        if self.buildspec:
            out["buildspec"] = self.buildspec
        return out


@dataclass(frozen=True)
class ProjectSpec:
    """Everything ``ensure_project`` makes the CodeBuild project say."""

    name: str
    service_role_arn: str
    source: SourceSpec
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    image: str = DEFAULT_IMAGE
    privileged_mode: bool = True
    compute_type: str = "BUILD_GENERAL1_SMALL"
    environment_type: str = "LINUX_CONTAINER"
    description: str = "ncf-tui: the Neo-compiled NCF model in S3 -> inference image -> ECR"
    timeout_minutes: int = 60

    def validate(self) -> None:
        if not self.name.strip():
            raise BadInputError("the CodeBuild project needs a name")
        if not self.service_role_arn.startswith("arn:") or ":role/" not in self.service_role_arn:
            raise BadInputError(
                f"the CodeBuild service role must be a role ARN, got {self.service_role_arn!r}",
                hint="arn:aws:iam::<account>:role/<name>",
            )
        if self.source.type == "NO_SOURCE" and "\n" not in self.source.buildspec:
            raise BadInputError("a NO_SOURCE project needs an inline buildspec (YAML text)")
        if self.source.type not in ("NO_SOURCE", "CODEPIPELINE") and not self.source.location:
            raise BadInputError(f"a {self.source.type} source needs a location")

    def environment(self) -> dict[str, Any]:
        return {
            "type": self.environment_type,
            "image": self.image,
            "computeType": self.compute_type,
            "privilegedMode": self.privileged_mode,
            "environmentVariables": [
                {"name": k, "value": str(v), "type": "PLAINTEXT"} for k, v in self.environment_variables.items()
            ],
        }

    def request(self) -> dict[str, Any]:
        """Keyword arguments for CreateProject / UpdateProject."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source.to_api(),
            "artifacts": {"type": "NO_ARTIFACTS"},
            "environment": self.environment(),
            "serviceRole": self.service_role_arn,
            "timeoutInMinutes": self.timeout_minutes,
            # The log follower reads CloudWatch Logs: a project with them off would give it nothing. No
            # groupName: CodeBuild then writes to /aws/codebuild/<project> (CodeBuild API, CloudWatchLogsConfig).
            "logsConfig": {"cloudWatchLogs": {"status": "ENABLED"}},
        }


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.field}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class ProjectChange:
    """What ``ensure_project`` did: ``created``, ``updated`` or ``unchanged``, and the fields it changed."""

    action: str
    name: str
    arn: str
    changes: tuple[FieldChange, ...] = ()
    image_note: str | None = None

    def diff(self) -> str:
        return "\n".join(str(c) for c in self.changes)


Confirm = Callable[[list[FieldChange]], bool]


def _show(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    if "\n" in text:
        first = text.splitlines()[0]
        return f"<inline buildspec, {len(text.splitlines())} lines: {first[:40]}…>"
    return text


def project_diff(current: Mapping[str, Any], spec: ProjectSpec) -> list[FieldChange]:
    """The fields where the existing project differs from ``spec``, as ``field: old -> new``."""
    want = spec.request()
    env, want_env = current.get("environment") or {}, want["environment"]
    src, want_src = current.get("source") or {}, want["source"]
    pairs: list[tuple[str, Any, Any]] = [
        ("environment.image", env.get("image"), want_env["image"]),
        ("environment.privilegedMode", bool(env.get("privilegedMode")), want_env["privilegedMode"]),
        ("environment.computeType", env.get("computeType"), want_env["computeType"]),
        ("environment.type", env.get("type"), want_env["type"]),
        ("serviceRole", current.get("serviceRole"), want["serviceRole"]),
        ("source.type", src.get("type"), want_src["type"]),
        ("artifacts.type", (current.get("artifacts") or {}).get("type"), "NO_ARTIFACTS"),
        # CloudWatch Logs are on unless a project turns them off (CodeBuild API, LogsConfig: ENABLED default).
        ("logsConfig.cloudWatchLogs.status", _cloudwatch_logs_status(current), "ENABLED"),
        # A group of the project's own would be dropped: the IAM check and the follower use the default one.
        ("logsConfig.cloudWatchLogs.groupName", _cloudwatch_logs_group(current), None),
    ]
    if want_src.get("location") and want_src["type"] != "NO_SOURCE":
        pairs.append(("source.location", src.get("location"), want_src["location"]))
    # An empty buildspec means the source's buildspec.yml: the same as naming it.
    have_spec = str(src.get("buildspec") or "").strip() or REPO_BUILDSPEC
    want_spec = str(want_src.get("buildspec") or "").strip() or REPO_BUILDSPEC
    pairs.append(("source.buildspec", have_spec, want_spec))
    changes = [FieldChange(name, _show(old), _show(new)) for name, old, new in pairs if old != new]
    have_vars = {v["name"]: v for v in env.get("environmentVariables") or []}
    for name, value in spec.environment_variables.items():
        old = have_vars.get(name)
        if old is None:
            changes.append(FieldChange(f"environment.variables.{name}", "(none)", _show(value)))
        elif str(old.get("value")) != str(value) or str(old.get("type", "PLAINTEXT")) != "PLAINTEXT":
            old_text = _show(old.get("value"))
            if old.get("type", "PLAINTEXT") != "PLAINTEXT":
                old_text += f" ({old.get('type')})"
            changes.append(FieldChange(f"environment.variables.{name}", old_text, _show(value)))
    for name in have_vars.keys() - spec.environment_variables.keys():
        changes.append(FieldChange(f"environment.variables.{name}", _show(have_vars[name].get("value")), "(none)"))
    return changes


def _cloudwatch_logs_status(project: Mapping[str, Any]) -> str:
    logs = (project.get("logsConfig") or {}).get("cloudWatchLogs") or {}
    return str(logs.get("status") or "ENABLED")


def _cloudwatch_logs_group(project: Mapping[str, Any]) -> str | None:
    logs = (project.get("logsConfig") or {}).get("cloudWatchLogs") or {}
    return str(logs["groupName"]) if logs.get("groupName") else None


def ensure_project(aws: Aws, spec: ProjectSpec, emit: Emit, confirm: Confirm) -> ProjectChange:
    """Create the project if missing, else update it where it differs from ``spec`` once ``confirm``
    agrees to the list of changes; a refusal raises ``ProjectRefused`` (exit 5) naming what differs."""
    spec.validate()
    note = image_advice(spec.image)
    client = aws.client("codebuild")
    with aws_errors(aws.target):
        try:
            found = client.batch_get_projects(names=[spec.name]).get("projects") or []
        except Exception as exc:
            raise _codebuild_error("read the CodeBuild project", spec.name, exc) from None
    if not found:
        try:
            with aws_errors(aws.target):
                project = client.create_project(**spec.request())["project"]
        except NcfError:
            raise
        except Exception as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise _codebuild_error("create the CodeBuild project", spec.name, exc) from None
            # Another run made it between our read and our create: compare with theirs as with any project.
            with aws_errors(aws.target):
                found = client.batch_get_projects(names=[spec.name]).get("projects") or []
            if not found:
                raise _codebuild_error("create the CodeBuild project", spec.name, exc) from None
        else:
            _emit_settings(emit, spec, note, "created")
            return ProjectChange("created", spec.name, str(project.get("arn", "")), (), note)
    current = found[0]
    changes = project_diff(current, spec)
    if not changes:
        _emit_settings(emit, spec, note, "unchanged")
        return ProjectChange("unchanged", spec.name, str(current.get("arn", "")), (), note)
    if not confirm(list(changes)):
        listed = "; ".join(str(c) for c in changes)
        raise ProjectRefused(
            f"the CodeBuild project {spec.name} differs from what the build needs and was left as it is: {listed}",
            hint="accept the update (or run with --yes), or change the project by hand",
        )
    try:
        with aws_errors(aws.target):
            project = client.update_project(**spec.request())["project"]
    except NcfError:
        raise
    except Exception as exc:
        raise _codebuild_error("update the CodeBuild project", spec.name, exc) from None
    for change in changes:
        emit(SettingEvent(name=f"codebuild.{change.field}", value=change.new, ok=True, message=f"was {change.old}"))
    return ProjectChange("updated", spec.name, str(project.get("arn", current.get("arn", ""))), tuple(changes), note)


def _emit_settings(emit: Emit, spec: ProjectSpec, note: str | None, action: str) -> None:
    emit(SettingEvent(name="codebuild.project", value=spec.name, ok=True, message=action, source="codebuild"))
    emit(
        SettingEvent(
            name="codebuild.environment.image",
            value=spec.image,
            ok=note is None,
            message=note or "current CodeBuild standard image",
            source="codebuild",
        )
    )


def _codebuild_error(what: str, name: str, exc: BaseException) -> NcfError:
    code = error_code(exc)
    hint = None
    if code in ("AccessDeniedException", "AccessDenied"):
        hint = "the caller needs codebuild:BatchGetProjects, CreateProject, UpdateProject and iam:PassRole"
    elif code == "InvalidInputException":
        hint = "check the service role ARN and that CodeBuild may assume it"
    return NcfError(f"could not {what} {name}: {code or type(exc).__name__}: {error_message(exc)}", hint=hint)


def upload_source(aws: Aws, bucket: str, key: str, root: Any, items: tuple[str, ...] = ITEMS) -> SourceSpec:
    """Zip ``items`` under ``root`` (the installed build source, ``ncf_tui.build_source.source_root()``) to
    ``s3://bucket/key`` and return an S3 source that runs its ``buildspec.yml``: how a build gets the
    repository's files without a Git connection."""
    import io
    import zipfile
    from pathlib import Path

    base = Path(root)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in items:
            path = base / item
            if not path.exists():
                raise BadInputError(f"{path} is missing: the build source needs it")
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for f in files:
                if "__pycache__" in f.parts or f.suffix == ".pyc":
                    continue
                zf.write(f, f.relative_to(base).as_posix())
    with aws_errors(aws.target):
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    return SourceSpec(type="S3", location=f"{bucket}/{key}", buildspec="")


# ------------------------------------------------------------------------------------------- builds


@dataclass(frozen=True)
class PhaseInfo:
    name: str
    status: str | None
    duration: float | None
    context: str = ""


@dataclass
class BuildResult:
    build_id: str
    status: str
    phases: list[PhaseInfo]
    values: BuildValues
    log_tail: list[str]
    log_lines: int = 0
    log_position: LogPosition | None = None
    duration: float | None = None
    failed_phase: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


@dataclass(frozen=True)
class Polling:
    """How often BatchGetBuilds is called: ``fast`` after a change, stretching to ``slow`` while idle."""

    fast: float = 0.25
    slow: float = 5.0
    factor: float = 1.5
    log_join_timeout: float = 60.0
    stop_timeout: float = 60.0

    def poller(self, cancel: threading.Event | None = None) -> Poller:
        return Poller(Backoff(self.fast, self.slow, self.factor, ceiling=30.0, jitter=False), cancel)


def start_build(
    aws: Aws,
    project: str,
    emit: Emit,
    cancel: threading.Event | None = None,
    *,
    stop_on_cancel: bool = True,
    buildspec_override: str | None = None,
    environment_overrides: Mapping[str, str] | None = None,
    on_started: Callable[[str], None] | None = None,
    on_log_position: Callable[[LogPosition], None] | None = None,
    polling: Polling | None = None,
) -> BuildResult:
    """Start a build of ``project`` and watch it to the end (see ``watch_build``). ``on_started`` gets the
    build id as soon as it exists and ``on_log_position`` the log position as lines arrive, for the
    pipeline's state file: ``watch_build(build_id, log_position=...)`` resumes both."""
    kwargs: dict[str, Any] = {"projectName": project}
    if buildspec_override:
        kwargs["buildspecOverride"] = buildspec_override
    if environment_overrides:
        kwargs["environmentVariablesOverride"] = [
            {"name": k, "value": str(v), "type": "PLAINTEXT"} for k, v in environment_overrides.items()
        ]
    build = _start_queued(aws, project, kwargs, emit, cancel or threading.Event())
    build_id = str(build["id"])
    if on_started is not None:
        on_started(build_id)
    return watch_build(
        aws,
        build_id,
        emit,
        cancel,
        stop_on_cancel=stop_on_cancel,
        on_log_position=on_log_position,
        polling=polling,
        first=build,
    )


QUOTA_CODE = "AccountLimitExceededException"
"""StartBuild past the account's build quota ("Cannot have more than N builds in queue for the account")."""


def _start_queued(
    aws: Aws, project: str, kwargs: Mapping[str, Any], emit: Emit, cancel: threading.Event
) -> dict[str, Any]:
    """StartBuild; while the account's build quota is full, wait (2 s doubling to 30 s, jittered) and try
    again, saying why each time, until it starts or the run is cancelled: a full queue is never a failure."""
    # Not a retry of botocore's: AccountLimitExceededException is no throttling error to its standard mode, and
    # a full build queue may last minutes, so the start is tried again here until the quota has room.
    poller = Poller(Backoff(fast=2.0, slow=30.0, factor=2.0, ceiling=30.0), cancel)
    while True:
        try:
            with aws_errors(aws.target):
                return dict(aws.client("codebuild").start_build(**kwargs)["build"])
        except NcfError:
            raise
        except Exception as exc:
            if error_code(exc) != QUOTA_CODE:
                raise _codebuild_error("start a build of", project, exc) from None
            delay = poller.backoff.failed()
            emit(
                StepEvent(
                    name="build",
                    status="warning",
                    message=f"CodeBuild's build quota is full ({QUOTA_CODE}: {error_message(exc)}); "
                    f"the build is queued here and started again in {delay:.0f} s",
                )
            )
            if poller.sleep(delay):
                raise BuildCancelled(
                    f"cancelled while waiting for CodeBuild's build quota ({project})",
                    result=BuildResult("", "NOT_STARTED", [], BuildValues(), []),
                ) from None


def watch_build(
    aws: Aws,
    build_id: str,
    emit: Emit,
    cancel: threading.Event | None = None,
    *,
    stop_on_cancel: bool = True,
    log_position: LogPosition | None = None,
    on_log_position: Callable[[LogPosition], None] | None = None,
    polling: Polling | None = None,
    first: Mapping[str, Any] | None = None,
) -> BuildResult:
    """Watch ``build_id`` (running or finished) to its end: ``build`` events per phase change, ``log`` events
    per line, the ``NCF-TUI:`` values. Returns on success; raises ``BuildFailed`` (exit 5) otherwise, or
    ``BuildCancelled`` (exit 130) when ``cancel`` is set (stopping the build first if ``stop_on_cancel``)."""
    watch = _Watch(aws, build_id, emit, cancel or threading.Event(), stop_on_cancel, log_position, polling)
    watch.on_log_position = on_log_position
    return watch.run(first)


class _Watch:
    def __init__(
        self,
        aws: Aws,
        build_id: str,
        emit: Emit,
        cancel: threading.Event,
        stop_on_cancel: bool,
        log_position: LogPosition | None,
        polling: Polling | None,
    ) -> None:
        self.aws = aws
        self.client = aws.client("codebuild")
        self.build_id = build_id
        self.emit = emit
        self.cancel = cancel
        self.stop_on_cancel = stop_on_cancel
        self.log_position = log_position
        self.polling = polling or Polling()
        self.seen: dict[str, str | None] = {}
        self.follower: LogFollower | None = None
        self.log_stop = threading.Event()
        # The last lines of each buildspec phase, so a failure shows the output of the phase that failed.
        self.phase_lines: dict[str, deque[str]] = {}
        self.current_log_phase = "PROVISIONING"
        self.on_log_position: Callable[[LogPosition], None] | None = None
        self.last_phases: frozenset[str] = frozenset()

    def run(self, first: Mapping[str, Any] | None) -> BuildResult:
        started = time.monotonic()
        poller = self.polling.poller(self.cancel)
        # Once the stop is asked for, the build is watched to its end at the fast pace: a cancel is what that
        # wait is for, so it has its own poller that no cancel cuts short (bounded by ``stop_timeout``).
        stopping = Polling(self.polling.fast, self.polling.fast).poller()
        build = dict(first) if first else self._get()
        stopped_at: float | None = None
        try:
            while True:
                try:
                    changed = self._report(build)
                    self._maybe_follow(build)
                    if build.get("buildComplete"):
                        break
                    if self.cancel.is_set():
                        if not self.stop_on_cancel:
                            break
                        if stopped_at is None:
                            stopped_at = time.monotonic()
                            self._stop()
                        elif time.monotonic() - stopped_at > self.polling.stop_timeout:
                            break
                    (stopping if self.cancel.is_set() else poller).next_round(changed)
                    build = self._get()
                except KeyboardInterrupt:
                    # Ctrl-C and SIGTERM reach the main thread as KeyboardInterrupt, not as the cancel flag:
                    # treat the first as the cancel it is (stop the build unless told to leave it running);
                    # a second one stops waiting.
                    if self.cancel.is_set():
                        raise
                    self.cancel.set()
        finally:
            self._finish_logs(complete=bool(build.get("buildComplete")))
        result = self._result(build, time.monotonic() - started)
        if self.cancel.is_set() and (stopped_at is not None or not self.stop_on_cancel):
            what = "stopped" if stopped_at is not None else "left running"
            raise BuildCancelled(
                f"build {self.build_id} {what} on request (status {result.status})",
                hint=None if stopped_at is not None else "attach to it again with --resume",
                result=result,
            )
        if not result.succeeded:
            raise self._failure(result)
        return result

    # -- polling

    def _get(self) -> dict[str, Any]:
        """BatchGetBuilds. Throttling and transient errors are botocore's to retry (standard mode,
        ``aws.MAX_ATTEMPTS`` attempts): one that still comes through ends the watch, and ``--resume``
        attaches to the build again by its id."""
        try:
            with aws_errors(self.aws.target):
                out = self.client.batch_get_builds(ids=[self.build_id])
        except NcfError:
            raise
        except Exception as exc:
            raise _codebuild_error("read build", self.build_id, exc) from None
        builds = out.get("builds") or []
        if not builds:
            raise NcfError(f"CodeBuild has no build {self.build_id}", hint="check the build id and region")
        return dict(builds[0])

    def _stop(self) -> None:
        try:
            with aws_errors(self.aws.target):
                self.client.stop_build(id=self.build_id)
        except NcfError:
            raise
        except Exception as exc:
            # Already finished between our poll and the stop: the next poll says so.
            if error_code(exc) not in ("InvalidInputException", "ResourceNotFoundException"):
                raise _codebuild_error("stop build", self.build_id, exc) from None

    def _report(self, build: Mapping[str, Any]) -> bool:
        ran = [
            str(p.get("phaseType"))
            for p in build.get("phases") or []
            if p.get("phaseStatus") and p.get("phaseType") not in ("SUBMITTED", "QUEUED", "FINALIZING", "COMPLETED")
        ]
        self.last_phases = frozenset(ran[-1:])
        changed = False
        for phase in build.get("phases") or []:
            name = str(phase.get("phaseType"))
            status = phase.get("phaseStatus")
            if name == "COMPLETED":
                status = str(build.get("buildStatus"))
            if name in self.seen and self.seen[name] == status:
                continue
            if name not in self.seen and status is None:
                self.emit(BuildEvent(build_id=self.build_id, phase=name, status="IN_PROGRESS"))
            elif status is not None:
                # COMPLETED carries the whole build's duration.
                duration = (
                    _duration(phase) if name != "COMPLETED" else _span(build.get("startTime"), build.get("endTime"))
                )
                self.emit(BuildEvent(build_id=self.build_id, phase=name, status=str(status), duration=duration))
            self.seen[name] = None if status is None else str(status)
            changed = True
        return changed

    # -- logs

    def _maybe_follow(self, build: Mapping[str, Any]) -> None:
        if self.follower is not None:
            return
        logs = build.get("logs") or {}
        group, stream = logs.get("groupName"), logs.get("streamName")
        if not group or not stream:
            return
        self.follower = LogFollower(
            reader_client(self.aws),
            str(group),
            str(stream),
            emit=self.emit,
            on_line=lambda line: self._note_line(line.message),
            position=self.log_position,
            cancel=self.log_stop,
            on_position=self.on_log_position,
        )
        self.follower.start()

    def _final_line(self, message: str) -> bool:
        """The build's own last line: ``Phase complete:`` of its last phase (or of FINALIZING, which the
        sandbox logs), or, when the phases are unknown, the ``NCF-TUI: image-digest`` line."""
        if "Phase complete: " not in message:
            return not self.last_phases and message.startswith(NCF_PREFIX + " image-digest")
        phase = message.split("Phase complete: ", 1)[1].split(maxsplit=1)[0]
        return phase in self.last_phases or phase == "FINALIZING"

    def _note_line(self, message: str) -> None:
        marker = "Entering phase "
        if message.startswith("[Container]") and marker in message:
            self.current_log_phase = message.split(marker, 1)[1].split(maxsplit=1)[0]
        self.phase_lines.setdefault(self.current_log_phase, deque(maxlen=15)).append(message)

    def _finish_logs(self, complete: bool) -> None:
        follower = self.follower
        if follower is None:
            return
        if complete:
            follower.complete(final=self._final_line)
            if follower.join(self.polling.log_join_timeout):
                if follower.error is not None and not isinstance(follower.error, NcfError):
                    raise follower.error
                if follower.stats.final_missing:
                    self.emit(
                        StepEvent(
                            name="build",
                            status="warning",
                            message=f"the build's last log line was not readable {follower.final_wait:.0f} s "
                            "after it ended (CloudWatch Logs ingestion lag); the log shown may be incomplete",
                        )
                    )
                return
        self.log_stop.set()
        follower.join(5.0)

    # -- the end

    def _result(self, build: Mapping[str, Any], elapsed: float) -> BuildResult:
        phases = [
            PhaseInfo(
                str(p.get("phaseType")),
                p.get("phaseStatus"),
                _duration(p),
                "; ".join(
                    f"{c.get('statusCode', '')}: {c.get('message', '')}".strip(": ")
                    for c in p.get("contexts") or []
                    if c.get("statusCode") or c.get("message")
                ),
            )
            for p in build.get("phases") or []
        ]
        failed = next((p for p in phases if p.status in FAILED_STATES), None)
        follower = self.follower
        return BuildResult(
            build_id=self.build_id,
            status=str(build.get("buildStatus", "UNKNOWN")),
            phases=phases,
            values=follower.values if follower else BuildValues(),
            log_tail=list(follower.tail)[-30:] if follower else [],
            log_lines=follower.stats.lines if follower else 0,
            log_position=follower.position if follower else self.log_position,
            duration=_span(build.get("startTime"), build.get("endTime")) or elapsed,
            failed_phase=failed.name if failed else None,
        )

    def _failure(self, result: BuildResult) -> BuildFailed:
        failed = next((p for p in result.phases if p.name == result.failed_phase), None)
        where = f"in phase {failed.name}" if failed else "without a failed phase"
        reason = f": {failed.context}" if failed and failed.context else ""
        lines = list(self.phase_lines.get(failed.name, ())) if failed else []
        lines = [line for line in lines if not line.startswith("[Container]")] or lines or result.log_tail[-15:]
        shown = "\n".join(f"  | {line}" for line in lines[-15:])
        message = f"CodeBuild build {result.build_id} {result.status} {where}{reason}"
        if shown:
            message += f"\nlast log lines of {failed.name if failed else 'the build'}:\n{shown}"
        hint = "; ".join(result.values.errors) or "read the build log above; check the IAM permissions"
        return BuildFailed(message, hint=hint, result=result)


def _duration(phase: Mapping[str, Any]) -> float | None:
    span = _span(phase.get("startTime"), phase.get("endTime"))
    if span is not None:
        return span
    d = phase.get("durationInSeconds")
    return float(d) if d is not None else None


def _span(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return round((end - start).total_seconds(), 3)
    return None
