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
from ncf_tui.engine.ecr import (
    ImageCheckError,
    deploy_commands,
    instance_type_for,
    parse_image_uri,
    registry_host,
    repository_arn_of,
    verify_image,
)
from ncf_tui.engine.errors import ExitCode
from ncf_tui.engine.events import Event, ImageEvent
from ncf_tui.engine.logs import BuildValues
from ncf_tui.engine.settings import Settings, dns_suffix_for
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
    assert len(info.verified) == 5
    # the fallback builder registers manifests only: the model inside cannot be read back, and it says so
    assert info.verified[-1].startswith("the model in the image was not read")
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
    instance = instance_type_for("ml_c5")
    commands = deploy_commands(
        uri, sandbox.region, sandbox.names.sagemaker_role_arn, name="ncf-test", instance_type=instance
    )
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
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    assert sm.describe_endpoint(EndpointName="ncf-test-endpoint")["EndpointConfigName"] == "ncf-test-config"
    request = next(c for c in commands if c.startswith("printf"))
    assert json.loads(shlex.split(request)[2]) == {"user_id": 42, "item_id": 56}


@pytest.mark.parametrize(
    ("target", "instance"),
    [
        ("ml_c5", "ml.c5.xlarge"),
        ("ml_m5", "ml.m5.xlarge"),
        ("ml_c4", "ml.c4.xlarge"),
        ("ml_g4dn", "ml.g4dn.xlarge"),
        ("ml_inf1", "ml.inf1.xlarge"),
        ("ml_p3", "ml.p3.2xlarge"),
    ],
)
def test_the_deploy_instance_is_of_the_family_neo_compiled_for(target: str, instance: str) -> None:
    # SageMaker Developer Guide, "Supported Instance Types and Frameworks" (neo-supported-cloud): a model Neo
    # compiled for ml_<family> is deployed on ml.<family>.<size>
    assert instance_type_for(target) == instance
    command = deploy_commands("i", "us-east-1", "arn:aws:iam::1:role/r", instance_type=instance_type_for(target))[1]
    assert f"InstanceType={instance}," in command


def test_image_uris_are_read_with_the_partition_s_own_dns_suffix() -> None:
    # China regions' registries end in amazonaws.com.cn: nothing assumes amazonaws.com
    cn = parse_image_uri("727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-inference-pytorch:2.0-cpu-py3")
    assert cn is not None
    assert (cn["account"], cn["region"], cn["suffix"], cn["repo"], cn["tag"]) == (
        "727897471807",
        "cn-north-1",
        "amazonaws.com.cn",
        "sagemaker-inference-pytorch",
        "2.0-cpu-py3",
    )
    assert repository_arn_of("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app@sha256:" + "a" * 64) == (
        "arn:aws:ecr:us-east-1:123456789012:repository/team/app"
    )
    assert repository_arn_of("python:3.11-slim") is None
    # botocore's endpoint data gives each partition's suffix (offline)
    assert dns_suffix_for("cn-north-1") == "amazonaws.com.cn"
    assert dns_suffix_for("us-east-1") == "amazonaws.com"
    assert Settings(region="cn-northwest-1", account_id="1" * 12).registry.endswith(".amazonaws.com.cn")


def test_the_registry_host_comes_from_the_build_or_from_the_authorization_token(sandbox: Sandbox) -> None:
    aws = make_aws(sandbox)
    acct = sandbox.names.account_id
    # what the build printed wins (a China build prints .amazonaws.com.cn: it is taken as printed)
    printed = f"{acct}.dkr.ecr.{sandbox.region}.amazonaws.com.cn/{sandbox.names.ecr_repo}:latest"
    assert registry_host(aws, acct, printed) == f"{acct}.dkr.ecr.{sandbox.region}.amazonaws.com.cn"
    # else GetAuthorizationToken's proxyEndpoint, as ECR gives it
    token = sandbox.client("ecr").get_authorization_token()["authorizationData"][0]["proxyEndpoint"]
    assert registry_host(aws, acct) == token.removeprefix("https://")
