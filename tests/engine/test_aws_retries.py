"""Retries are botocore's standard mode; the user's own `max_attempts` (AWS_MAX_ATTEMPTS or the profile's),
when set, is honoured as the AWS SDKs' shared configuration documents it (total attempts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.sandbox.server import Sandbox


def _aws(sandbox: Sandbox) -> Aws:
    return Aws(AwsTarget(region=sandbox.region, endpoint_url=sandbox.endpoint_url, credentials=sandbox.credentials))


def test_throttled_calls_are_retried_to_success_by_default(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    sandbox.reset("throttling")  # seeded: the second call is throttled
    codebuild = _aws(sandbox).client("codebuild")
    for _ in range(4):
        assert codebuild.list_projects()["projects"] == []
    assert sandbox.fault_counts["throttled"] > 0


def test_aws_max_attempts_1_means_no_retry(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    sandbox.reset("throttling")
    codebuild = _aws(sandbox).client("codebuild")
    codebuild.list_projects()
    with pytest.raises(ClientError) as raised:
        codebuild.list_projects()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert sandbox.fault_counts["throttled"] == 1, "one attempt, no retry"


def test_a_profile_s_max_attempts_is_honoured(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile tight]\nmax_attempts = 1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    sandbox.reset("throttling")
    aws = Aws(
        AwsTarget(
            region=sandbox.region, profile="tight", endpoint_url=sandbox.endpoint_url, credentials=sandbox.credentials
        )
    )
    codebuild = aws.client("codebuild")
    codebuild.list_projects()
    with pytest.raises(ClientError):
        codebuild.list_projects()
