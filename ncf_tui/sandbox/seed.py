"""The seeded demo account: an admin caller, the bucket, the ECR repository and the two roles.

The ``empty-account`` scenario seeds the caller only (a newcomer's account): ncf-tui creates the rest.

The CodeBuild service role gets exactly what the build itself does (ECR login and push, S3 read of
the model bucket) on exact ARNs, plus what CodeBuild's documented service-role policy adds for an S3
source and CloudWatch Logs (CodeBuild User Guide, "Allow CodeBuild to interact with other AWS
services": the log group and ``group:*``; s3:GetObject, s3:GetObjectVersion, s3:GetBucketAcl,
s3:GetBucketLocation) and the pull actions on the region's ``sagemaker-inference-pytorch``
repository (AWS's account, any: the Neo base image), minus whatever the scenario takes away. The
policy documents are plain functions of the names so that tests and the engine's "proposed fix"
can be compared with them.
"""

from __future__ import annotations

import json
from typing import Any

from . import moto_glue
from .names import SandboxNames
from .scenarios import Scenario

ECR_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
ECR_PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
NEO_IMAGE_REPOSITORY = "sagemaker-inference-pytorch"
BOUNDARY_POLICY_NAME = "ncf-build-permissions-boundary"


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def _statement(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any] | None:
    if not actions:
        return None
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def codebuild_role_policy(names: SandboxNames, lacks: tuple[str, ...] = ()) -> dict[str, Any]:
    """The CodeBuild service role's inline policy: the build's permissions on exact ARNs."""
    missing = {a.lower() for a in lacks}

    def keep(actions: tuple[str, ...]) -> list[str]:
        return [a for a in actions if a.lower() not in missing]

    log_group = names.codebuild_log_group_arn
    neo_repo = f"arn:{names.partition}:ecr:{names.region}:*:repository/{NEO_IMAGE_REPOSITORY}"
    statements = [
        _statement("EcrAuth", keep(("ecr:GetAuthorizationToken",)), ["*"]),
        _statement("EcrPush", keep(ECR_PUSH_ACTIONS), [names.ecr_repo_arn]),
        _statement("NeoBaseImage", keep(ECR_PULL_ACTIONS), [neo_repo]),
        _statement("ModelRead", keep(("s3:GetObject", "s3:GetObjectVersion")), [f"{names.bucket_arn}/*"]),
        _statement("ModelList", keep(("s3:ListBucket", "s3:GetBucketAcl", "s3:GetBucketLocation")), [names.bucket_arn]),
        _statement(
            "BuildLogs",
            keep(("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")),
            [log_group, f"{log_group}:*"],
        ),
    ]
    return {"Version": "2012-10-17", "Statement": [s for s in statements if s is not None]}


def sagemaker_role_policy(names: SandboxNames) -> dict[str, Any]:
    """What Neo needs from its execution role: read the input model, write the compiled one (whole bucket)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NeoModels",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": [f"{names.bucket_arn}/*"],
            },
            {
                "Sid": "NeoBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [names.bucket_arn],
            },
            # Hosting pulls the model's image as this role (SageMaker developer guide, "CreateModel API:
            # Execution Role Permissions": ecr:GetAuthorizationToken on *, the pull actions on the repository).
            {"Sid": "HostingImageAuth", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
            {
                "Sid": "HostingImagePull",
                "Effect": "Allow",
                "Action": list(ECR_PULL_ACTIONS),
                "Resource": [names.ecr_repo_arn],
            },
        ],
    }


ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "AdministratorAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def seed_account(names: SandboxNames, scenario: Scenario, access_key_id: str, secret: str) -> None:
    """Create the demo account in moto's (freshly reset) backends."""
    acct = names.account_id
    moto_glue.create_user_with_key(acct, names.admin_user, access_key_id, secret)
    admin_arn = moto_glue.create_managed_policy(acct, names.admin_policy_name, json.dumps(ADMIN_POLICY))
    moto_glue.attach_user_policy(acct, names.admin_user, admin_arn)
    if scenario.caller_lacks_list:
        # The s3-no-list caller: everything but listing buckets (so a missing key answers 403, not 404).
        no_list = {
            "Version": "2012-10-17",
            "Statement": [{"Sid": "NoListBucket", "Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*"}],
        }
        deny_arn = moto_glue.create_managed_policy(acct, "ncf-sandbox-no-list-bucket", json.dumps(no_list))
        moto_glue.attach_user_policy(acct, names.admin_user, deny_arn)
    if scenario.empty_account:
        return  # a newcomer's account: only the caller, everything else is for ncf-tui to create

    boundary_arn = None
    if scenario.boundary_lacks:
        # The role's permissions boundary grants what the build does, minus what the scenario names; the
        # role's own policy still allows it, so only the boundary refuses (IAM User Guide, permissions
        # boundaries: the effective permissions are the intersection).
        boundary = codebuild_role_policy(names, scenario.boundary_lacks)
        boundary_arn = moto_glue.create_managed_policy(acct, BOUNDARY_POLICY_NAME, json.dumps(boundary))
    moto_glue.create_role(
        acct,
        names.codebuild_role_name,
        "/service-role/",
        _trust("codebuild.amazonaws.com"),
        "The CodeBuild service role of the ncf-recommender build",
        boundary_arn,
    )
    moto_glue.put_role_policy(
        acct,
        names.codebuild_role_name,
        names.codebuild_policy_name,
        json.dumps(codebuild_role_policy(names, scenario.role_lacks)),
    )
    moto_glue.create_role(
        acct,
        names.sagemaker_role_name,
        "/",
        _trust("sagemaker.amazonaws.com"),
        "The SageMaker execution role for Neo compilation jobs",
    )
    moto_glue.put_role_policy(
        acct, names.sagemaker_role_name, names.sagemaker_policy_name, json.dumps(sagemaker_role_policy(names))
    )
    moto_glue.create_bucket(acct, names.region, names.bucket)
    moto_glue.create_ecr_repository(acct, names.region, names.ecr_repo)
