"""Faults: the full headless run against a standalone sandbox process under each fault scenario.

Nothing lost, nothing duplicated: the build's log lines the run emitted are compared with the CloudWatch
stream itself, and the account is counted afterwards (one build, one Neo job per variant, one image).
A sandbox killed mid-run is a clear one-line error with exit 3, and ``--resume`` against a fresh sandbox on
the same port finishes the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ncf_tui.engine.steps import DEFAULT_STEPS

from .kit import (
    NAMES,
    Run,
    SandboxProcess,
    build_stream_lines,
    builds,
    free_port,
    run_args,
    run_cli,
    run_env,
    run_jobs,
    run_until,
)

pytestmark = pytest.mark.slow

STEPS = list(DEFAULT_STEPS)
"""What a plain run runs, as the engine's registry says (a headless run without --until ends there)."""


FEW_ATTEMPTS = {"AWS_MAX_ATTEMPTS": "2"}
"""For a run whose sandbox is killed: the user's setting that botocore gives up on a dead endpoint after two
attempts (the default ten back off for up to a minute first); the error and the resume are what is tested."""


def run_id_of(run: Run) -> str:
    return str(run.events[-1]["message"].split()[1])


@dataclass(frozen=True)
class Account:
    """What the account holds after a run, read while its sandbox still serves (so a run shared by several
    tests can be checked after the sandbox has stopped and printed its fault counts)."""

    builds: list[str]
    streams: dict[str, list[str]]
    jobs: int
    """Neo jobs named after the run's id."""
    digests: list[str]
    """Every image in the repository."""

    @classmethod
    def of(cls, sb: SandboxProcess, run: Run) -> Account:
        ids = builds(sb)
        described = sb.client("ecr").describe_images(repositoryName=NAMES.ecr_repo)["imageDetails"]
        return cls(
            builds=ids,
            streams={b: build_stream_lines(sb, b) for b in ids},
            jobs=len(run_jobs(sb, run_id_of(run))) if run.returncode == 0 else 0,
            digests=[d["imageDigest"] for d in described],
        )


def assert_complete_and_exact(run: Run, sb: SandboxProcess | Account, steps: list[str] = STEPS) -> None:
    """The run finished, and every count in the account matches one run: nothing lost, nothing twice."""
    assert run.returncode == 0, run.stderr[-3000:]
    account = sb if isinstance(sb, Account) else Account.of(sb, run)
    assert [e["name"] for e in run.of("step", status="done")] == steps, "each step done exactly once"
    (build_id,) = {e["build_id"] for e in run.of("build")}
    assert account.builds == [build_id], "exactly one build"
    stream = account.streams[build_id]
    assert len(stream) > 50
    assert run.log_lines == stream, "the run's log lines are the stream's, in order, none lost or repeated"
    assert account.jobs == 4, "one Neo job per accepted variant"
    (image,) = run.of("image")
    assert account.digests == [image["digest"]]
    assert "Traceback" not in run.stderr


def test_full_run_under_throttling_and_dropped_log_reads_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Throttling strikes every call (botocore retries it), flaky-logs drops the log follower's connection
    (it resumes from its token): one run under both proves each, and that the two retries compose."""
    with SandboxProcess("throttling+flaky-logs", free_port()) as sb:
        run = run_cli(run_args(sb, tmp_path), run_env(sb, tmp_path))
        assert_complete_and_exact(run, sb)
    assert sb.faults["throttled"] > 0 and sb.faults["dropped"] > 0, f"both faults really struck: {sb.faults}"


def test_sandbox_killed_mid_compile_is_one_clear_line_and_resume_finishes(tmp_path: Path) -> None:
    port = free_port()
    sb = SandboxProcess("healthy", port, neo_seconds=3).start()
    try:
        run = run_until(
            run_args(sb, tmp_path),
            run_env(sb, tmp_path, **FEW_ATTEMPTS),
            lambda e: e["event"] == "variant" and e["status"] == "STARTING",
            lambda _proc: sb.kill(),
        )
    finally:
        sb.kill()
    assert run.returncode == 3
    assert "Traceback" not in run.stderr
    first, *rest = run.stderr.strip().splitlines()
    assert first.startswith(f"ncf-tui: error: cannot reach http://127.0.0.1:{port}"), run.stderr
    assert [line.strip()[:6] for line in rest] == ["hint: "] and "--resume" in rest[0]
    assert run.events[-1]["event"] == "done" and run.events[-1]["exit_code"] == 3
    # A fresh sandbox on the same port (new credentials, an empty account): the run continues from its state.
    with SandboxProcess("healthy", port) as fresh:
        again = run_cli(run_args(fresh, tmp_path, "--resume"), run_env(fresh, tmp_path))
        assert [e["name"] for e in again.of("step", status="skipped")] == ["account", "checkpoint", "variants"]
        assert_complete_and_exact(again, fresh, STEPS[3:])  # after account, checkpoint, variants


def test_sandbox_killed_mid_build_is_clear_and_resume_starts_no_second_build(tmp_path: Path) -> None:
    """The fresh account has neither the build nor the compiled model: resume says so and builds nothing."""
    port = free_port()
    sb = SandboxProcess("healthy", port).start()
    try:
        run = run_until(
            run_args(sb, tmp_path),
            run_env(sb, tmp_path, **FEW_ATTEMPTS),
            lambda e: e["event"] == "build" and e["phase"] == "PRE_BUILD",
            lambda _proc: sb.kill(),
        )
    finally:
        sb.kill()
    assert run.returncode == 3 and "Traceback" not in run.stderr
    assert run.stderr.startswith("ncf-tui: error: cannot reach")
    with SandboxProcess("healthy", port) as fresh:
        again = run_cli(run_args(fresh, tmp_path, "--resume"), run_env(fresh, tmp_path))
        assert again.returncode == 2 and "Traceback" not in again.stderr
        assert again.stderr.startswith("ncf-tui: error: CodeBuild has no build ncf-recommender-build:")
        assert builds(fresh) == [], "no second build was started behind the user's back"
