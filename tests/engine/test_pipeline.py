"""The pipeline as a resumable state machine, and the headless CLI's contract, against the sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.engine.errors import BadInputError, Cancelled
from ncf_tui.engine.pipeline import Pipeline, RunOptions
from ncf_tui.engine.state import CorruptState, RunState, StateStore, latest_run
from ncf_tui.sandbox.server import Sandbox

from .aws_kit import Recorder, aws_for, compile_config_for, run_jobs


def _pipeline(sandbox: Sandbox, tmp_path: Path, rec: Recorder, **kw: Any) -> Pipeline:
    from ncf_tui.engine.sample import sample_checkpoint_path

    options = RunOptions(checkpoint=sample_checkpoint_path(), output_dir=tmp_path / "out", mode="sandbox")
    return Pipeline.new(
        options,
        rec,
        state_dir=tmp_path / "state",
        aws=lambda: aws_for(sandbox),
        compile_config=lambda aws: compile_config_for(sandbox),
        **kw,
    )


def test_run_saves_each_step_and_resume_redoes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    rec = Recorder()
    p = _pipeline(sandbox, tmp_path, rec)
    outcome = p.run("compile")
    assert outcome.chosen == "full_manual_norm"
    state = json.loads(p.store.path.read_text())
    assert {k: v["status"] for k, v in state["steps"].items()} == {
        s: "done" for s in ("account", "checkpoint", "variants", "compile")
    }
    assert state["steps"]["compile"]["neo_model_s3_uri"] == outcome.neo_model_s3_uri
    assert not list(p.store.path.parent.glob("*.tmp")), "atomic writes leave no temporary file"
    # Resume with nothing left to do through compile: every step is skipped, no job is created.
    rec2 = Recorder()
    again = Pipeline.resume(
        p.store,
        RunOptions(checkpoint=Path("ignored"), mode="sandbox"),
        rec2,
        aws=lambda: aws_for(sandbox),
        compile_config=lambda aws: compile_config_for(sandbox),
    )
    assert again.run("compile").neo_model_s3_uri == outcome.neo_model_s3_uri
    assert [(e.name, e.status) for e in rec2.of("step")] == [
        ("account", "skipped"),
        ("checkpoint", "skipped"),
        ("variants", "skipped"),
        ("compile", "skipped"),
    ]
    assert len(run_jobs(sandbox, p.run_id)) == 4


def test_cancel_then_resume_reattaches_without_duplicates(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.neo.seconds = 6
    cancel = threading.Event()
    rec = Recorder()
    options_kw = {"cancel": cancel}
    p = _pipeline(sandbox, tmp_path, rec, **options_kw)
    p.options.stop_on_cancel = False  # "leave the jobs running", as after a crash
    errors: list[BaseException] = []
    t = threading.Thread(target=lambda: _capture(errors, p.run, "compile"))
    t.start()
    rec.wait_for(lambda e: getattr(e, "status", "") == "INPROGRESS", timeout=60)
    cancel.set()
    t.join(60)
    assert errors and isinstance(errors[0], Cancelled) and "--resume" in errors[0].message
    saved = json.loads(p.store.path.read_text())["steps"]["compile"]
    assert saved["status"] == "running" and len(saved["jobs"]) == 4
    assert latest_run("sandbox", tmp_path / "state", unfinished=True) is not None
    sandbox.neo.seconds = 0.6
    rec2 = Recorder()
    resumed = Pipeline.resume(
        p.store,
        RunOptions(checkpoint=Path("x"), mode="sandbox"),
        rec2,
        aws=lambda: aws_for(sandbox),
        compile_config=lambda aws: compile_config_for(sandbox),
    )
    assert resumed.run("compile").chosen == "full_manual_norm"
    assert len(run_jobs(sandbox, p.run_id)) == 4, "resume must not launch a job twice"
    assert sum(e.message == "re-attached to the running job" for e in rec2.of("variant")) == 4


def _capture(errors: list[BaseException], fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except BaseException as exc:
        errors.append(exc)


def test_state_file_rules(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "run.json")
    assert store.load() is None
    store.save(RunState(run_id="r1", mode="aws", checkpoint="/x.pt"))
    saved = store.load()
    assert saved is not None and saved.run_id == "r1"
    (tmp_path / "run.json").write_text('{"version": 1, "run_id": ')
    with pytest.raises(CorruptState, match="set aside as run.json.corrupt-"):
        store.load()
    assert not (tmp_path / "run.json").exists()
    assert len(list(tmp_path.glob("run.json.corrupt-*"))) == 1
    with pytest.raises(BadInputError, match="no run to resume"):
        Pipeline.resume(store, RunOptions(checkpoint=Path("x")), Recorder())


def test_a_new_run_never_overwrites_an_unfinished_one(tmp_path: Path, sample_path: Path) -> None:
    store = StateStore(tmp_path / "run.json")
    store.save(RunState(run_id="r1", mode="aws", checkpoint=str(sample_path)))
    with pytest.raises(BadInputError, match="holds the unfinished run r1"):
        Pipeline.new(RunOptions(checkpoint=sample_path), Recorder(), store=store)
    kept = store.load()
    assert kept is not None and kept.run_id == "r1"


def test_resume_refuses_a_changed_checkpoint(tmp_path: Path, sample_path: Path) -> None:
    copy = tmp_path / "c.pt"
    copy.write_bytes(sample_path.read_bytes())
    p = Pipeline.new(RunOptions(checkpoint=copy, output_dir=tmp_path / "o"), Recorder(), state_dir=tmp_path)
    p.run("checkpoint")
    copy.write_bytes(sample_path.read_bytes() + b"x")
    with pytest.raises(BadInputError, match="changed or vanished"):
        Pipeline.resume(p.store, RunOptions(checkpoint=copy), Recorder())


# ------------------------------------------------------------------------------------ the headless CLI

CONTRACT = {
    "step": {"name", "status"},
    "checkpoint": {"path", "params", "sparsity"},
    "variant": {"name", "status", "fidelity", "failure_reason", "job_name"},
    "done": {"status", "image_uri", "exit_code"},
}


def _cli(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ncf_tui.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NCF_TUI_NO_TUI": "1", **(env or {})},
        **kw,
    )


def test_headless_sandbox_json_follows_the_contract(tmp_path: Path) -> None:
    proc = _cli(
        "--headless",
        "--sandbox",
        "--json",
        "--until",
        "compile",
        "--output-dir",
        str(tmp_path / "o"),
        env={"NCF_TUI_STATE_DIR": str(tmp_path / "s"), "NCF_SANDBOX_NEO_SECONDS": "0.5"},
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in out.splitlines()]  # every line is one JSON object
    for e in events:
        assert isinstance(e["ts"], str) and e["ts"].endswith("Z")
        assert CONTRACT.get(e["event"], set()) <= set(e), e
    chosen = [e for e in events if e["event"] == "variant" and e["status"] == "chosen"]
    assert [e["name"] for e in chosen] == ["full_manual_norm"]
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == 0
    assert "NEO_MODEL_S3_URI=ncf-tui-sandbox-models/" in events[-1]["message"]


def test_killed_run_resumes_against_the_same_account(sandbox: Sandbox, tmp_path: Path) -> None:
    """A headless run against an endpoint is killed mid-compile; --resume re-attaches and finishes."""
    sandbox.neo.seconds = 8
    d = sandbox.project_defaults()
    env = {
        **sandbox.env(),
        "NCF_TUI_BUCKET": d["bucket"],
        "NCF_TUI_PREFIX": d["prefix"],
        "NCF_TUI_SAGEMAKER_ROLE": d["sagemakerRoleArn"],
        "NCF_TUI_STATE_DIR": str(tmp_path / "s"),
    }
    env.pop("AWS_ENDPOINT_URL")
    common = [
        "--headless",
        "--json",
        "--endpoint-url",
        sandbox.endpoint_url,
        "--region",
        sandbox.region,
        "--until",
        "compile",
        "--output-dir",
        str(tmp_path / "o"),
    ]
    proc = _cli(*common, env=env)
    started = 0
    deadline = time.monotonic() + 240
    assert proc.stdout is not None
    for line in proc.stdout:
        e = json.loads(line)
        started += e["event"] == "variant" and e["status"] == "STARTING"
        if started == 4 or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert started == 4
    sandbox.neo.seconds = 0.6
    again = _cli(*common, "--resume", env=env)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in out.splitlines()]
    run_id = next(e for e in events if e["event"] == "done")["message"].split()[1]
    assert len(run_jobs(sandbox, run_id)) == 4, "no duplicate jobs after the kill"
    assert sum(e.get("message") == "re-attached to the running job" for e in events) == 4


def test_sigterm_stops_jobs_saves_state_and_exits_130(tmp_path: Path) -> None:
    proc = _cli(
        "--headless",
        "--sandbox",
        "--json",
        "--until",
        "compile",
        "--output-dir",
        str(tmp_path / "o"),
        env={"NCF_TUI_STATE_DIR": str(tmp_path / "s"), "NCF_SANDBOX_NEO_SECONDS": "20"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line).get("status") == "INPROGRESS":
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    events = [json.loads(line) for line in out.splitlines()]
    assert sum(e.get("status") == "STOPPING" for e in events) == 4
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == 130
    (state,) = (tmp_path / "s").glob("run-*.json")
    assert json.loads(state.read_text())["finished"] is False
