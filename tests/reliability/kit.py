"""Run the product as a user would: a standalone sandbox process and the headless CLI as another process.

The sandbox runs as `python -m ncf_tui.sandbox` so a test can read its account afterwards (logs, jobs,
builds, images), kill it mid-run, or pause it (SIGSTOP) to hold the run at an exact step.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ncf_tui.sandbox.faults import INTERNAL_USER_AGENT
from ncf_tui.sandbox.names import SandboxNames
from tests.children import default_sigint
from tests.waits import HANG

NAMES = SandboxNames()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SandboxProcess:
    """`python -m ncf_tui.sandbox` on a fixed port; `env` holds the credentials it printed."""

    scenario: str
    port: int
    neo_seconds: float = 0.5
    proc: subprocess.Popen[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    _session: Any = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = HANG) -> SandboxProcess:
        """Start it and read what it prints up to "# serving" (each line is the event; EOF if it died). The
        deadline is only checked as lines arrive, so it must be one a slow start never reaches: HANG."""
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ncf_tui.sandbox",
                "--scenario",
                self.scenario,
                "--port",
                str(self.port),
                "--neo-seconds",
                str(self.neo_seconds),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            if line.startswith("export "):
                k, _, v = line[len("export ") :].strip().partition("=")
                self.env[k] = v
            if line.startswith("# serving") or time.monotonic() > deadline:
                break
        if "AWS_SECRET_ACCESS_KEY" not in self.env:
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
        return self

    def client(self, service: str) -> Any:
        """The test's own view of the account: the sandbox's internal user agent, so the scenario's faults
        neither strike the observer (a logs-5xx read could fail the check, not the run) nor count its calls."""
        import boto3
        from botocore.config import Config

        if self._session is None:  # one session: botocore parses each service's model once
            self._session = boto3.session.Session()
        return self._session.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=NAMES.region,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            config=Config(user_agent_extra=INTERNAL_USER_AGENT),
        )

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> dict[str, int]:
        """Stop it (SIGTERM) and return the fault counts it printed on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                rest, _ = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rest, _ = self.proc.communicate(timeout=30)
            for line in rest.splitlines():
                if line.startswith("faults: "):
                    self.faults = {k: int(v) for k, v in (kv.split("=") for kv in line[len("faults: ") :].split())}
        return self.faults

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


SETTINGS = {
    "AWS_ACCOUNT_ID": NAMES.account_id,
    "IMAGE_REPO_NAME": NAMES.ecr_repo,
    "IMAGE_TAG": NAMES.image_tag,
    "project_name": NAMES.codebuild_project,
    "service_role": NAMES.codebuild_role_arn,
    "bucket": NAMES.bucket,
    "prefix": NAMES.prefix,
    "sagemaker_role": NAMES.sagemaker_role_arn,
}
"""What the sandbox account's user answers (the values `ncf_tui.context.sandbox_saved_dir` saves)."""


class Endpoint(Protocol):
    """Where a run sends its AWS calls: a SandboxProcess, or a stand-in for a run that makes none."""

    @property
    def endpoint_url(self) -> str: ...


def run_args(sb: Endpoint, tmp: Path, *extra: str, settings: dict[str, str] | None = None) -> list[str]:
    """The headless command line against a standalone sandbox, every answer given with --set."""
    sets = [a for k, v in (settings if settings is not None else SETTINGS).items() for a in ("--set", f"{k}={v}")]
    return [
        sys.executable,
        "-m",
        "ncf_tui.cli",
        "--headless",
        "--json",
        "--yes",
        "--endpoint-url",
        sb.endpoint_url,
        "--region",
        NAMES.region,
        "--output-dir",
        str(tmp / "out"),
        "--state",
        str(tmp / "state.json"),
        *sets,
        *extra,
    ]


def run_env(sb: SandboxProcess | None, tmp: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no AWS settings of the machine leak in; config and state folders are private."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NCF_TUI_"))}
    env.update(
        {
            "NCF_TUI_NO_TUI": "1",
            "NCF_TUI_STATE_DIR": str(tmp / "statedir"),
            "NCF_TUI_CONFIG_DIR": str(tmp / "config"),
            "HOME": str(tmp / "home"),
            "CI": "1",
        }
    )
    if "NCF_TUI_CACHE_DIR" in os.environ:  # the session's cache of lookups, not a setting of the run
        env["NCF_TUI_CACHE_DIR"] = os.environ["NCF_TUI_CACHE_DIR"]
    if sb is not None:
        env["AWS_ACCESS_KEY_ID"] = sb.env["AWS_ACCESS_KEY_ID"]
        env["AWS_SECRET_ACCESS_KEY"] = sb.env["AWS_SECRET_ACCESS_KEY"]
    env.update(extra)
    return env


@dataclass
class Run:
    returncode: int
    events: list[dict[str, Any]]
    stdout: str
    stderr: str

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind and all(e.get(k) == v for k, v in match.items())]

    @property
    def log_lines(self) -> list[str]:
        return [e["line"] for e in self.of("log")]


def parse(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 400) -> Run:
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    return Run(p.returncode, parse(p.stdout), p.stdout, p.stderr)


def run_until(
    args: list[str],
    env: dict[str, str],
    when: Callable[[dict[str, Any]], bool],
    act: Callable[[subprocess.Popen[str]], None],
    timeout: float = 400,
) -> Run:
    """Start the CLI, call ``act(proc)`` at the first event ``when`` accepts, then collect the rest."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=default_sigint,  # noqa: PLW1509
    )
    assert proc.stdout is not None
    lines: list[str] = []
    acted = False
    for line in _lines(proc, timeout):
        lines.append(line)
        if not acted and line.strip() and when(json.loads(line)):
            act(proc)
            acted = True
    assert acted, f"the run ended before the moment to act: {proc.stderr.read() if proc.stderr else ''}"
    out, err = proc.communicate(timeout=timeout)
    stdout = "".join(lines) + out
    return Run(proc.returncode, parse(stdout), stdout, err)


def _lines(proc: subprocess.Popen[str], timeout: float) -> Iterator[str]:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        yield line
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the run took too long")


def build_stream_lines(sb: SandboxProcess, build_id: str) -> list[str]:
    """Every message of the build's CloudWatch stream, read directly (the truth the run is compared with)."""
    logs = sb.client("logs")
    build = sb.client("codebuild").batch_get_builds(ids=[build_id])["builds"][0]
    group, stream = build["logs"]["groupName"], build["logs"]["streamName"]
    out: list[str] = []
    kw: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while True:
        page = logs.get_log_events(**kw)
        out.extend(e["message"].rstrip("\n") for e in page["events"])
        if not page["events"] or page["nextForwardToken"] == kw.get("nextToken"):
            break
        kw["nextToken"] = page["nextForwardToken"]
    return out


def run_jobs(sb: SandboxProcess, run_id: str) -> list[dict[str, Any]]:
    sm = sb.client("sagemaker")
    jobs: list[dict[str, Any]] = sm.list_compilation_jobs(NameContains=f"ncf-{run_id}-", MaxResults=100)[
        "CompilationJobSummaries"
    ]
    return jobs


def builds(sb: SandboxProcess) -> list[str]:
    return list(sb.client("codebuild").list_builds()["ids"])
