"""buildspec.yml run for real: the sandbox's CodeBuild executes it with bash, the aws CLI and its docker builder.

The builder checks every COPY source in the context the buildspec made and smoke-tests the image's
server, so a green build here means the three parts (buildspec, Dockerfile, server) fit together.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ncf_tui.sandbox.server import Sandbox

from ..neo_kit import put_neo_output, tar_bytes
from ..sandbox.cb_kit import Builds

pytestmark = pytest.mark.slow  # a few CodeBuild runs through the sandbox


def run_build(sb: Sandbox, variables: dict[str, str]) -> tuple[str, list[str]]:
    """The repository's buildspec.yml, with the sandbox account's project and role (tests/conftest.py)."""
    builds = Builds(sb)
    builds.project("buildspec.yml", variables=variables, source_type="GITHUB")
    build, log = builds.run()
    return str(build["buildStatus"]), log


def upload(sb: Sandbox, uri: str, data: bytes) -> None:
    bucket, _, key = uri.partition("/")
    sb.client("s3").put_object(Bucket=bucket, Key=key, Body=data)


def ncf_lines(log: list[str]) -> dict[str, str]:
    """`NCF-TUI: <name> <rest>` lines as printed (not the echo commands CodeBuild logs before them)."""
    found = {}
    for line in log:
        match = re.match(r"NCF-TUI: (\S+) (.*)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_the_build_downloads_builds_and_pushes_the_image(sandbox: Sandbox, model_archives: dict[str, Path]) -> None:
    settings = sandbox.suggested_settings()
    _key, model_sha = put_neo_output(sandbox, settings["NEO_MODEL_S3_URI"], model_archives["mlp"])
    # a user who pastes the URI with its s3:// prefix and a trailing slash still gets a build
    variables = {**settings, "NEO_MODEL_S3_URI": f"s3://{settings['NEO_MODEL_S3_URI']}/"}

    status, log = run_build(sandbox, variables)

    assert status == "SUCCEEDED", "\n".join(log[-60:])
    lines = ncf_lines(log)
    assert lines["model-sha256"] == f"{model_sha} model.pth"
    uri = lines["image-uri"]
    registry = f"{settings['AWS_ACCOUNT_ID']}.dkr.ecr.{settings['AWS_DEFAULT_REGION']}.amazonaws.com"
    assert uri == f"{registry}/{settings['IMAGE_REPO_NAME']}:{settings['IMAGE_TAG']}"
    digest = lines["image-digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    images = sandbox.client("ecr").describe_images(
        repositoryName=settings["IMAGE_REPO_NAME"], imageIds=[{"imageTag": settings["IMAGE_TAG"]}]
    )["imageDetails"]
    assert images[0]["imageDigest"] == digest
    assert any("smoke test" in line for line in log)
    assert any("POST /invocations" in line and "-> 200" in line for line in log)


def test_the_build_takes_an_archive_that_names_the_model_compiled_pt(
    sandbox: Sandbox, model_archives: dict[str, Path]
) -> None:
    """Older Neo releases (and the developer guide's model_fn) name the compiled model compiled.pt."""
    settings = sandbox.suggested_settings()
    folder = f"{sandbox.names.bucket}/{sandbox.names.prefix}/compilation-output/old-neo"
    # the input model.tar.gz lies beside Neo's output, as when S3OutputLocation is the input's folder
    upload(sandbox, f"{folder}/model.tar.gz", model_archives["basic"].read_bytes())
    _key, model_sha = put_neo_output(sandbox, folder, model_archives["basic"], model_file="compiled.pt")

    status, log = run_build(sandbox, {**settings, "NEO_MODEL_S3_URI": folder})

    assert status == "SUCCEEDED", "\n".join(log[-60:])
    assert ncf_lines(log)["model-sha256"] == f"{model_sha} compiled.pt"
    assert f"Downloading s3://{folder}/model-ml_c5.tar.gz" in log
    assert any("POST /invocations" in line and "-> 200" in line for line in log)  # the server found compiled.pt


def test_an_archive_without_a_compiled_model_fails_before_docker_runs(
    sandbox: Sandbox, model_archives: dict[str, Path]
) -> None:
    settings = {**sandbox.suggested_settings()}
    folder = f"{sandbox.names.bucket}/empty-output/job"
    key, _sha = put_neo_output(sandbox, folder, model_archives["basic"])
    upload(sandbox, key, tar_bytes({"compiled.params": b"abc"}))  # a TVM-style artifact: no TorchScript in it
    settings["NEO_MODEL_S3_URI"] = key  # an object key works as well as a prefix
    status, log = run_build(sandbox, settings)
    assert status == "FAILED"
    assert ncf_lines(log)["error"].startswith("model-missing neither model.pth nor compiled.pt is at the root")
    assert not any(line.startswith("#1 [internal] load build definition") for line in log)


def test_a_neo_output_without_the_sidecar_fails_before_docker_runs(
    sandbox: Sandbox, model_archives: dict[str, Path]
) -> None:
    folder = f"{sandbox.names.bucket}/foreign-output/job"
    put_neo_output(sandbox, folder, model_archives["basic"], sidecar=False)
    status, log = run_build(sandbox, {**sandbox.suggested_settings(), "NEO_MODEL_S3_URI": folder})
    assert status == "FAILED"
    assert ncf_lines(log)["error"].startswith(f"model-missing ncf-model.json is not at s3://{folder}/ncf-model.json")


def test_several_archives_under_the_prefix_are_named(sandbox: Sandbox, model_archives: dict[str, Path]) -> None:
    settings = {**sandbox.suggested_settings()}
    prefix = f"{sandbox.names.bucket}/two-jobs"
    for job in ("job-a", "job-b"):
        put_neo_output(sandbox, f"{prefix}/{job}", model_archives["basic"])
    settings["NEO_MODEL_S3_URI"] = prefix
    status, log = run_build(sandbox, settings)
    assert status == "FAILED"
    assert ncf_lines(log)["error"].startswith("model-not-found 2 archives under")
    assert "  two-jobs/job-a/model-ml_c5.tar.gz" in log and "  two-jobs/job-b/model-ml_c5.tar.gz" in log
