"""Ctrl-C (SIGINT) and SIGTERM at each stage of a real headless run against a standalone sandbox process.

To interrupt *during* a stage rather than somewhere near it, the test freezes the sandbox (SIGSTOP) at the
stage's first event, so the run is held inside that stage's AWS call, sends the signal, then lets the sandbox
go on (SIGCONT). Each interrupted run must save its state, stop what it started (or leave it running with
``--leave-running``) and exit 130; ``--resume`` must then finish without a duplicate job or build.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.engine.iam import POLICY_NAME

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


def interrupt_inside(sb: SandboxProcess, sig: signal.Signals) -> Any:
    """Freeze the sandbox, signal the run while it waits on it, then let the sandbox answer."""

    def act(proc: subprocess.Popen[str]) -> None:
        sb.pause()
        time.sleep(0.2)
        proc.send_signal(sig)
        time.sleep(0.5)
        sb.resume()

    return act


def state(tmp: Path) -> dict[str, Any]:
    saved: dict[str, Any] = json.loads((tmp / "state.json").read_text())
    return saved


def assert_interrupted(run: Run, tmp: Path) -> dict[str, Any]:
    assert run.returncode == 130, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert run.events[-1]["event"] == "done" and run.events[-1]["exit_code"] == 130
    assert "--resume" in run.events[-1]["message"]
    saved = state(tmp)
    assert saved["finished"] is False
    assert not list(tmp.glob(".state.json.*.tmp")), "the state write left no temporary file"
    return saved


def build_status(sb: SandboxProcess, build_id: str, wait: float = 0) -> str:
    deadline = time.monotonic() + wait
    while True:
        b = sb.client("codebuild").batch_get_builds(ids=[build_id])["builds"][0]
        if b["buildComplete"] or time.monotonic() > deadline:
            return str(b["buildStatus"])
        time.sleep(0.5)


def test_interrupted_at_upload_iam_fix_and_build_then_resumed_once_each(tmp_path: Path) -> None:
    with SandboxProcess("missing-permissions", free_port(), neo_seconds=1) as sb:
        args, env = run_args(sb, tmp_path), run_env(sb, tmp_path)

        # 1. SIGINT while the variant archives are being uploaded: the jobs it got to start are stopped.
        first = run_until(args, env, lambda e: e.get("name") == "compile" and e["status"] == "started",
                          interrupt_inside(sb, signal.SIGINT))  # fmt: skip
        saved = assert_interrupted(first, tmp_path)
        assert saved["steps"].get("compile", {}).get("status") != "done"  # no entry if no job was made yet
        run_id = saved["run_id"]
        assert {j["CompilationJobStatus"] for j in run_jobs(sb, run_id)} <= {"STOPPING", "STOPPED"}

        # 2. SIGTERM inside the IAM check, after the denied pairs were found, while the fix is applied.
        second = run_until([*args, "--resume"], env,
                           lambda e: e["event"] == "permission" and e["decision"] != "allowed",
                           interrupt_inside(sb, signal.SIGTERM))  # fmt: skip
        saved = assert_interrupted(second, tmp_path)
        assert saved["steps"]["compile"]["status"] == "done"
        assert saved["steps"].get("permissions", {}).get("status") != "done"
        assert builds(sb) == []

        # 3. SIGINT during the build with --leave-running: the build goes on without us.
        third = run_until([*args, "--resume", "--leave-running"], env,
                          lambda e: e["event"] == "build" and e["phase"] == "PRE_BUILD",
                          lambda proc: proc.send_signal(signal.SIGINT))  # fmt: skip
        saved = assert_interrupted(third, tmp_path)
        (build_id,) = builds(sb)
        assert saved["steps"]["build"]["build_id"] == build_id
        assert build_status(sb, build_id, wait=120) == "SUCCEEDED", "left running, not stopped"

        # 4. Resume: re-attaches to that build; every step ran once.
        last = run_cli([*args, "--resume"], env)
        assert last.returncode == 0, last.stderr[-3000:]
        assert builds(sb) == [build_id], "no second build"
        jobs = run_jobs(sb, run_id)
        live = [j["CompilationJobName"] for j in jobs if j["CompilationJobStatus"] not in ("STOPPING", "STOPPED")]
        assert len(live) == 4 and len(jobs) <= 8, "one live Neo job per variant; the stopped ones replaced once"
        assert third.log_lines + last.log_lines == build_stream_lines(sb, build_id), "no log line lost or repeated"
        document = sb.client("iam").get_role_policy(RoleName=NAMES.codebuild_role_name, PolicyName=POLICY_NAME)
        sids = [st["Sid"] for st in document["PolicyDocument"]["Statement"]]
        assert sorted(sids) == sorted(set(sids)) and sids, "the IAM fix was attached once, not twice"
        (image,) = last.of("image")
        described = sb.client("ecr").describe_images(repositoryName=NAMES.ecr_repo)["imageDetails"]
        assert [d["imageDigest"] for d in described] == [image["digest"]]


def test_sigterm_during_build_stops_it(tmp_path: Path) -> None:
    """Without engine/codebuild catching the interrupt, SIGTERM left the build running despite the default."""
    with SandboxProcess("healthy", free_port()) as sb:
        args, env = run_args(sb, tmp_path), run_env(sb, tmp_path)
        run = run_until(args, env, lambda e: e["event"] == "build" and e["phase"] == "PRE_BUILD",
                        lambda proc: proc.send_signal(signal.SIGTERM))  # fmt: skip
        saved = assert_interrupted(run, tmp_path)
        (build_id,) = builds(sb)
        assert saved["steps"]["build"]["build_id"] == build_id
        assert build_status(sb, build_id, wait=60) == "STOPPED"
        assert run.of("build")[-1]["status"] == "STOPPED"
        # Resume must build again (the stopped build cannot be watched to success) and only once.
        again = run_cli([*args, "--resume"], env)
        assert again.returncode == 0, again.stderr[-2000:]
        assert len(builds(sb)) == 2 and again.of("image")
