"""Least privilege: the proposed policy grants only the checked pairs, the image runs as non-root, and the
buildspec never prints a credential."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ncf_tui.engine.iam import (
    Permission,
    PermissionResult,
    least_privilege_policy,
    required_permissions,
    source_permissions,
)
from ncf_tui.engine.settings import Settings
from ncf_tui.engine.steps.build import SOURCE_KEY
from ncf_tui.sandbox.policy import SourcePolicy, evaluate, simulate

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "ncf-tui-sandbox-models"
SETTINGS = Settings(
    region=REGION,
    account_id=ACCOUNT,
    image_repo_name="ncf-recommender",
    image_tag="latest",
    neo_model_s3_uri=f"{BUCKET}/recommender-demo/compilation-output/ncf-run-full-manual-norm",
    project_name="ncf-recommender-build",
    bucket=BUCKET,
    prefix="recommender-demo",
)
SOURCE = source_permissions("aws", BUCKET, f"recommender-demo/{SOURCE_KEY}")
# The sagemaker SDK's neo-pytorch image for us-east-1 (its image table), as the engine's lookup returns it.
NEO_IMAGE = "785573368785.dkr.ecr.us-east-1.amazonaws.com/sagemaker-inference-pytorch:2.0-cpu-py3"
NEO_REPO_ARN = "arn:aws:ecr:us-east-1:785573368785:repository/sagemaker-inference-pytorch"
REPO_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/ncf-recommender"
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/ncf-recommender-build"

MUST_NOT_GRANT: list[tuple[str, str]] = [
    # Anything on IAM, STS or the account: the build must never be able to raise its own rights.
    *((a, "*") for a in ("iam:PassRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:CreateAccessKey")),
    ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/service-role/ncf-codebuild-service-role"),
    ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/admin"),
    # Writing or deleting in S3, or reading outside the model and the source archive.
    ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/recommender-demo/compilation-output/x/model.tar.gz"),
    ("s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/recommender-demo/{SOURCE_KEY}"),
    ("s3:DeleteBucket", f"arn:aws:s3:::{BUCKET}"),
    ("s3:PutBucketPolicy", f"arn:aws:s3:::{BUCKET}"),
    ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/other-team/secrets.csv"),
    ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/recommender-demo/compilation-output/another-job/model.tar.gz"),
    ("s3:GetObject", "arn:aws:s3:::some-other-bucket/recommender-demo/model.tar.gz"),
    ("s3:ListBucket", "arn:aws:s3:::some-other-bucket"),
    ("s3:ListAllMyBuckets", "*"),
    # ECR: only push and pull on this one repository, never delete or re-policy it, never another one.
    ("ecr:PutImage", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/another-repo"),
    ("ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/another-repo"),
    ("ecr:BatchDeleteImage", REPO_ARN),
    ("ecr:DeleteRepository", REPO_ARN),
    ("ecr:SetRepositoryPolicy", REPO_ARN),
    ("ecr:CreateRepository", "*"),
    # The Neo base image: pull only, and only AWS's repository of it.
    ("ecr:PutImage", NEO_REPO_ARN),
    ("ecr:InitiateLayerUpload", NEO_REPO_ARN),
    ("ecr:BatchGetImage", "arn:aws:ecr:us-east-1:785573368785:repository/another-aws-image"),
    # The source bucket: its ACL and location may be read, never written; no object but the source archive.
    ("s3:PutBucketAcl", f"arn:aws:s3:::{BUCKET}"),
    ("s3:GetObjectVersion", f"arn:aws:s3:::{BUCKET}/other-team/secrets.csv"),
    ("s3:GetBucketAcl", "arn:aws:s3:::some-other-bucket"),
    # Logs: only this project's group.
    ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/payments:log-stream:x"),
    ("logs:DeleteLogGroup", GROUP_ARN),
    ("logs:GetLogEvents", f"{GROUP_ARN}:log-stream:x"),
    # Everything else a leaked build role could be abused for.
    *(
        (a, "*")
        for a in (
            "codebuild:StartBuild",
            "codebuild:UpdateProject",
            "sagemaker:CreateCompilationJob",
            "secretsmanager:GetSecretValue",
            "ssm:GetParameter",
            "kms:Decrypt",
            "ec2:RunInstances",
            "lambda:InvokeFunction",
            "organizations:LeaveOrganization",
        )
    ),
]


def _proposed() -> tuple[dict[str, Any], list[Permission]]:
    pairs = required_permissions(SETTINGS, extra=SOURCE, base_image=NEO_IMAGE)
    policy = least_privilege_policy([PermissionResult(p, "implicitDeny") for p in pairs])
    assert policy is not None
    return policy, pairs


def test_proposed_policy_grants_every_checked_pair() -> None:
    policy, pairs = _proposed()
    results = [evaluate([SourcePolicy("proposed", policy)], p.action, p.resource) for p in pairs]
    assert [r.decision for r in results] == ["allowed"] * len(pairs)


@pytest.mark.parametrize(("action", "resource"), MUST_NOT_GRANT)
def test_proposed_policy_grants_nothing_it_must_not(action: str, resource: str) -> None:
    policy, _ = _proposed()
    assert evaluate([SourcePolicy("proposed", policy)], action, resource).decision == "implicitDeny"


def test_proposed_policy_grants_no_pair_beyond_the_checked_ones() -> None:
    """Every action the policy names against every resource it names: allowed only where a check asked."""
    policy, pairs = _proposed()
    wanted = {(p.action, p.resource) for p in pairs}
    tokenless = {p.action for p in pairs if p.resource == "*"}  # such actions have no resource in AWS
    actions = sorted({a for st in policy["Statement"] for a in st["Action"]})
    resources = sorted({r for st in policy["Statement"] for r in st["Resource"]} - {"*"})
    extra = [
        (r.action, r.resource)
        for r in simulate([SourcePolicy("proposed", policy)], actions, resources)
        if r.decision == "allowed" and (r.action, r.resource) not in wanted and r.action not in tokenless
    ]
    assert extra == []
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow" and set(st) == {"Sid", "Effect", "Action", "Resource"}
        assert not any("*" in a or "?" in a for a in st["Action"]), st
        assert st["Resource"] != ["*"] or st["Action"] == ["ecr:GetAuthorizationToken"], st


def test_only_denied_pairs_are_proposed() -> None:
    _, pairs = _proposed()
    results = [PermissionResult(p, "implicitDeny" if p.action == "ecr:PutImage" else "allowed") for p in pairs]
    results.append(PermissionResult(Permission("s3:ListBucket", "arn:aws:s3:::x", "ModelList", ""), "explicitDeny"))
    policy = least_privilege_policy(results)
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "EcrPush", "Effect": "Allow", "Action": ["ecr:PutImage"], "Resource": [REPO_ARN]}],
    }


# ------------------------------------------------------------------------------------------ the container


def _final_user(dockerfile: Path) -> str | None:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(path=str(dockerfile))
    user: str | None = None
    for instr in parser.structure:
        if instr["instruction"] == "FROM":
            user = None  # each stage starts as root
        elif instr["instruction"] == "USER":
            user = instr["value"].strip()
    return user


def test_container_runs_as_root_as_sagemaker_expects() -> None:
    """ "SageMaker AI expects all containers to run with root users" (SageMaker developer guide, Custom
    Inference Code with Hosting Services): the final stage sets no other USER."""
    user = _final_user(REPO / "container" / "Dockerfile")
    assert user in (None, "root", "0", "root:root", "0:0"), user


def test_final_user_parser_sees_root_stages(tmp_path: Path) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text('FROM a AS one\nUSER 10001\nFROM b\nCMD ["x"]\n')
    assert _final_user(f) is None, "a USER of an earlier stage does not carry into the final one"


# ------------------------------------------------------------------------------------------- the buildspec

CREDENTIAL_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_CONTAINER_CREDENTIALS")
ECHOING = [
    (r"\bset\s+-[a-z]*x", "set -x traces every command with its expanded values"),
    (r"set\s+-o\s+xtrace", "xtrace prints expanded values"),
    (r"(^|[;|&]\s*)(env|printenv|export -p|declare -p|set)\s*($|[;|&])", "dumps the whole environment"),
    (r"aws\s+configure\s+(get|list|export-credentials)", "prints stored credentials"),
    (r"docker\s+login\b(?![^\n]*--password-stdin)", "a docker password on the command line shows in ps and logs"),
    (r"get-login-password[^|\n]*($|\n|;|>)", "the ECR token printed instead of piped into docker login"),
]


def _commands() -> list[str]:
    spec = yaml.safe_load((REPO / "buildspec.yml").read_text())
    out: list[str] = []
    for phase in spec["phases"].values():
        out.extend(str(c) for c in phase.get("commands") or [])
    return out


def test_buildspec_never_echoes_credentials() -> None:
    commands = _commands()
    assert len(commands) >= 5
    for cmd in commands:
        for var in CREDENTIAL_VARS:
            assert var not in cmd, f"the buildspec references {var}: {cmd[:80]}"
        for pattern, why in ECHOING:
            assert not re.search(pattern, cmd, flags=re.MULTILINE), f"{why}: {cmd[:120]}"
    spec = yaml.safe_load((REPO / "buildspec.yml").read_text())
    assert "parameter-store" not in (spec.get("env") or {}), "no secrets are pulled into the build's environment"


@pytest.mark.parametrize(
    "bad",
    [
        "set -euxo pipefail; docker push x",
        "echo $AWS_SECRET_ACCESS_KEY",
        "printenv",
        "aws ecr get-login-password --region r > token.txt",
        "docker login -u AWS -p $(aws ecr get-login-password) r",
        "aws configure get aws_secret_access_key",
    ],
)
def test_the_buildspec_scan_catches_echoing_commands(bad: str) -> None:
    hits = [v for v in CREDENTIAL_VARS if v in bad] + [w for p, w in ECHOING if re.search(p, bad, re.MULTILINE)]
    assert hits, bad
