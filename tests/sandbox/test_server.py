"""The sandbox server: startup, the seeded account, IAM enforcement, reset and the standalone CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

import boto3
import pytest
from botocore.exceptions import ClientError

from ncf_tui.sandbox import moto_glue
from ncf_tui.sandbox.names import ACCOUNT_ID, SandboxNames
from ncf_tui.sandbox.seed import codebuild_role_policy
from ncf_tui.sandbox.server import Sandbox
from tests.children import default_sigint
from tests.waits import HANG

VENV_BIN = Path(sys.executable).parent


def test_endpoint_is_loopback_and_answers_as_the_admin(sandbox: Sandbox) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.endpoint_url)
    ident = sandbox.client("sts").get_caller_identity()
    assert ident["Account"] == ACCOUNT_ID
    assert ident["Arn"] == sandbox.names.admin_user_arn


def test_seeded_bucket_repository_and_roles(sandbox: Sandbox) -> None:
    names = sandbox.names
    buckets = [b["Name"] for b in sandbox.client("s3").list_buckets()["Buckets"]]
    assert buckets == [names.bucket]
    repos = sandbox.client("ecr").describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in repos] == [names.ecr_repo]
    iam = sandbox.client("iam")
    role = iam.get_role(RoleName=names.codebuild_role_name)["Role"]
    assert role["Arn"] == names.codebuild_role_arn
    assert iam.get_role(RoleName=names.sagemaker_role_name)["Role"]["Arn"] == names.sagemaker_role_arn
    doc = iam.get_role_policy(RoleName=names.codebuild_role_name, PolicyName=names.codebuild_policy_name)
    assert doc["PolicyDocument"] == codebuild_role_policy(names)


def test_role_policy_grants_exact_arns_and_the_seed_actions() -> None:
    names = SandboxNames()
    policy = codebuild_role_policy(names)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {"ecr:PutImage", "ecr:GetAuthorizationToken", "s3:GetObject", "s3:ListBucket"} <= actions
    resources = {r for s in policy["Statement"] if s["Sid"] != "EcrAuth" for r in s["Resource"]}
    assert "*" not in resources
    lacking = codebuild_role_policy(names, ("ecr:PutImage", "s3:ListBucket"))
    lacking_actions = {a for s in lacking["Statement"] for a in s["Action"]}
    assert actions - lacking_actions == {"ecr:PutImage", "s3:ListBucket"}


def test_unknown_credentials_are_refused(sandbox: Sandbox) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id="AKIAUNKNOWNKEY000000",
        aws_secret_access_key="nope",
    )
    with pytest.raises(ClientError) as err:
        client.list_buckets()
    assert err.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_role_credentials_are_checked_per_arn(sandbox: Sandbox) -> None:
    """IAM enforcement is on: the build role may read models but not write them."""
    names = sandbox.names
    sandbox.client("s3").put_object(Bucket=names.bucket, Key="m/model.tar.gz", Body=b"x")
    creds = moto_glue.assume_role_credentials(ACCOUNT_ID, sandbox.region, names.codebuild_role_arn, "t")
    as_role = boto3.client("s3", endpoint_url=sandbox.endpoint_url, region_name=sandbox.region, **creds)
    assert as_role.get_object(Bucket=names.bucket, Key="m/model.tar.gz")["Body"].read() == b"x"
    with pytest.raises(ClientError) as err:
        as_role.put_object(Bucket=names.bucket, Key="m/other", Body=b"y")
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_reset_forgets_state_and_keeps_credentials(sandbox: Sandbox) -> None:
    s3 = sandbox.client("s3")
    s3.put_object(Bucket=sandbox.names.bucket, Key="leftover", Body=b"1")
    sandbox.reset()
    assert s3.list_objects_v2(Bucket=sandbox.names.bucket)["KeyCount"] == 0


def test_a_second_sandbox_in_the_same_process_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        Sandbox().start()


def test_unknown_scenario_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="choose one of: healthy"):
        Sandbox("no-such-thing")


def test_suggested_settings_name_the_seeded_resources(sandbox: Sandbox) -> None:
    settings = sandbox.suggested_settings()
    assert set(settings) == {"AWS_DEFAULT_REGION", "AWS_ACCOUNT_ID", "IMAGE_REPO_NAME", "IMAGE_TAG", "NEO_MODEL_S3_URI"}
    assert settings["AWS_ACCOUNT_ID"] == ACCOUNT_ID
    assert settings["IMAGE_REPO_NAME"] == "ncf-recommender"
    assert settings["NEO_MODEL_S3_URI"].startswith(f"{sandbox.names.bucket}/{sandbox.names.prefix}/")
    assert not settings["NEO_MODEL_S3_URI"].startswith("s3://")
    assert sandbox.project_defaults()["privilegedMode"] is True


def _run_cli(args: list[str], err: IO[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start the standalone sandbox and read its exports up to the line that says it serves.

    stderr goes to a file, not a pipe nobody reads: a chatty server (request logs, warnings) must never fill
    a pipe and stall on a write while the test waits for it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ncf_tui.sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        preexec_fn=default_sigint,  # noqa: PLW1509 (the test stops it with Ctrl-C)
    )
    assert proc.stdout is not None
    exports: dict[str, str] = {}
    for line in proc.stdout:  # the event: each line as it is printed (EOF if the sandbox died)
        if line.startswith("export "):
            key, _, value = line[len("export ") :].strip().partition("=")
            exports[key] = value
        if line.startswith("# serving"):
            break
    return proc, exports


def _stop(proc: subprocess.Popen[str], err: IO[str]) -> tuple[int, str, str]:
    """Ctrl-C, then wait for the process to exit (HANG only guards against a real hang); its exit code,
    the rest of its stdout and its stderr."""
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=HANG)
    err.seek(0)
    return proc.returncode, out, err.read()


def test_standalone_cli_serves_the_aws_cli_until_interrupted() -> None:
    # As CI (or `pytest &`) may start the suite: with SIGINT ignored, which every child inherits. The test's
    # Ctrl-C must still reach the sandbox (tests/children.py), or this waits for a hang.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with tempfile.TemporaryFile(mode="w+") as err:
            _serve_and_interrupt(err)
    finally:
        signal.signal(signal.SIGINT, previous)


def _serve_and_interrupt(err: IO[str]) -> None:
    proc, exports = _run_cli(["--scenario", "healthy", "--region", "eu-west-1"], err)
    try:
        assert set(exports) >= {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
        assert exports["AWS_DEFAULT_REGION"] == "eu-west-1"
        env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", **exports}
        env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
        out = subprocess.run(
            [str(VENV_BIN / "aws"), "ecr", "describe-repositories", "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG,
            check=True,
        )
        repo = json.loads(out.stdout)["repositories"][0]
        assert repo["repositoryUri"] == f"{ACCOUNT_ID}.dkr.ecr.eu-west-1.amazonaws.com/ncf-recommender"
    finally:
        code, rest, said = _stop(proc, err)
    assert code == 0, said[-3000:]
    assert rest.startswith("faults: "), rest  # it said what it did on the way out, then exited by itself


def test_standalone_cli_refuses_bad_arguments() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ncf_tui.sandbox", "--scenario", "bogus"], capture_output=True, text=True, timeout=HANG
    )
    assert done.returncode == 2
    assert "unknown sandbox scenario 'bogus'" in done.stderr
    assert "Traceback" not in done.stderr


def test_prepare_docker_without_an_engine_is_one_line_and_exit_3(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    done = subprocess.run(
        [sys.executable, "-m", "ncf_tui.sandbox", "--prepare-docker"],
        capture_output=True,
        text=True,
        timeout=HANG,
        env=env,
    )
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: no Docker Engine at unix://") and "fallback builder" in line
    assert done.stdout == ""
