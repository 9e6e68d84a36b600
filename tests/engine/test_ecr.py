"""The image check against images pushed to the sandbox's ECR, and the deploy commands run by the aws CLI."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import subprocess

import pytest

from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.ecr import ImageCheckError, deploy_commands, verify_image
from ncf_tui.engine.errors import ExitCode
from ncf_tui.engine.events import Event, ImageEvent
from ncf_tui.engine.logs import BuildValues
from ncf_tui.sandbox.server import Sandbox

MODEL_SHA = "ab" * 32


def make_aws(sb: Sandbox) -> Aws:
    return _aws(sb.region, sb.endpoint_url, tuple(sorted(sb.credentials.items())))


@functools.cache
def _aws(region: str, endpoint_url: str, credentials: tuple[tuple[str, str], ...]) -> Aws:
    """One boto3 session per sandbox server (its credentials outlive resets): sessions are slow to make."""
    return Aws(AwsTarget(region=region, endpoint_url=endpoint_url, credentials=dict(credentials)))


def push(sb: Sandbox, tag: str, layer: bytes = b"layer bytes") -> str:
    """put_image as a registry does: the digest is the sha256 of the manifest bytes."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7,
                "digest": "sha256:" + hashlib.sha256(b"config!").hexdigest(),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                }
            ],
        }
    )
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    sb.client("ecr").put_image(
        repositoryName=sb.names.ecr_repo, imageManifest=manifest, imageTag=tag, imageDigest=digest
    )
    return digest


def values_for(sb: Sandbox, tag: str, digest: str) -> BuildValues:
    uri = f"{sb.names.ecr_registry}/{sb.names.ecr_repo}:{tag}"
    return BuildValues(model_sha256=MODEL_SHA, image_uri=uri, image_digest=digest)


def test_a_pushed_image_matching_the_build_is_verified(sandbox: Sandbox) -> None:
    digest = push(sandbox, "v1")
    events: list[Event] = []
    info = verify_image(
        make_aws(sandbox),
        sandbox.names.ecr_repo,
        "v1",
        events.append,
        expected_model_sha256=MODEL_SHA,
        build_values=values_for(sandbox, "v1", digest),
    )
    assert info.digest == digest and info.uri == f"{sandbox.names.ecr_registry}/{sandbox.names.ecr_repo}:v1"
    assert info.pushed_at is not None and info.size_bytes > 0
    assert info.model_sha256 == MODEL_SHA
    assert len(info.verified) == 4
    assert events == [ImageEvent(uri=info.uri, digest=digest, tag="v1", ts=events[0].ts)]


def test_a_tag_moved_since_the_build_is_caught(sandbox: Sandbox) -> None:
    built = push(sandbox, "v1")
    push(sandbox, "v1", layer=b"someone else's image")
    with pytest.raises(ImageCheckError, match="the build pushed") as err:
        verify_image(
            make_aws(sandbox),
            sandbox.names.ecr_repo,
            "v1",
            lambda e: None,
            build_values=values_for(sandbox, "v1", built),
        )
    assert err.value.exit_code == ExitCode.BUILD_FAILED


def test_an_image_holding_another_model_is_caught(sandbox: Sandbox) -> None:
    digest = push(sandbox, "v1")
    with pytest.raises(ImageCheckError, match="not the compiled model in the Neo archive"):
        verify_image(
            make_aws(sandbox),
            sandbox.names.ecr_repo,
            "v1",
            lambda e: None,
            expected_model_sha256="cd" * 32,
            build_values=values_for(sandbox, "v1", digest),
        )
    with pytest.raises(ImageCheckError, match="no 'NCF-TUI: model-sha256' line"):
        verify_image(make_aws(sandbox), sandbox.names.ecr_repo, "v1", lambda e: None, expected_model_sha256=MODEL_SHA)


def test_a_missing_tag_or_repository_is_a_clear_error(sandbox: Sandbox) -> None:
    with pytest.raises(ImageCheckError, match="is not in ECR repository"):
        verify_image(make_aws(sandbox), sandbox.names.ecr_repo, "never-pushed", lambda e: None)
    with pytest.raises(ImageCheckError, match="does not exist"):
        verify_image(make_aws(sandbox), "no-such-repo", "latest", lambda e: None)


def test_the_deploy_commands_run_with_the_aws_cli(sandbox: Sandbox) -> None:
    uri = f"{sandbox.names.ecr_registry}/{sandbox.names.ecr_repo}:v1"
    commands = deploy_commands(uri, sandbox.region, sandbox.names.sagemaker_role_arn, name="ncf-test")
    assert [c.split()[2] for c in commands if c.startswith("aws ")] == [
        "create-model",
        "create-endpoint-config",
        "create-endpoint",
        "wait",
        "invoke-endpoint",
    ]
    env = {**os.environ, **sandbox.env()}
    for command in commands[:3]:  # the sandbox has no endpoint runtime to wait for or invoke
        done = subprocess.run(shlex.split(command), env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    sm = sandbox.client("sagemaker")
    model = sm.describe_model(ModelName="ncf-test")
    assert model["PrimaryContainer"]["Image"] == uri
    assert model["ExecutionRoleArn"] == sandbox.names.sagemaker_role_arn
    config = sm.describe_endpoint_config(EndpointConfigName="ncf-test-config")
    assert config["ProductionVariants"][0]["ModelName"] == "ncf-test"
    assert sm.describe_endpoint(EndpointName="ncf-test-endpoint")["EndpointConfigName"] == "ncf-test-config"
    request = next(c for c in commands if c.startswith("printf"))
    assert json.loads(shlex.split(request)[2]) == {"user_id": 42, "item_id": 56}
