"""CodeBuild builds that really run: the buildspec, phase by phase, with the service role's rights.

moto's builds run nothing and report SUCCEEDED with made-up phases. Here each StartBuild gets a
worker thread that provisions a temporary workspace holding a copy of the source, takes the
project's service role (so IAM decides what the build may do), and runs the buildspec's phases
with bash the way CodeBuild does: one shell per phase with `set -eo pipefail`, `finally` blocks,
the environment carried from phase to phase, post_build after a failed build, the log line
formats CodeBuild writes. Every output line goes to CloudWatch Logs as it is produced; the build
record (phases, currentPhase, buildStatus) is kept here and stays stable across calls.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..build_source import ITEMS as SOURCE_ITEMS
from . import moto_glue
from .build_failure import BuildFailure
from .cwlogs import LogSink
from .names import SandboxNames
from .scenarios import Scenario
from .toolserver import WARM_ENV, ToolServer, package_pythonpath

BUILDSPEC_PHASES = (
    ("install", "INSTALL"),
    ("pre_build", "PRE_BUILD"),
    ("build", "BUILD"),
    ("post_build", "POST_BUILD"),
)
_MARK = "\x1eNCF-SANDBOX-CMD "


class DockerChoice(Protocol):
    """Which docker a build's `docker` runs (the sandbox's `DockerSetup` is one)."""

    @property
    def mode(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def real_cli(self) -> str: ...


class BuildHost(Protocol):
    """What the runner needs from the sandbox that hosts it; `server.Sandbox` is one, and this module never
    imports it (the sandbox creates the runner, so the dependency goes one way)."""

    @property
    def names(self) -> SandboxNames: ...

    @property
    def scenario(self) -> Scenario: ...

    @property
    def quota_refusals(self) -> dict[str, int]: ...

    @property
    def docker(self) -> DockerChoice: ...

    @property
    def source_dir(self) -> Path: ...

    @property
    def endpoint_url(self) -> str: ...

    def internal_client(self, service: str, credentials: dict[str, str] | None = None) -> Any: ...


@dataclass
class _Build:
    record: dict[str, Any]
    project: dict[str, Any]
    overrides: dict[str, Any]
    account_id: str
    region: str
    stop: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    base_registry: str = ""
    base_kind: str = ""
    sink: LogSink | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp() -> str:
    return _now().strftime("%Y/%m/%d %H:%M:%S.%f")


class BuildRunner:
    """Keeps every build of the sandbox and runs each in its own daemon thread."""

    def __init__(self, sandbox: BuildHost) -> None:
        self._sb = sandbox
        self._lock = threading.Lock()
        self._builds: dict[str, _Build] = {}
        self._numbers: dict[str, int] = {}
        self._first_start: float | None = None
        self.stale_policy_builds = 0
        """Builds that started while a change to their role's policies had not reached them yet."""
        self.tools = ToolServer()
        """The warm `aws` and `docker` every build's shims call (started by the first build)."""

    @property
    def lagged_lines(self) -> int:
        """Log lines that became readable only after their build had ended (the logs-lag scenario)."""
        with self._lock:
            return sum(b.sink.late for b in self._builds.values() if b.sink is not None)

    # ---------------------------------------------------------------------------------------- API

    def start(self, account_id: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("projectName") or "")
        project = moto_glue.get_codebuild_project(account_id, region, name)
        if project is None:
            raise moto_glue.SandboxApiError(
                "ResourceNotFoundException",
                f"Project cannot be found: arn:aws:codebuild:{region}:{account_id}:project/{name}",
            )
        role = str(project.get("serviceRole") or "")
        if not moto_glue.role_exists(account_id, role):
            raise moto_glue.SandboxApiError(
                "InvalidInputException", f"CodeBuild is not authorized to perform: sts:AssumeRole on {role}"
            )
        environment = copy.deepcopy(project.get("environment") or {})
        if params.get("imageOverride"):
            environment["image"] = params["imageOverride"]
        if params.get("privilegedModeOverride") is not None:
            environment["privilegedMode"] = bool(params["privilegedModeOverride"])
        variables = {v["name"]: v for v in environment.get("environmentVariables") or []}
        for v in params.get("environmentVariablesOverride") or []:
            variables[v["name"]] = v
        environment["environmentVariables"] = list(variables.values())
        source = copy.deepcopy(project.get("source") or {})
        if params.get("buildspecOverride"):
            source["buildspec"] = params["buildspecOverride"]

        build_uuid = str(uuid.uuid4())
        build_id = f"{name}:{build_uuid}"
        # CodeBuild API, LogsConfig/CloudWatchLogsConfig: logs go to CloudWatch unless the project turns them
        # off; groupName defaults to /aws/codebuild/<project>, streamName (a prefix) to none.
        cw = ((project.get("logsConfig") or {}).get("cloudWatchLogs")) or {}
        cw_enabled = str(cw.get("status") or "ENABLED") != "DISABLED"
        group = str(cw.get("groupName") or f"/aws/codebuild/{name}")
        stream = f"{cw['streamName']}/{build_uuid}" if cw.get("streamName") else build_uuid
        now = _now()
        with self._lock:
            number = self._numbers.get(name, 0) + 1
            self._numbers[name] = number
        arn_prefix = f"arn:aws:codebuild:{region}:{account_id}"
        record: dict[str, Any] = {
            "id": build_id,
            "arn": f"{arn_prefix}:build/{build_id}",
            "buildNumber": number,
            "startTime": now,
            "currentPhase": "SUBMITTED",
            "buildStatus": "IN_PROGRESS",
            "projectName": name,
            "phases": [{"phaseType": "SUBMITTED", "startTime": now}],
            "source": source,
            "secondarySources": [],
            "secondarySourceVersions": [],
            "artifacts": {"location": ""},
            "environment": environment,
            "serviceRole": role,
            "logs": {
                "groupName": group,
                "streamName": stream,
                "deepLink": f"https://console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups",
                "cloudWatchLogsArn": f"arn:aws:logs:{region}:{account_id}:log-group:{group}:log-stream:{stream}",
                "cloudWatchLogs": {"status": "ENABLED"},
                "s3Logs": {"status": "DISABLED", "encryptionDisabled": False},
            }
            if cw_enabled
            else {  # AWS does not document the Build.logs of a build without logs: only the status is kept
                "cloudWatchLogs": {"status": "DISABLED"},
                "s3Logs": {"status": "DISABLED", "encryptionDisabled": False},
            },
            "timeoutInMinutes": int(project.get("timeoutInMinutes") or 60),
            "queuedTimeoutInMinutes": int(project.get("queuedTimeoutInMinutes") or 480),
            "buildComplete": False,
            "initiator": self._sb.names.admin_user,
            "encryptionKey": f"arn:aws:kms:{region}:{account_id}:alias/aws/s3",
        }
        build = _Build(record, project, params, account_id, region)
        build.thread = threading.Thread(target=self._run, args=(build,), name=f"build-{build_uuid}", daemon=True)
        with self._lock:
            self._check_quota()
            self._builds[build_id] = build
            snapshot = copy.deepcopy(record)
        build.thread.start()
        return snapshot

    def _check_quota(self) -> None:
        """CodeBuild refuses StartBuild with AccountLimitExceededException ("Cannot have more than N builds in
        queue for the account") once the account's builds fill its queue; held under ``self._lock``."""
        scenario = self._sb.scenario
        limit = scenario.build_queue_limit
        if limit is None:
            return
        now = time.monotonic()
        if self._first_start is None:
            self._first_start = now
        held = 1 if now - self._first_start < scenario.build_quota_held_seconds else 0  # another team's build
        active = held + sum(1 for b in self._builds.values() if not b.done.is_set())
        if active >= limit:
            self._sb.quota_refusals["build"] += 1
            raise moto_glue.SandboxApiError(
                "AccountLimitExceededException", f"Cannot have more than {limit} builds in queue for the account"
            )

    def batch_get(self, ids: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        found, missing = [], []
        with self._lock:
            for build_id in ids:
                build = self._builds.get(build_id)
                if build is None:
                    missing.append(build_id)
                else:
                    found.append(copy.deepcopy(build.record))
        return found, missing

    def stop(self, build_id: str) -> dict[str, Any]:
        if ":" not in build_id:
            raise moto_glue.SandboxApiError("InvalidInputException", "Invalid build ID provided")
        with self._lock:
            build = self._builds.get(build_id)
        if build is None:
            raise moto_glue.SandboxApiError("ResourceNotFoundException", f"Build {build_id} does not exist")
        if not build.done.is_set():
            build.stop.set()
            self._kill(build)
            build.done.wait(5.0)
        with self._lock:
            return copy.deepcopy(build.record)

    def list_ids(self, project: str | None) -> list[str]:
        with self._lock:
            ids = [b.record["id"] for b in self._builds.values() if project in (None, b.record["projectName"])]
        return list(reversed(ids))

    def shutdown(self) -> None:
        with self._lock:
            builds = list(self._builds.values())
            self._builds.clear()
            self._numbers.clear()
            self._first_start = None
            self.stale_policy_builds = 0
        for build in builds:
            build.stop.set()
            self._kill(build)
        for build in builds:
            if build.thread is not None:
                build.thread.join(5.0)

    def close(self) -> None:
        """Stop every build and the warm tools (the sandbox is closing)."""
        self.shutdown()
        self.tools.close()

    # ------------------------------------------------------------------------------------ worker

    @staticmethod
    def _kill(build: _Build) -> None:
        proc = build.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)

    def _enter(self, build: _Build, phase: str) -> None:
        now = _now()
        with self._lock:
            build.record["currentPhase"] = phase
            build.record["phases"].append({"phaseType": phase, "startTime": now})

    def _finish_phase(self, build: _Build, status: str, code: str = "", message: str = "") -> None:
        now = _now()
        with self._lock:
            phase = build.record["phases"][-1]
            phase["phaseStatus"] = status
            phase["endTime"] = now
            phase["durationInSeconds"] = int((now - phase["startTime"]).total_seconds())
            if phase["phaseType"] not in ("SUBMITTED", "QUEUED") or code:
                phase["contexts"] = [{"statusCode": code, "message": message}]

    def _run(self, build: _Build) -> None:
        workspace = Path(tempfile.mkdtemp(prefix="ncf-codebuild-"))
        sink: LogSink | None = None
        status = "SUCCEEDED"
        try:
            self._finish_phase(build, "SUCCEEDED")
            self._enter(build, "QUEUED")
            self._finish_phase(build, "SUCCEEDED")
            self._enter(build, "PROVISIONING")
            try:
                creds = moto_glue.assume_role_credentials(
                    build.account_id,
                    build.region,
                    build.record["serviceRole"],
                    # CodeBuild's session is named after the build (AWSCodeBuild-<build uuid>, aws/aws-cdk#12179)
                    f"AWSCodeBuild-{build.record['id'].split(':', 1)[-1]}",
                )
                stale = moto_glue.policies_before_recent_change(
                    build.account_id, build.record["serviceRole"], self._sb.scenario.iam_propagation_seconds
                )
                if stale is not None:
                    # IAM is eventually consistent: a build that starts right after a change to its role's
                    # policies may still be judged by the policies from before it.
                    moto_glue.mark_stale_session(creds["aws_access_key_id"], stale)
                    with self._lock:
                        self.stale_policy_builds += 1
                logs = self._sb.internal_client("logs", creds)
                record_logs = build.record["logs"]
                if "groupName" in record_logs:
                    sink = LogSink(
                        logs,
                        record_logs["groupName"],
                        record_logs["streamName"],
                        role=build.record["serviceRole"],
                        build_arn=build.record["arn"],
                        lag=self._sb.scenario.logs_lag_seconds,
                    )
                    build.sink = sink
                else:
                    sink = _NoLogs()
                sink.open()
            except BuildFailure as failure:
                self._finish_phase(build, "FAILED", failure.status_code, failure.message)
                status = "FAILED"
                return
            sink.line(f"[Container] {_stamp()} Running on the ncf-tui sandbox (a local CodeBuild)")
            self._provision_docker(build, sink)
            self._finish_phase(build, "SUCCEEDED")
            status = self._run_phases(build, creds, sink, workspace)
        except Exception as exc:  # a sandbox bug must end the build, never leave it IN_PROGRESS
            status = "FAULT"
            if sink is not None:
                sink.line(f"[Container] {_stamp()} ncf-tui sandbox internal error: {exc}")
            self._finish_phase(build, "FAILED", "SANDBOX_ERROR", str(exc))
        finally:
            if build.stop.is_set():
                status = "STOPPED"
            self._enter(build, "FINALIZING")
            if sink is not None:
                sink.line(f"[Container] {_stamp()} Phase complete: FINALIZING State: SUCCEEDED")
                sink.close()
            self._finish_phase(build, "SUCCEEDED")
            now = _now()
            with self._lock:
                build.record["phases"].append({"phaseType": "COMPLETED", "startTime": now})
                build.record["currentPhase"] = "COMPLETED"
                build.record["buildStatus"] = status
                build.record["endTime"] = now
                build.record["buildComplete"] = True
            shutil.rmtree(workspace, ignore_errors=True)
            build.done.set()

    def _provision_docker(self, build: _Build, sink: LogSink) -> None:
        """Say which docker builds this image; with a real engine, make sure the base image is there."""
        docker = self._sb.docker
        if docker.mode != "real":
            sink.line(
                f"[Container] {_stamp()} Docker: no Docker Engine ({docker.reason}); "
                "the sandbox's fallback builder stands in for docker"
            )
            return
        sink.line(f"[Container] {_stamp()} Docker: the real Docker Engine builds this image ({docker.reason})")
        variables = {
            v["name"]: str(v.get("value", "")) for v in build.record["environment"].get("environmentVariables") or []
        }
        base = variables.get("NEO_BASE_IMAGE", "")
        if not base:
            return
        from .docker_engine import ensure_stand_in_base

        try:
            kind = ensure_stand_in_base(base, lambda text: sink.line(f"[Container] {_stamp()} {text}"))
        except Exception as exc:  # the build's own docker build then fails on the missing base, as it would
            sink.line(f"[Container] {_stamp()} sandbox: could not make the stand-in for {base}: {exc}")
            return
        build.base_registry = base.split("/", 1)[0] if "/" in base else ""
        build.base_kind = kind

    def _run_phases(self, build: _Build, creds: dict[str, str], sink: LogSink, workspace: Path) -> str:
        src = workspace / "src"
        self._enter(build, "DOWNLOAD_SOURCE")
        try:
            spec = self._download_source(build, src, sink)
        except BuildFailure as failure:
            self._log_phase_end(sink, "DOWNLOAD_SOURCE", "FAILED", failure)
            self._finish_phase(build, "FAILED", failure.status_code, failure.message)
            return "FAILED"
        self._log_phase_end(sink, "DOWNLOAD_SOURCE", "SUCCEEDED")
        self._finish_phase(build, "SUCCEEDED")

        env = self._environment(build, creds, spec, workspace, src)
        state = workspace / "shell-state"
        succeeding = True
        for key, phase_type in BUILDSPEC_PHASES:
            if build.stop.is_set():
                return "STOPPED"
            # CodeBuild: a failed install or pre_build skips to FINALIZING; post_build runs after a failed build.
            if not succeeding and phase_type != "POST_BUILD":
                continue
            self._enter(build, phase_type)
            sink.line(f"[Container] {_stamp()} Entering phase {phase_type}")
            body = (spec.get("phases") or {}).get(key) or {}
            env["NCF_SANDBOX_SUCCEEDING"] = env["CODEBUILD_BUILD_SUCCEEDING"] = "1" if succeeding else "0"
            outcome = self._run_phase(build, body, env, state, src, sink)
            if build.stop.is_set():
                self._finish_phase(build, "STOPPED", "BUILD_STOPPED", "Build was stopped")
                sink.line(f"[Container] {_stamp()} Phase complete: {phase_type} State: STOPPED")
                return "STOPPED"
            if outcome is None:
                self._log_phase_end(sink, phase_type, "SUCCEEDED")
                self._finish_phase(build, "SUCCEEDED")
                continue
            self._log_phase_end(sink, phase_type, "FAILED", outcome)
            self._finish_phase(build, "FAILED", outcome.status_code, outcome.message)
            # Buildspec reference: "on-failure: ABORT | CONTINUE" per phase (ABORT by default).
            if str(body.get("on-failure", "ABORT")).upper() != "CONTINUE":
                succeeding = False
            if phase_type in ("INSTALL", "PRE_BUILD") and not succeeding:
                return "FAILED"
        # CodeBuild User Guide, "Build phase transitions": "The UPLOAD_ARTIFACTS phase is always attempted, even
        # if the BUILD phase fails" (this project has no artifacts, so it succeeds at once).
        self._enter(build, "UPLOAD_ARTIFACTS")
        self._log_phase_end(sink, "UPLOAD_ARTIFACTS", "SUCCEEDED")
        self._finish_phase(build, "SUCCEEDED")
        return "SUCCEEDED" if succeeding else "FAILED"

    @staticmethod
    def _log_phase_end(sink: LogSink, phase: str, state: str, failure: BuildFailure | None = None) -> None:
        sink.line(f"[Container] {_stamp()} Phase complete: {phase} State: {state}")
        code, message = (failure.status_code, failure.message) if failure else ("", "")
        sink.line(f"[Container] {_stamp()} Phase context status code: {code} Message: {message}")

    def _download_source(self, build: _Build, src: Path, sink: LogSink) -> dict[str, Any]:
        import yaml

        src.mkdir(parents=True)
        source_dir = self._sb.source_dir
        for item in SOURCE_ITEMS:
            origin = source_dir / item
            if origin.is_dir():
                shutil.copytree(origin, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif origin.is_file():
                shutil.copy2(origin, src / item)
        sink.line(f"[Container] {_stamp()} CODEBUILD_SRC_DIR={src}")
        declared = str(build.record["source"].get("buildspec") or "").strip()
        if "\n" in declared or declared.startswith(("version", "{")):
            text, where = declared, "the project's inline buildspec"
        else:
            path = src / (declared or "buildspec.yml")
            if not path.is_file():
                raise BuildFailure("YAML_FILE_ERROR", f"stat {path}: no such file or directory")
            text, where = path.read_text("utf-8"), str(path)
        sink.line(f"[Container] {_stamp()} YAML location is {where}")
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BuildFailure("YAML_FILE_ERROR", f"Invalid buildspec: {exc}") from None
        if not isinstance(spec, dict) or not isinstance(spec.get("phases"), dict):
            raise BuildFailure("YAML_FILE_ERROR", "Invalid buildspec: it has no phases")
        if str(spec.get("version")) not in ("0.1", "0.2"):
            raise BuildFailure("YAML_FILE_ERROR", f"Unknown runtime version: {spec.get('version')!r}")
        found = [k for k, _ in BUILDSPEC_PHASES if spec["phases"].get(k)]
        sink.line(f"[Container] {_stamp()} Phases found in YAML: {len(found)}")
        for key in found:
            commands = spec["phases"][key].get("commands") or []
            sink.line(f"[Container] {_stamp()}  {key.upper()}: {len(commands)} commands")
        return spec

    def _environment(
        self, build: _Build, creds: dict[str, str], spec: dict[str, Any], workspace: Path, src: Path
    ) -> dict[str, str]:
        shims = workspace / "bin"
        shims.mkdir()
        _write_shims(shims, self._sb.docker.real_cli if self._sb.docker.mode == "real" else None, self.tools)
        home = workspace / "home"
        home.mkdir()
        docker_state = workspace / "docker-state"
        docker_state.mkdir()
        environment = build.record["environment"]
        env: dict[str, str] = {
            "PATH": f"{shims}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(workspace),
            "CODEBUILD_BUILD_ID": build.record["id"],
            "CODEBUILD_BUILD_ARN": build.record["arn"],
            "CODEBUILD_BUILD_NUMBER": str(build.record["buildNumber"]),
            "CODEBUILD_BUILD_IMAGE": str(environment.get("image", "")),
            "CODEBUILD_INITIATOR": build.record["initiator"],
            "CODEBUILD_LOG_PATH": build.record["logs"].get("streamName", build.record["id"].split(":", 1)[-1]),
            "CODEBUILD_SRC_DIR": str(src),
            "CODEBUILD_START_TIME": str(int(build.record["startTime"].timestamp() * 1000)),
            "CODEBUILD_BUILD_SUCCEEDING": "1",
        }
        for name, value in ((spec.get("env") or {}).get("variables") or {}).items():
            env[str(name)] = str(value)
        for variable in environment.get("environmentVariables") or []:
            env[str(variable["name"])] = str(variable.get("value", ""))
        env.update(
            {
                "AWS_ENDPOINT_URL": self._sb.endpoint_url,
                "AWS_DEFAULT_REGION": build.region,
                "AWS_REGION": build.region,
                "AWS_ACCESS_KEY_ID": creds["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
                "AWS_SESSION_TOKEN": creds["aws_session_token"],
                "AWS_CONFIG_FILE": str(home / ".aws-config-none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws-credentials-none"),
                "NCF_SANDBOX_PRIVILEGED": "1" if environment.get("privilegedMode") else "0",
                "NCF_SANDBOX_DOCKER_STATE": str(docker_state),
                "NCF_SANDBOX_BASE_REGISTRY": build.base_registry,
            }
        )
        if self._sb.docker.mode == "real":
            env["DOCKER_CONFIG"] = str(home / ".docker")  # logins stay in this build's workspace
            if os.environ.get("DOCKER_HOST"):
                env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        return env

    def _run_phase(
        self,
        build: _Build,
        body: dict[str, Any],
        env: dict[str, str],
        state: Path,
        src: Path,
        sink: LogSink,
    ) -> BuildFailure | None:
        commands = [str(c) for c in body.get("commands") or []]
        finally_commands = [str(c) for c in body.get("finally") or []]
        failure = self._run_commands(build, commands, env, state, src, sink)
        if finally_commands and not build.stop.is_set():
            late = self._run_commands(build, finally_commands, env, state, src, sink)
            failure = failure or late
        return failure

    def _run_commands(
        self, build: _Build, commands: list[str], env: dict[str, str], state: Path, src: Path, sink: LogSink
    ) -> BuildFailure | None:
        if not commands:
            return None
        script = _phase_script(commands, state, src)
        proc = subprocess.Popen(
            ["bash", "-c", script],
            cwd=src,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        build.proc = proc
        if build.stop.is_set():
            self._kill(build)
        current = -1
        assert proc.stdout is not None
        for raw in proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            if text.startswith(_MARK):
                current = int(text[len(_MARK) :])
                sink.line(f"[Container] {_stamp()} Running command {commands[current]}")
            else:
                sink.line(text)
        code = proc.wait()
        build.proc = None
        if code == 0:
            return None
        failed = commands[current] if current >= 0 else commands[0]
        reason = f"exit status {code}" if code > 0 else f"signal: {signal.Signals(-code).name}"
        sink.line(f"[Container] {_stamp()} Command did not exit successfully {failed} {reason}")
        return BuildFailure("COMMAND_EXECUTION_ERROR", f"Error while executing command: {failed}. Reason: {reason}")


class _NoLogs(LogSink):
    """A build whose project turned CloudWatch Logs off writes its lines nowhere."""

    def __init__(self) -> None:  # no client, no stream
        pass

    def open(self) -> None:
        pass

    def line(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _phase_script(commands: list[str], state: Path, src: Path) -> str:
    """A bash script that runs one phase's commands like CodeBuild, carrying env and cwd across phases."""
    env_file, cwd_file = state.with_suffix(".env"), state.with_suffix(".cwd")
    lines = [
        "set -eo pipefail",
        f"if [ -f {shlex.quote(str(env_file))} ]; then source {shlex.quote(str(env_file))}; fi",
        # The saved environment carries the previous phase's value; the runner's is the truth.
        'export CODEBUILD_BUILD_SUCCEEDING="$NCF_SANDBOX_SUCCEEDING"; unset NCF_SANDBOX_SUCCEEDING',
        f'if [ -f {shlex.quote(str(cwd_file))} ]; then cd "$(cat {shlex.quote(str(cwd_file))})"; '
        f"else cd {shlex.quote(str(src))}; fi",
        f"__ncf_save() {{ export -p > {shlex.quote(str(env_file))}; pwd > {shlex.quote(str(cwd_file))}; }}",
        "trap __ncf_save EXIT",
    ]
    for i, command in enumerate(commands):
        lines.append(f"printf '%s%d\\n' {shlex.quote(_MARK)} {i}")
        lines.append(command)
    return "\n".join(lines) + "\n"


# With a real engine: the real docker CLI, except a login to AWS's Neo base registry, which the sandbox
# cannot reach (its image is the local stand-in), and no daemon at all without privileged mode.
_REAL_DOCKER = """#!/bin/sh
if [ "${{NCF_SANDBOX_PRIVILEGED:-0}}" != "1" ]; then
  echo {no_daemon} >&2
  exit 1
fi
if [ "$1" = login ] && [ -n "${{NCF_SANDBOX_BASE_REGISTRY:-}}" ]; then
  for server; do :; done
  server="${{server#https://}}"
  if [ "$server" = "$NCF_SANDBOX_BASE_REGISTRY" ]; then
    cat > /dev/null
    echo "sandbox: $server is AWS's registry, which the sandbox does not reach;" \
      "the base image is the stand-in in the local image store, so no login is made" >&2
    echo "Login Succeeded"
    exit 0
  fi
fi
exec {real} "$@"
"""


def _write_shims(bin_dir: Path, real_docker: str | None = None, tools: ToolServer | None = None) -> None:
    """`docker` (the real CLI, or the sandbox's builder) and `aws` (the venv's awscli) first on PATH; the
    builder and awscli run warm through `tools` unless NCF_SANDBOX_WARM_TOOLS=0."""
    from .docker_builder import NO_DAEMON

    python = sys.executable
    pythonpath = package_pythonpath()
    warm = tools if os.environ.get(WARM_ENV, "1") != "0" else None
    docker = bin_dir / "docker"
    if real_docker:
        docker.write_text(_REAL_DOCKER.format(no_daemon=shlex.quote(NO_DAEMON), real=shlex.quote(real_docker)))
    elif warm is not None:
        warm.write_shim(docker, "docker", [python, "-m", "ncf_tui.sandbox.docker_builder"], {"PYTHONPATH": pythonpath})
    else:
        docker.write_text(
            "#!/bin/sh\n"
            f"PYTHONPATH={shlex.quote(pythonpath)} "
            f'exec {shlex.quote(python)} -m ncf_tui.sandbox.docker_builder "$@"\n'
        )
    aws_cli = str(Path(python).with_name("aws"))
    aws = bin_dir / "aws"
    if warm is not None:
        warm.write_shim(aws, "aws", [python, aws_cli])
    else:
        aws.write_text(f'#!/bin/sh\nexec {shlex.quote(python)} {shlex.quote(aws_cli)} "$@"\n')
    shims = [docker, aws]
    for tool in ("python3", "python"):
        shim = bin_dir / tool
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(python)} "$@"\n')
        shims.append(shim)
    for shim in shims:
        shim.chmod(0o755)
