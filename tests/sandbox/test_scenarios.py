"""Every scenario is a small declarative entry with an effect you can observe over HTTP."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ncf_tui.sandbox.scenarios import SCENARIOS, Scenario, get_scenario
from ncf_tui.sandbox.server import Sandbox


def test_the_catalogue_is_the_issue_s_list() -> None:
    assert list(SCENARIOS) == [
        "healthy",
        "missing-permissions",
        "boundary-denied",
        "wrong-model-uri",
        "no-privileged-mode",
        "throttling",
        "flaky-logs",
        "neo-compiled-pt",
    ]
    assert all(isinstance(s, Scenario) and s.description for s in SCENARIOS.values())
    assert get_scenario(None).name == "healthy"
    assert get_scenario(" Throttling ").name == "throttling"
    with pytest.raises(ValueError, match="unknown sandbox scenario"):
        get_scenario("chaos")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_scenario_seeds_the_account_and_reports_itself(sandbox: Sandbox, name: str) -> None:
    sandbox.reset(name)
    assert sandbox.scenario.name == name
    s3 = sandbox.client("s3", retries={"max_attempts": 10, "mode": "standard"})
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [sandbox.names.bucket]
    settings = sandbox.suggested_settings()
    assert settings["IMAGE_REPO_NAME"] == sandbox.names.ecr_repo
    assert sandbox.project_defaults()["privilegedMode"] is (name != "no-privileged-mode")


def test_wrong_model_uri_points_at_an_object_that_does_not_exist(sandbox: Sandbox) -> None:
    healthy = sandbox.suggested_settings()["NEO_MODEL_S3_URI"]
    sandbox.reset("wrong-model-uri")
    wrong = sandbox.suggested_settings()["NEO_MODEL_S3_URI"]
    assert wrong != healthy
    bucket, key = wrong.split("/", 1)
    assert bucket == sandbox.names.bucket
    with pytest.raises(ClientError) as err:
        sandbox.client("s3").head_object(Bucket=bucket, Key=f"{key}/model-ml_c5.tar.gz")
    assert err.value.response["Error"]["Code"] == "404"
    assert sandbox.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{key}/")["KeyCount"] == 0


def test_missing_permissions_scenario_changes_only_the_role(sandbox: Sandbox) -> None:
    iam = sandbox.client("iam")
    names = sandbox.names
    healthy = iam.get_role_policy(RoleName=names.codebuild_role_name, PolicyName=names.codebuild_policy_name)
    sandbox.reset("missing-permissions")
    lacking = iam.get_role_policy(RoleName=names.codebuild_role_name, PolicyName=names.codebuild_policy_name)

    def actions(doc: dict) -> set[str]:  # type: ignore[type-arg]
        return {a for s in doc["PolicyDocument"]["Statement"] for a in s["Action"]}

    assert actions(healthy) - actions(lacking) == {"ecr:PutImage", "s3:ListBucket"}
