"""buildspec.yml run for real: the sandbox's CodeBuild executes it with bash, the aws CLI and its docker builder.

The builder checks every COPY source in the context the buildspec made and smoke-tests the image's
server, so a green build here means the three parts (buildspec, Dockerfile, server) fit together.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.sandbox.server import Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def project(sandbox: Sandbox) -> Build:
    return Build(sandbox)


class Build:
    """The sandbox account's CodeBuild project (its role may log only there), run with given variables."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.codebuild = sb.client("codebuild")
        self.logs = sb.client("logs")
        self.name = sb.names.codebuild_project
        self.codebuild.create_project(
            name=self.name,
            source={"type": "CODECOMMIT", "location": "repo"},  # the repository's buildspec.yml
            artifacts={"type": "NO_ARTIFACTS"},
            serviceRole=sb.names.codebuild_role_arn,
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/amazonlinux2-x86_64-standard:3.0",
                "computeType": "BUILD_GENERAL1_SMALL",
                "privilegedMode": True,
            },
        )

    def run(self, variables: dict[str, str]) -> tuple[str, list[str]]:
        overrides = [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in variables.items()]
        build_id = self.codebuild.start_build(projectName=self.name, environmentVariablesOverride=overrides)
        build_id = build_id["build"]["id"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            build: dict[str, Any] = self.codebuild.batch_get_builds(ids=[build_id])["builds"][0]
            if build["buildComplete"]:
                return str(build["buildStatus"]), self._log(build)
            time.sleep(0.2)
        raise AssertionError(f"build {build_id} did not finish")

    def _log(self, build: dict[str, Any]) -> list[str]:
        lines: list[str] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"startFromHead": True, **({"nextToken": token} if token else {})}
            page = self.logs.get_log_events(
                logGroupName=build["logs"]["groupName"], logStreamName=build["logs"]["streamName"], **kwargs
            )
            lines += [event["message"].rstrip("\n") for event in page["events"]]
            if page["nextForwardToken"] == token:
                return lines
            token = page["nextForwardToken"]


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


def test_the_build_downloads_builds_and_pushes_the_image(
    sandbox: Sandbox, project: Build, model_archives: dict[str, Path]
) -> None:
    settings = sandbox.suggested_settings()
    archive = model_archives["mlp"]
    upload(sandbox, f"{settings['NEO_MODEL_S3_URI']}/model.tar.gz", archive.read_bytes())
    with tarfile.open(archive) as tar:
        member = tar.extractfile("model.pth")
        assert member is not None
        model_sha = hashlib.sha256(member.read()).hexdigest()
    # a user who pastes the URI with its s3:// prefix and a trailing slash still gets a build
    variables = {**settings, "NEO_MODEL_S3_URI": f"s3://{settings['NEO_MODEL_S3_URI']}/"}

    status, log = project.run(variables)

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


def test_a_wrong_model_uri_fails_with_a_clear_line(sandbox: Sandbox, project: Build) -> None:
    settings = {**sandbox.suggested_settings()}
    settings["NEO_MODEL_S3_URI"] = f"{sandbox.names.bucket}/no/such/compile-output"
    status, log = project.run(settings)
    assert status == "FAILED"
    assert ncf_lines(log)["error"].startswith("model-not-found nothing found at s3://")
    assert "image-uri" not in ncf_lines(log)


def test_an_archive_without_model_pth_fails_before_docker_runs(sandbox: Sandbox, project: Build) -> None:
    settings = {**sandbox.suggested_settings()}
    uri = f"{sandbox.names.bucket}/empty-output/job/model.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("compiled.params")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    upload(sandbox, uri, buffer.getvalue())
    settings["NEO_MODEL_S3_URI"] = uri  # an object key works as well as a prefix
    status, log = project.run(settings)
    assert status == "FAILED"
    assert ncf_lines(log)["error"].startswith("model-missing model.pth is not at the root")
    assert not any(line.startswith("#1 [internal] load build definition") for line in log)


def test_several_archives_under_the_prefix_are_named(
    sandbox: Sandbox, project: Build, model_archives: dict[str, Path]
) -> None:
    settings = {**sandbox.suggested_settings()}
    prefix = f"{sandbox.names.bucket}/two-jobs"
    for job in ("job-a", "job-b"):
        upload(sandbox, f"{prefix}/{job}/model.tar.gz", model_archives["basic"].read_bytes())
    settings["NEO_MODEL_S3_URI"] = prefix
    status, log = project.run(settings)
    assert status == "FAILED"
    assert ncf_lines(log)["error"].startswith("model-not-found 2 archives under")
    assert "  two-jobs/job-a/model.tar.gz" in log and "  two-jobs/job-b/model.tar.gz" in log
