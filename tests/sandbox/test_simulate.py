"""iam:SimulatePrincipalPolicy and SimulateCustomPolicy over real HTTP, evaluated from moto's IAM state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ncf_tui.sandbox.server import Sandbox

BUILD_ACTIONS = ["ecr:PutImage", "ecr:InitiateLayerUpload", "s3:GetObject", "s3:ListBucket"]


def _resources(sb: Sandbox) -> list[str]:
    return [sb.names.ecr_repo_arn, f"{sb.names.bucket_arn}/{sb.names.prefix}/x/model.tar.gz", sb.names.bucket_arn]


def _decisions(sb: Sandbox, actions: list[str], resources: list[str]) -> dict[tuple[str, str], str]:
    out = sb.client("iam").simulate_principal_policy(
        PolicySourceArn=sb.names.codebuild_role_arn, ActionNames=actions, ResourceArns=resources
    )
    return {(r["EvalActionName"], r["EvalResourceName"]): r["EvalDecision"] for r in out["EvaluationResults"]}


def test_the_seeded_role_is_allowed_exactly_on_its_arns(sandbox: Sandbox) -> None:
    repo, obj, bucket = _resources(sandbox)
    got = _decisions(sandbox, BUILD_ACTIONS, [repo, obj, bucket])
    assert got[("ecr:PutImage", repo)] == "allowed"
    assert got[("ecr:InitiateLayerUpload", repo)] == "allowed"
    assert got[("s3:GetObject", obj)] == "allowed"
    assert got[("s3:ListBucket", bucket)] == "allowed"
    assert got[("s3:GetObject", bucket)] == "implicitDeny"
    assert got[("ecr:PutImage", obj)] == "implicitDeny"


def test_matched_statements_name_the_role_policy(sandbox: Sandbox) -> None:
    out = sandbox.client("iam").simulate_principal_policy(
        PolicySourceArn=sandbox.names.codebuild_role_arn,
        ActionNames=["ecr:PutImage"],
        ResourceArns=[sandbox.names.ecr_repo_arn],
    )
    result = out["EvaluationResults"][0]
    assert result["MatchedStatements"][0]["SourcePolicyId"] == sandbox.names.codebuild_policy_name
    assert result["ResourceSpecificResults"][0]["EvalResourceName"] == sandbox.names.ecr_repo_arn
    assert out["IsTruncated"] is False


def test_missing_permissions_scenario_denies_put_image_and_list_bucket(sandbox: Sandbox) -> None:
    sandbox.reset("missing-permissions")
    repo, obj, bucket = _resources(sandbox)
    got = _decisions(sandbox, BUILD_ACTIONS, [repo, obj, bucket])
    assert got[("ecr:PutImage", repo)] == "implicitDeny"
    assert got[("s3:ListBucket", bucket)] == "implicitDeny"
    assert got[("ecr:InitiateLayerUpload", repo)] == "allowed"
    assert got[("s3:GetObject", obj)] == "allowed"


def test_boundary_denied_scenario_reports_the_boundary_in_the_result(sandbox: Sandbox) -> None:
    # botocore's iam model: PermissionsBoundaryDecisionDetail on the result and on each resource-specific one
    sandbox.reset("boundary-denied")
    role = sandbox.client("iam").get_role(RoleName=sandbox.names.codebuild_role_name)["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryType"] == "PermissionsBoundaryPolicy"
    repo = sandbox.names.ecr_repo_arn
    out = sandbox.client("iam").simulate_principal_policy(
        PolicySourceArn=sandbox.names.codebuild_role_arn,
        ActionNames=["ecr:PutImage", "ecr:InitiateLayerUpload"],
        ResourceArns=[repo],
    )
    by_action = {r["EvalActionName"]: r for r in out["EvaluationResults"]}
    put, upload = by_action["ecr:PutImage"], by_action["ecr:InitiateLayerUpload"]
    assert put["EvalDecision"] == "implicitDeny"
    assert put["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    specific = put["ResourceSpecificResults"][0]
    assert specific["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    assert upload["EvalDecision"] == "allowed"
    assert upload["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert "OrganizationsDecisionDetail" not in put  # the sandbox's account is in no organisation


def test_the_boundary_also_refuses_the_role_s_real_requests(sandbox: Sandbox) -> None:
    # what the simulation says is what a request with the role's credentials gets: the boundary leaves out
    # ecr:PutImage, so the push is refused while the layer upload it allows goes through
    from ncf_tui.sandbox import moto_glue

    sandbox.reset("boundary-denied")
    creds = moto_glue.assume_role_credentials(
        sandbox.names.account_id, sandbox.region, sandbox.names.codebuild_role_arn, "AWSCodeBuild-test"
    )
    ecr = sandbox.internal_client("ecr", creds)
    ecr.initiate_layer_upload(repositoryName=sandbox.names.ecr_repo)
    with pytest.raises(ClientError) as err:
        ecr.put_image(repositoryName=sandbox.names.ecr_repo, imageManifest="{}", imageTag="x")
    # (moto serialises its access-denied as a 403 XML body even for JSON services: a finding of docs/AWS-FIDELITY.md)
    assert "is not authorized to perform: ecr:PutImage" in str(err.value.response["Error"])
    sandbox.reset("healthy")
    creds = moto_glue.assume_role_credentials(
        sandbox.names.account_id, sandbox.region, sandbox.names.codebuild_role_arn, "AWSCodeBuild-test"
    )
    with pytest.raises(ClientError) as ok:  # no boundary: IAM lets it through, ECR judges the manifest
        sandbox.internal_client("ecr", creds).put_image(
            repositoryName=sandbox.names.ecr_repo, imageManifest="{}", imageTag="x"
        )
    assert ok.value.response["Error"]["Code"] == "InvalidParameterException"  # past IAM, refused by ECR itself


def test_a_given_boundary_replaces_the_role_s_own(sandbox: Sandbox) -> None:
    # PermissionsBoundaryPolicyInputList: "if a permissions boundary is attached to an entity and you pass in a
    # different permissions boundary policy using this parameter, then the new ... policy is used"
    sandbox.reset("boundary-denied")
    allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}
    out = sandbox.client("iam").simulate_principal_policy(
        PolicySourceArn=sandbox.names.codebuild_role_arn,
        ActionNames=["ecr:PutImage"],
        ResourceArns=[sandbox.names.ecr_repo_arn],
        PermissionsBoundaryPolicyInputList=[json.dumps(allow_all)],
    )
    result = out["EvaluationResults"][0]
    assert result["EvalDecision"] == "allowed"
    assert result["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    custom = sandbox.client("iam").simulate_custom_policy(
        PolicyInputList=[json.dumps(allow_all)],
        PermissionsBoundaryPolicyInputList=[
            json.dumps({**allow_all, "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
        ],
        ActionNames=["ecr:PutImage"],
    )
    assert custom["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"


def test_an_explicit_deny_added_by_the_user_wins(sandbox: Sandbox) -> None:
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ecr:*", "Resource": "*"}]}
    sandbox.client("iam").put_role_policy(
        RoleName=sandbox.names.codebuild_role_name, PolicyName="no-ecr", PolicyDocument=json.dumps(deny)
    )
    repo, _, _ = _resources(sandbox)
    assert _decisions(sandbox, ["ecr:PutImage"], [repo])[("ecr:PutImage", repo)] == "explicitDeny"


def test_paging_with_max_items_and_marker_returns_every_result_once(sandbox: Sandbox) -> None:
    iam = sandbox.client("iam")
    resources = _resources(sandbox)
    seen: list[tuple[str, str]] = []
    kwargs: dict[str, object] = {}
    pages = 0
    while True:
        page = iam.simulate_principal_policy(
            PolicySourceArn=sandbox.names.codebuild_role_arn,
            ActionNames=BUILD_ACTIONS,
            ResourceArns=resources,
            MaxItems=5,
            **kwargs,
        )
        pages += 1
        seen += [(r["EvalActionName"], r["EvalResourceName"]) for r in page["EvaluationResults"]]
        if not page["IsTruncated"]:
            break
        kwargs = {"Marker": page["Marker"]}
    assert pages == 3
    assert seen == [(a, r) for a in BUILD_ACTIONS for r in resources]
    paginator = iam.get_paginator("simulate_principal_policy")
    total = sum(
        len(p["EvaluationResults"])
        for p in paginator.paginate(
            PolicySourceArn=sandbox.names.codebuild_role_arn,
            ActionNames=BUILD_ACTIONS,
            ResourceArns=resources,
            PaginationConfig={"PageSize": 4},
        )
    )
    assert total == len(BUILD_ACTIONS) * len(resources)


def test_the_admin_user_is_allowed_everything(sandbox: Sandbox) -> None:
    out = sandbox.client("iam").simulate_principal_policy(
        PolicySourceArn=sandbox.names.admin_user_arn, ActionNames=["codebuild:StartBuild", "iam:PassRole"]
    )
    assert [r["EvalDecision"] for r in out["EvaluationResults"]] == ["allowed", "allowed"]


def test_unknown_principal_and_bad_input_are_aws_errors(sandbox: Sandbox) -> None:
    iam = sandbox.client("iam")
    with pytest.raises(ClientError) as err:
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:role/ghost", ActionNames=["s3:GetObject"]
        )
    assert err.value.response["Error"]["Code"] == "NoSuchEntity"
    with pytest.raises(ClientError) as err:
        iam.simulate_principal_policy(
            PolicySourceArn=sandbox.names.codebuild_role_arn, ActionNames=["s3:GetObject"], Marker="garbage"
        )
    assert err.value.response["Error"]["Code"] == "InvalidInput"


def test_simulate_custom_policy(sandbox: Sandbox) -> None:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
    out = sandbox.client("iam").simulate_custom_policy(
        PolicyInputList=[json.dumps(doc)], ActionNames=["s3:GetObject", "s3:PutObject"]
    )
    assert [r["EvalDecision"] for r in out["EvaluationResults"]] == ["allowed", "implicitDeny"]
    assert out["EvaluationResults"][0]["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"


def test_a_role_without_rights_to_simulate_is_refused(sandbox: Sandbox) -> None:
    """IAM enforcement covers the new action too: the build role may not call iam:SimulatePrincipalPolicy."""
    import boto3

    from ncf_tui.sandbox import moto_glue

    creds = moto_glue.assume_role_credentials(
        sandbox.names.account_id, sandbox.region, sandbox.names.codebuild_role_arn, "sim"
    )
    iam = boto3.client("iam", endpoint_url=sandbox.endpoint_url, region_name=sandbox.region, **creds)
    with pytest.raises(ClientError) as err:
        iam.simulate_principal_policy(PolicySourceArn=sandbox.names.codebuild_role_arn, ActionNames=["s3:GetObject"])
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_the_aws_cli_simulates_like_a_user_would(sandbox: Sandbox) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", **sandbox.env()}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "aws"),
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            sandbox.names.codebuild_role_arn,
            "--action-names",
            "ecr:PutImage",
            "--resource-arns",
            sandbox.names.ecr_repo_arn,
            "--query",
            "EvaluationResults[0].EvalDecision",
            "--output",
            "text",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "allowed"
