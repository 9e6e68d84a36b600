"""The repository's own buildspec.yml, run by the sandbox's CodeBuild from a Neo output to an image in ECR.

These are the product's real failure causes, each proven by a build that fails for it with the cause in
its log: a missing permission, a missing model, no privileged mode, a missing COPY source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ncf_tui.build_source import source_root
from ncf_tui.sandbox.server import Sandbox
from tests.waits import wait_for

from ..neo_kit import engine_sidecar, put_neo_output
from .cb_kit import Builds

pytestmark = pytest.mark.slow

JOB = "ncf-basic"
TERMINAL = ("COMPLETED", "FAILED")


@pytest.fixture(scope="module")
def basic_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ncf_tui.engine.variants import export_variants

    return export_variants(out_dir=tmp_path_factory.mktemp("full"), names=("basic",))["basic"]


def _compile(sb: Sandbox, archive: Path) -> str:
    """Run a Neo job on the archive, write the sidecar beside its output as the engine does, and return
    NEO_MODEL_S3_URI for that output (bucket/prefix)."""
    key = f"{sb.names.model_input_prefix}/{JOB}/model.tar.gz"
    sb.client("s3").put_object(Bucket=sb.names.bucket, Key=key, Body=archive.read_bytes())
    sm = sb.client("sagemaker")
    sm.create_compilation_job(
        CompilationJobName=JOB,
        RoleArn=sb.names.sagemaker_role_arn,
        InputConfig={
            "S3Uri": f"s3://{sb.names.bucket}/{key}",
            "DataInputConfig": '{"input0": [1, 2]}',
            "Framework": "PYTORCH",
        },
        OutputConfig={"S3OutputLocation": f"s3://{sb.names.compilation_output(JOB)}", "TargetDevice": "ml_c5"},
        StoppingCondition={"MaxRuntimeInSeconds": 900},
    )
    status = wait_for(
        lambda: (s := sm.describe_compilation_job(CompilationJobName=JOB)["CompilationJobStatus"]) in TERMINAL and s,
        "the Neo job to finish",
        every=0.1,
    )
    assert status == "COMPLETED"
    engine_sidecar(sb, JOB, "basic", archive)
    return sb.names.compilation_output(JOB)


def _build(sb: Sandbox, model_uri: str) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    builds = Builds(sb)
    settings = {**sb.suggested_settings(), "NEO_MODEL_S3_URI": model_uri}
    builds.project(
        "buildspec.yml", variables=settings, privileged=sb.project_defaults()["privilegedMode"], source_type="GITHUB"
    )
    return builds.run()


def test_healthy_build_pushes_the_image_and_reports_it(sandbox: Sandbox, basic_archive: Path) -> None:
    build, log = _build(sandbox, _compile(sandbox, basic_archive))
    assert build["buildStatus"] == "SUCCEEDED", "\n".join(log[-40:])
    assert f"Downloading s3://{sandbox.names.compilation_output(JOB)}/model-ml_c5.tar.gz" in log
    uri_lines = [line for line in log if line.startswith("NCF-TUI: image-uri ")]
    assert uri_lines == [f"NCF-TUI: image-uri {sandbox.names.image_uri}"]
    digest = next(line.split()[-1] for line in log if line.startswith("NCF-TUI: image-digest "))
    images = sandbox.client("ecr").describe_images(repositoryName=sandbox.names.ecr_repo)["imageDetails"]
    assert [(i["imageDigest"], i["imageTags"]) for i in images] == [(digest, [sandbox.names.image_tag])]
    assert any("sandbox" in line.lower() and "docker" in line.lower() for line in log)


def test_missing_permissions_fail_the_build_with_the_cause_in_the_log(sandbox: Sandbox, basic_archive: Path) -> None:
    sandbox.reset("missing-permissions")
    uri = sandbox.names.compilation_output(JOB)
    put_neo_output(sandbox, uri, basic_archive)
    build, log = _build(sandbox, uri)
    assert build["buildStatus"] == "FAILED"
    assert any("AccessDenied" in line for line in log), "\n".join(log[-30:])
    assert any(line.startswith("NCF-TUI: error model-not-found") for line in log)


def test_a_missing_model_fails_the_build_with_the_cause_in_the_log(sandbox: Sandbox) -> None:
    sandbox.reset("wrong-model-uri")
    build, log = _build(sandbox, sandbox.suggested_settings()["NEO_MODEL_S3_URI"])
    assert build["buildStatus"] == "FAILED"
    assert any(line.startswith("NCF-TUI: error model-not-found") for line in log), "\n".join(log[-30:])


def test_no_privileged_mode_fails_at_the_first_docker_command(sandbox: Sandbox, basic_archive: Path) -> None:
    sandbox.reset("no-privileged-mode")
    uri = sandbox.names.compilation_output(JOB)
    put_neo_output(sandbox, uri, basic_archive)
    build, log = _build(sandbox, uri)
    assert build["buildStatus"] == "FAILED"
    assert any("Cannot connect to the Docker daemon" in line for line in log), "\n".join(log[-30:])
    pre_build = next(p for p in build["phases"] if p["phaseType"] == "PRE_BUILD")
    assert "docker login" in pre_build["contexts"][0]["message"]


def test_a_missing_copy_source_fails_docker_build(sandbox: Sandbox, basic_archive: Path, tmp_path: Path) -> None:
    shutil.copy2(source_root() / "buildspec.yml", tmp_path / "buildspec.yml")
    shutil.copytree(source_root() / "container", tmp_path / "container", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "container" / "serve.py").unlink()
    sandbox.source_dir = tmp_path
    build, log = _build(sandbox, _compile(sandbox, basic_archive))
    assert build["buildStatus"] == "FAILED"
    assert dict(Builds.phases(build))["BUILD"] == "FAILED"
    assert any("serve.py" in line and ("not found" in line or "no such file" in line) for line in log), "\n".join(
        log[-30:]
    )


def test_a_role_without_put_image_fails_the_push(sandbox: Sandbox, basic_archive: Path) -> None:
    """ECR checks the build role per repository ARN: with the archive named directly (no listing needed),
    the build gets as far as `docker push` and is refused there."""
    sandbox.reset("missing-permissions")
    archive_key, _sha = put_neo_output(sandbox, sandbox.names.compilation_output(JOB), basic_archive)
    build, log = _build(sandbox, archive_key)
    assert build["buildStatus"] == "FAILED"
    assert dict(Builds.phases(build))["BUILD"] == "SUCCEEDED"
    post_build = next(p for p in build["phases"] if p["phaseType"] == "POST_BUILD")
    assert post_build["phaseStatus"] == "FAILED"
    assert "docker push" in post_build["contexts"][0]["message"]
    assert any("ecr:PutImage" in line or "AccessDenied" in line for line in log), "\n".join(log[-30:])
