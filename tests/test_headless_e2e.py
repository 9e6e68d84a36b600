"""The whole flow, checkpoint to image in ECR, against the sandbox: the happy path and each scenario's exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ncf_tui.engine.codebuild import DEFAULT_IMAGE, ProjectRefused
from ncf_tui.engine.iam import PermissionsError
from ncf_tui.engine.pipeline import Pipeline, RunOptions, agree, refuse
from ncf_tui.engine.settings import DEFAULT_BUILD_IMAGE, SettingsError
from ncf_tui.headless import compile_config_from, sandbox_saved_dir

from .engine.aws_kit import Recorder, aws_for


def _pipeline(sandbox, tmp_path: Path, ask=refuse) -> tuple[Pipeline, Recorder]:
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
        compile_config=compile_config_from({}, {}, None, saved),
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
    assert done_steps == ["checkpoint", "variants", "compile", "settings", "permissions", "build", "verify"]
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
    assert any(line.startswith("NCF-TUI: model-sha256 ") for line in logs)
    assert any("sandbox builder" in line.lower() for line in logs), "the log says the sandbox built the image"
    assert any("Docker: no Docker Engine" in line and "fallback builder" in line for line in logs)
    assert "NCF-TUI: docker-server ncf-tui-sandbox-builder" in logs
    (image,) = [e for e in events if e["event"] == "image"]
    assert image["uri"].endswith("/ncf-recommender:latest") and image["digest"].startswith("sha256:")
    done = events[-1]
    assert done["event"] == "done" and done["exit_code"] == 0 and done["image_uri"] == image["uri"]


def test_missing_permissions_exit_3_with_the_policy_then_fixed(sandbox, tmp_path: Path) -> None:
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
    resumed = Pipeline.resume(p.store, p.options, rec, aws=p._aws_factory, compile_config=p._compile_config)
    resumed.run("permissions")
    assert json.loads(p.store.path.read_text())["steps"]["permissions"]["report"]["attached"] is True


def test_wrong_model_uri_is_caught_before_any_build(sandbox, tmp_path: Path) -> None:
    sandbox.reset("wrong-model-uri")
    p, rec = _pipeline(sandbox, tmp_path)
    with pytest.raises(SettingsError, match="NEO_MODEL_S3_URI: no model archive found") as info:
        p.run("build")
    assert int(info.value.exit_code) == 3
    assert "compile outputs that do exist" in info.value.message
    assert not rec.of("build")
    assert sandbox.client("codebuild").list_builds()["ids"] == []


def test_no_privileged_mode_refused_is_exit_5(sandbox, tmp_path: Path) -> None:
    sandbox.reset("no-privileged-mode")
    p, _ = _pipeline(sandbox, tmp_path)
    with pytest.raises(ProjectRefused, match=r"privilegedMode: false -> true") as info:
        p.run("build")
    assert int(info.value.exit_code) == 5
    project = sandbox.client("codebuild").batch_get_projects(names=["ncf-recommender-build"])["projects"][0]
    assert project["environment"]["privilegedMode"] is False, "a refusal leaves the project as it was"


@pytest.mark.slow
def test_no_privileged_mode_fixed_by_updating_the_project(sandbox, tmp_path: Path) -> None:
    sandbox.reset("no-privileged-mode")
    p, rec = _pipeline(sandbox, tmp_path, ask=agree)
    outcome = p.run("verify")
    assert outcome.image_uri and outcome.image_uri.endswith(":latest")
    updated = {e.name for e in rec.of("setting") if e.name.startswith("codebuild.")}
    assert "codebuild.environment.privilegedMode" in updated
