"""The whole flow, checkpoint to image in ECR, against the sandbox: the happy path and each scenario's exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.context import RunContext, sandbox_saved_dir
from ncf_tui.engine.codebuild import DEFAULT_IMAGE, ProjectRefused
from ncf_tui.engine.iam import PermissionsError
from ncf_tui.engine.pipeline import Pipeline, RunOptions, agree, refuse
from ncf_tui.engine.settings import DEFAULT_BUILD_IMAGE, SettingsError
from ncf_tui.sandbox.server import Sandbox

from .engine.aws_kit import Recorder, aws_for


def _pipeline(sandbox: Sandbox, tmp_path: Path, ask: Callable[[str, Any], bool] = refuse) -> tuple[Pipeline, Recorder]:
    from ncf_tui.engine.sample import sample_checkpoint_path

    saved = sandbox_saved_dir(sandbox)
    options = RunOptions(
        checkpoint=sample_checkpoint_path(),
        output_dir=tmp_path / "out",
        mode="sandbox",
        env={},
        saved_dir=saved,
        save_answers=False,
        source_root=sandbox.source_dir,
        ask=ask,
    )
    rec = Recorder()
    p = Pipeline.new(
        options,
        rec,
        state_dir=tmp_path / "state",
        aws=lambda: aws_for(sandbox),
        compile_config=RunContext(env={}, saved_dir=saved).compile_config,
    )
    return p, rec


def test_settings_and_project_agree_on_the_build_image() -> None:
    assert DEFAULT_BUILD_IMAGE == DEFAULT_IMAGE


def test_headless_sandbox_run_ends_with_an_image_in_ecr(tmp_path: Path) -> None:
    # No Docker Engine answers (auto mode, DOCKER_HOST pointing at nothing): the fallback builds, and says so.
    env = {
        **os.environ,
        "NCF_TUI_STATE_DIR": str(tmp_path / "s"),
        "NCF_SANDBOX_NEO_SECONDS": "0.5",
        "NCF_SANDBOX_DOCKER": "auto",
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ncf_tui.cli",
            "--headless",
            "--sandbox",
            "--json",
            "--yes",
            "--output-dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    done_steps = [e["name"] for e in events if e["event"] == "step" and e["status"] == "done"]
    assert done_steps == ["account", "checkpoint", "variants", "compile", "settings", "permissions", "build", "verify"]
    settings = {e["name"]: e for e in events if e["event"] == "setting"}
    assert all(settings[n]["ok"] for n in ("AWS_DEFAULT_REGION", "AWS_ACCOUNT_ID", "IMAGE_REPO_NAME", "IMAGE_TAG"))
    assert settings["NEO_MODEL_S3_URI"]["ok"] and not settings["NEO_MODEL_S3_URI"]["value"].startswith("s3://")
    perms = [e for e in events if e["event"] == "permission"]
    assert perms and all(e["decision"] == "allowed" for e in perms)
    assert {"ecr:PutImage", "s3:GetObject", "s3:ListBucket", "ecr:GetAuthorizationToken"} <= {
        e["action"] for e in perms
    }
    builds = [e for e in events if e["event"] == "build"]
    assert builds[-1]["status"] == "SUCCEEDED"
    logs = [e["line"] for e in events if e["event"] == "log"]
    assert any(line.startswith("NCF-TUI: model-sha256 ") and line.endswith(" model.pth") for line in logs)
    assert any("sandbox builder" in line.lower() for line in logs), "the log says the sandbox built the image"
    assert any("Docker: no Docker Engine" in line and "fallback builder" in line for line in logs)
    assert "NCF-TUI: docker-server ncf-tui-sandbox-builder" in logs
    (image,) = [e for e in events if e["event"] == "image"]
    assert image["uri"].endswith("/ncf-recommender:latest") and image["digest"].startswith("sha256:")
    done = events[-1]
    assert done["event"] == "done" and done["exit_code"] == 0 and done["image_uri"] == image["uri"]


@pytest.mark.slow
@pytest.mark.parametrize(("scenario", "model_file"), [("healthy", "model.pth"), ("neo-compiled-pt", "compiled.pt")])
def test_the_run_builds_from_neo_s_own_layout(sandbox: Sandbox, tmp_path: Path, scenario: str, model_file: str) -> None:
    """Neo's output, listed with boto3, is <stem>-<target>.tar.gz holding the compiled model alone; the engine's
    sidecar lies beside it; the build takes either name and verify matches the image to the file in S3."""
    import hashlib
    import io
    import tarfile

    sandbox.reset(scenario)
    p, rec = _pipeline(sandbox, tmp_path, ask=agree)
    outcome = p.run()
    assert outcome.image_uri, "the run ended without an image"
    state = json.loads(p.store.path.read_text())
    compiled = state["steps"]["compile"]
    folder = compiled["neo_model_s3_uri"]  # bucket/prefix of the Neo output, as the seed means it
    assert not folder.startswith("s3://") and not folder.endswith(".tar.gz")
    bucket, _, prefix = folder.partition("/")
    listed = sandbox.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    assert sorted(o["Key"].rsplit("/", 1)[-1] for o in listed["Contents"]) == ["model-ml_c5.tar.gz", "ncf-model.json"]
    body = sandbox.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/model-ml_c5.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == [model_file]  # no ncf-model.json inside Neo's archive
        member = tar.extractfile(model_file)
        assert member is not None
        sha = hashlib.sha256(member.read()).hexdigest()
    sidecar = json.loads(sandbox.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/ncf-model.json")["Body"].read())
    assert sidecar["model_sha256"] == sha and sidecar["model_file"] == model_file
    assert sidecar["neo_framework_version"] == compiled["framework_version"] == "2.0"
    assert sidecar["trace_torch_version"] == compiled["trace_torch_version"] == sidecar["torch_version"]
    assert compiled["sidecar_uri"] == f"s3://{folder}/ncf-model.json"
    assert any(e.line == f"NCF-TUI: model-sha256 {sha} {model_file}" for e in rec.of("log"))
    assert state["steps"]["verify"]["model_sha256"] == sha


def test_missing_permissions_exit_3_with_the_policy_then_fixed(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("missing-permissions")
    p, rec = _pipeline(sandbox, tmp_path)
    with pytest.raises(PermissionsError) as info:
        p.run("permissions")
    assert int(info.value.exit_code) == 3
    denied = {(e.action, e.decision) for e in rec.of("permission") if e.decision != "allowed"}
    assert denied == {("ecr:PutImage", "implicitDeny"), ("s3:ListBucket", "implicitDeny")}
    assert '"ecr:PutImage"' in info.value.message and "arn:aws:s3:::ncf-tui-sandbox-models" in info.value.message
    # The same run, resumed with the user's yes: the policy is attached and the check passes.
    p.options.ask = agree
    resumed = Pipeline.resume(p.store, p.options, rec, aws=p._aws_factory, compile_config=p.extras["compile_config"])
    outcome = resumed.run("permissions")
    assert json.loads(p.store.path.read_text())["steps"]["permissions"]["report"]["attached"] is True
    assert outcome.result("permissions").attached  # the typed result says what the state file says


@pytest.mark.slow
def test_boundary_denied_exits_3_explaining_no_inline_policy_can_fix_it(tmp_path: Path) -> None:
    # A real headless process with --yes: the boundary refuses ecr:PutImage, so nothing is attached (--yes
    # would have attached a proposal), the run stops at permissions with exit 3 and says why, in --json too.
    env = {**os.environ, "NCF_TUI_STATE_DIR": str(tmp_path / "s"), "NCF_SANDBOX_NEO_SECONDS": "0.5"}
    argv = [sys.executable, "-m", "ncf_tui.cli", "--headless", "--sandbox", "--sandbox-scenario", "boundary-denied"]
    argv += ["--json", "--yes", "--until", "permissions", "--output-dir", str(tmp_path / "o")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    capped = [e for e in events if e["event"] == "permission" and e["decision"] != "allowed"]
    assert [(e["action"], e["blocked_by"]) for e in capped] == [("ecr:PutImage", "permissions boundary")]
    notes = [
        e["message"] for e in events if e["event"] == "step" and e["status"] == "note" and e["name"] == "permissions"
    ]
    assert notes and "resource-based policies" in notes[0] and "SCP" in notes[0]
    done = events[-1]
    assert done["event"] == "done" and done["exit_code"] == 3
    assert "refused by the role's permissions boundary" in done["message"]
    assert "no inline policy on the role can allow them" in done["message"]
    assert "proposed least-privilege policy" not in done["message"]
    assert "ncf-tui-build-permissions" not in proc.stdout  # no policy was proposed, nor attached
    assert "permissions boundary must allow" in proc.stderr  # the hint: who can fix it


def test_wrong_model_uri_is_caught_before_any_build(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("wrong-model-uri")
    p, rec = _pipeline(sandbox, tmp_path)
    with pytest.raises(SettingsError, match="NEO_MODEL_S3_URI: no model archive found") as info:
        p.run("build")
    assert int(info.value.exit_code) == 3
    assert "compile outputs that do exist" in info.value.message
    assert not rec.of("build")
    assert sandbox.client("codebuild").list_builds()["ids"] == []


def test_no_privileged_mode_refused_is_exit_5(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("no-privileged-mode")
    p, _ = _pipeline(sandbox, tmp_path)
    with pytest.raises(ProjectRefused, match=r"privilegedMode: false -> true") as info:
        p.run("build")
    assert int(info.value.exit_code) == 5
    project = sandbox.client("codebuild").batch_get_projects(names=["ncf-recommender-build"])["projects"][0]
    assert project["environment"]["privilegedMode"] is False, "a refusal leaves the project as it was"


@pytest.mark.slow
def test_no_privileged_mode_fixed_by_updating_the_project(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("no-privileged-mode")
    p, rec = _pipeline(sandbox, tmp_path, ask=agree)
    outcome = p.run("verify")
    assert outcome.image_uri and outcome.image_uri.endswith(":latest")
    updated = {e.name for e in rec.of("setting") if e.name.startswith("codebuild.")}
    assert "codebuild.environment.privilegedMode" in updated
