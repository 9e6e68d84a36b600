"""Every name of the sandbox's seeded account, derived in one place.

The seed, the scenarios, the workers and the tests all read names from here so that a rename
(bucket, repository, role) is one edit and nothing drifts apart.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class SandboxNames:
    """The seeded account's resource names and ARNs for one region."""

    region: str = DEFAULT_REGION
    account_id: str = ACCOUNT_ID
    admin_user: str = "ncf-sandbox-admin"
    admin_policy_name: str = "SandboxAdministratorAccess"
    bucket: str = "ncf-tui-sandbox-models"
    prefix: str = "recommender-demo"
    ecr_repo: str = "ncf-recommender"
    image_tag: str = "latest"
    codebuild_project: str = "ncf-recommender-build"
    codebuild_role_name: str = "ncf-codebuild-service-role"
    codebuild_policy_name: str = "ncf-codebuild-build-permissions"
    sagemaker_role_name: str = "ncf-sagemaker-execution-role"
    sagemaker_policy_name: str = "ncf-sagemaker-neo-permissions"

    @property
    def partition(self) -> str:
        return "aws"

    @property
    def codebuild_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/service-role/{self.codebuild_role_name}"

    @property
    def sagemaker_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.sagemaker_role_name}"

    @property
    def admin_user_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{self.admin_user}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"

    @property
    def ecr_repo_arn(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account_id}:repository/{self.ecr_repo}"

    @property
    def ecr_registry(self) -> str:
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com"

    @property
    def image_uri(self) -> str:
        return f"{self.ecr_registry}/{self.ecr_repo}:{self.image_tag}"

    @property
    def codebuild_project_arn(self) -> str:
        return f"arn:aws:codebuild:{self.region}:{self.account_id}:project/{self.codebuild_project}"

    @property
    def codebuild_log_group(self) -> str:
        return f"/aws/codebuild/{self.codebuild_project}"

    @property
    def codebuild_log_group_arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{self.codebuild_log_group}"

    def log_group_for(self, project: str) -> str:
        """CodeBuild's log group for any project, as CodeBuild names it."""
        return f"/aws/codebuild/{project}"

    def compilation_output(self, job_name: str) -> str:
        """Where a Neo job of this account writes, as `bucket/prefix/...` (no `s3://`)."""
        return f"{self.bucket}/{self.prefix}/compilation-output/{job_name}"

    @property
    def model_input_prefix(self) -> str:
        return f"{self.prefix}/models"
