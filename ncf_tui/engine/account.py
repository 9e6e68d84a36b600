"""From an empty account: ask for everything first, create what is missing, take it all down again.

Three parts, each a plain function the front ends call (the ``account`` step runs the first two):

- ``preflight``: who the caller is (sts:GetCallerIdentity), the region, and every input the chosen steps
  need (bucket, SageMaker execution role, CodeBuild service role, ECR repository), each ``present`` or
  ``will be created`` under a name the settings gave or ncf-tui proposes; plus the caller's own rights to
  create them, asked of IAM's simulator on the caller (``iam.simulate``, the build role's check, so the
  explanations are the same).
- ``plan`` and ``create``: each resource with its documents (trust and inline policies, bucket
  configuration, tags), shown as one plan before anything is made; then made in the run's region, tagged
  ``managed-by=ncf-tui`` and ``ncf-tui:run-id=<run>`` and recorded (``on_created``) one by one, so a run
  stopped half-way still knows what it made.
- ``teardown_plan`` and ``teardown``: what the run state says ncf-tui created, kept only where the
  resource's own tags agree; deleted in AWS's order (a bucket must be empty: S3 DeleteBucket; a role's
  inline and attached policies go first: IAM DeleteRole), emptying only the objects and images the run
  wrote. Whatever is not ncf-tui's, or holds something ncf-tui did not write, is left and said so.

Nothing here imports the sandbox or textual; boto3 only through ``Aws``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import ExitCode, NcfError
from .events import Emit, ResourceEvent, StepEvent, discard
from .iam import (
    ALLOWED,
    ECR_PULL_ACTIONS,
    UNVERIFIED,
    Permission,
    PermissionReport,
    PermissionResult,
    denied_explanation,
    emit_results,
    least_privilege_policy,
    required_permissions,
    simulate,
    source_permissions,
)
from .settings import Settings, partition_for

if TYPE_CHECKING:
    from .aws import Aws

MANAGED_BY = ("managed-by", "ncf-tui")
RUN_TAG = "ncf-tui:run-id"
SOURCE_KEY = "source/ncf-tui-source.zip"
"""Where the build step uploads its source (``pipeline.SOURCE_KEY``; kept equal by a test)."""
SAGEMAKER_POLICY = "ncf-tui-sagemaker-execution"
CODEBUILD_POLICY = "ncf-tui-build-permissions"
"""The same inline policy name the permissions step attaches its fixes under (``iam.POLICY_NAME``)."""
DEFAULT_SAGEMAKER_ROLE = "ncf-tui-sagemaker-execution"
DEFAULT_CODEBUILD_ROLE = "ncf-tui-codebuild-service"
PRESENT = "present"
CREATE = "will be created"
BUCKET, ROLE, REPOSITORY = "bucket", "role", "repository"

FLAG_OF = {
    "bucket": "--set bucket=NAME",
    "sagemaker_role": "--set sagemaker_role=arn:aws:iam::ACCOUNT:role/NAME",
    "service_role": "--set service_role=arn:aws:iam::ACCOUNT:role/NAME",
    "IMAGE_REPO_NAME": "--set IMAGE_REPO_NAME=NAME",
}
WHAT = {
    "bucket": "S3 bucket for the models and Neo's output",
    "sagemaker_role": "SageMaker execution role (Neo compiles with it, endpoints pull the image with it)",
    "service_role": "CodeBuild service role (the build runs as it)",
    "IMAGE_REPO_NAME": "ECR repository for the image",
}
ORDER = ("bucket", "sagemaker_role", "service_role", "IMAGE_REPO_NAME")


class AccountError(NcfError):
    """An input is missing and may not (or cannot) be created: a preflight failure, exit 3."""

    exit_code = ExitCode.PREFLIGHT_FAILED


def inputs_in_order(needs: Iterable[str]) -> list[str]:
    """The inputs among ``needs`` (what the chosen steps declare in ``Step.needs``), in ``ORDER``."""
    wanted = set(needs)
    return [n for n in ORDER if n in wanted]


# ---------------------------------------------------------------------------------------------- preflight


@dataclass(frozen=True)
class Input:
    """One input of the run: ``status`` is ``present`` or ``will be created`` (under ``value``)."""

    name: str
    """The setting's name: bucket, sagemaker_role, service_role, IMAGE_REPO_NAME."""
    kind: str
    value: str
    """The bucket or repository name, or the role's ARN."""
    status: str
    source: str
    """Where the value came from: a settings source (flag, env:..., config:..., saved:...) or ``proposed``."""
    flag: str
    what: str
    detail: str = ""

    @property
    def resource_name(self) -> str:
        return self.value.rsplit("/", 1)[-1] if self.kind == ROLE else self.value

    def line(self) -> str:
        return f"{self.name} ({self.what}): {self.value} {self.status}" + (f"; {self.detail}" if self.detail else "")


@dataclass
class Preflight:
    """What the account has and lacks for this run, and whether the caller may create what it lacks."""

    account: str
    caller_arn: str
    region: str
    prefix: str
    inputs: list[Input]
    rights: list[PermissionResult] = field(default_factory=list)
    rights_verified: bool = True
    rights_warning: str = ""

    @property
    def missing(self) -> list[Input]:
        return [i for i in self.inputs if i.status == CREATE]

    @property
    def denied(self) -> list[PermissionResult]:
        return [r for r in self.rights if r.decision not in {ALLOWED, UNVERIFIED}]

    def values(self) -> dict[str, str]:
        """The setting values the run uses (present or to be created), by setting name."""
        return {i.name: i.value for i in self.inputs}

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "caller_arn": self.caller_arn,
            "region": self.region,
            "prefix": self.prefix,
            "inputs": [asdict(i) for i in self.inputs],
            "rights": [
                {"action": r.permission.action, "resource": r.permission.resource, "decision": r.decision}
                for r in self.rights
            ],
            "rights_verified": self.rights_verified,
            "rights_warning": self.rights_warning,
        }


def default_bucket(account: str, region: str) -> str:
    """ncf-tui's proposal for a bucket name: bucket names are global, so the account and region go in."""
    return f"ncf-tui-{account}-{region}"


def role_arn(partition: str, account: str, name: str, path: str = "/") -> str:
    return f"arn:{partition}:iam::{account}:role{path}{name}"


def _arn_of(kind: str, name: str, partition: str, region: str, account: str) -> str:
    if kind == BUCKET:
        return f"arn:{partition}:s3:::{name}"
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"


def _exists(aws: Aws, kind: str, value: str) -> bool:
    """Whether the bucket, role or repository exists (AccessDenied on the probe: assumed to, and said later)."""
    from botocore.exceptions import ClientError

    from .aws import aws_errors, error_code

    try:
        with aws_errors(aws.target):
            if kind == BUCKET:
                aws.client("s3").head_bucket(Bucket=value)
            elif kind == ROLE:
                aws.client("iam").get_role(RoleName=value.rsplit("/", 1)[-1])
            else:
                aws.client("ecr").describe_repositories(repositoryNames=[value])
    except ClientError as exc:
        code = error_code(exc)
        if code in {"404", "NoSuchBucket", "NotFound", "NoSuchEntity", "RepositoryNotFoundException"}:
            return False
        if code in {"403", "AccessDenied", "AccessDeniedException", "Forbidden"}:
            return True  # cannot tell: the settings step checks it again and says what it found
        raise
    return True


def simulation_arn(aws: Aws, caller_arn: str) -> str | None:
    """The ARN IAM's simulator takes for the caller: a user's ARN as STS gives it; for an assumed-role
    session, its role's ARN (path included, from iam:GetRole); None for the root user or a federated user."""
    from botocore.exceptions import ClientError

    from .aws import aws_errors

    arn = caller_arn
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    service, resource = parts[2], parts[5]
    if service == "iam" and resource.startswith("user/"):
        return arn
    if service == "sts" and resource.startswith("assumed-role/"):
        name = resource.split("/")[1]
        try:
            with aws_errors(aws.target):
                return str(aws.client("iam").get_role(RoleName=name)["Role"]["Arn"])
        except ClientError:
            return f"arn:{arn.split(':')[1]}:iam::{arn.split(':')[4]}:role/{name}"
    return None


def check_inputs(settings: Settings, needs: Sequence[str]) -> None:
    """Refuse a malformed or hostile value of an input the steps need (the settings' own local rules), before
    any AWS call is made with it: SettingsError, exit 3."""
    from .settings import SettingIssue, SettingsError, check_value, shown

    refused = []
    for name in inputs_in_order(needs):
        value, source = settings.value(name), settings.source(name)
        check = check_value(name, value) if value else None
        if check is not None and not check.ok:
            refused.append(SettingIssue(name, shown(value), source, check.reason))
    if refused:
        raise SettingsError(refused, hint="fix them in the flags, environment or config that set them")


def preflight(
    aws: Aws,
    settings: Settings,
    needs: Sequence[str],
    *,
    emit: Emit = discard,
    check_rights: bool = True,
) -> Preflight:
    """Ask for everything first: the caller, the region, each input in ``needs`` (present or to be created),
    and the caller's rights to create the missing ones. Raises AwsError for bad credentials or no region."""
    from .aws import AwsError

    if not aws.region:
        raise AwsError("no AWS region set", hint="pass --region, or set AWS_DEFAULT_REGION")
    check_inputs(settings, needs)
    me = aws.whoami()
    partition = partition_for(aws.region)
    inputs: list[Input] = []
    for name in inputs_in_order(needs):
        given = settings.value(name)
        source = settings.source(name)
        if source in ("unset", "default") and name != "IMAGE_REPO_NAME":
            given = ""
        kind = BUCKET if name == "bucket" else REPOSITORY if name == "IMAGE_REPO_NAME" else ROLE
        if not given:
            source = "proposed"
            given = {
                "bucket": default_bucket(me.account, aws.region),
                "sagemaker_role": role_arn(partition, me.account, DEFAULT_SAGEMAKER_ROLE),
                "service_role": role_arn(partition, me.account, DEFAULT_CODEBUILD_ROLE),
                "IMAGE_REPO_NAME": "ncf-recommender",
            }[name]
        detail = ""
        if kind == ROLE and given.count(":") >= 5 and given.split(":")[4] != me.account:
            # Another account's role is never ncf-tui's to create; the settings step says what it finds.
            status, detail = PRESENT, f"in account {given.split(':')[4]}, not the caller's: not created by ncf-tui"
        else:
            status = PRESENT if _exists(aws, kind, given) else CREATE
        inputs.append(Input(name, kind, given, status, source, FLAG_OF[name], WHAT[name], detail))
    result = Preflight(me.account, me.arn, aws.region, settings.prefix or "ncf-tui", inputs)
    emit(StepEvent(name="account", status="note", message=f"caller {me.arn} in account {me.account}, {aws.region}"))
    for i in inputs:
        arn = i.value if i.kind == ROLE else _arn_of(i.kind, i.value, partition, aws.region, me.account)
        emit(
            ResourceEvent(
                setting=i.name, resource=i.kind, name=i.resource_name, arn=arn, status=i.status, message=i.what
            )
        )
    if check_rights and result.missing:
        caller_rights(aws, result, emit)
    return result


def create_permissions(pre: Preflight) -> list[Permission]:
    """What the caller must be allowed to create the missing inputs (IAM Service Authorization Reference:
    PutBucketEncryption is authorised as s3:PutEncryptionConfiguration, PutPublicAccessBlock as
    s3:PutBucketPublicAccessBlock, PutBucketTagging as s3:PutBucketTagging; a role's tags given to CreateRole
    need iam:TagRole too; the roles are passed to SageMaker and CodeBuild later, which needs iam:PassRole)."""
    partition = partition_for(pre.region)
    out: list[Permission] = []
    for i in pre.missing:
        if i.kind == BUCKET:
            arn = f"arn:{partition}:s3:::{i.value}"
            why = f"create the bucket {i.value}"
            for action in ("s3:CreateBucket", "s3:PutBucketPublicAccessBlock", "s3:PutEncryptionConfiguration"):
                out.append(Permission(action, arn, "CreateBucket", why))
            out.append(Permission("s3:PutBucketTagging", arn, "CreateBucket", "tag the bucket as ncf-tui's"))
        elif i.kind == ROLE:
            why = f"create the role {i.resource_name}"
            for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:TagRole"):
                out.append(Permission(action, i.value, "CreateRoles", why))
            out.append(Permission("iam:PassRole", i.value, "PassRoles", f"hand {i.resource_name} to its service"))
        else:
            arn = f"arn:{partition}:ecr:{pre.region}:{pre.account}:repository/{i.value}"
            # ECR User Guide, "Using Tag-Based Access Control": tags given to CreateRepository are authorised
            # on ecr:CreateRepository itself (its example also grants ecr:TagResource; the text does not require it).
            out.append(Permission("ecr:CreateRepository", arn, "CreateRepository", f"create the repository {i.value}"))
    return out


def caller_rights(aws: Aws, pre: Preflight, emit: Emit = discard) -> Preflight:
    """Simulate ``create_permissions`` on the caller (one ``permission`` event each); an unverifiable caller
    (the root user, a federated user, or no right to simulate) gives a warning, never a guess."""
    from botocore.exceptions import ClientError

    from .aws import error_code

    permissions = create_permissions(pre)
    source = simulation_arn(aws, pre.caller_arn)
    warning = ""
    if source is None:
        warning = f"could not simulate the rights of {pre.caller_arn} (IAM's simulator takes users and roles only)"
    else:
        try:
            pre.rights = simulate(aws, source, permissions)
        except ClientError as exc:
            if error_code(exc) not in {"AccessDenied", "AccessDeniedException"}:
                raise
            warning = (
                f"could not verify the caller's rights: {pre.caller_arn} may not call iam:SimulatePrincipalPolicy "
                f"on {source}; grant it that action on that ARN to check, or continue unverified"
            )
    if warning:
        pre.rights = [PermissionResult(p, UNVERIFIED) for p in permissions]
        pre.rights_verified, pre.rights_warning = False, warning
    emit_results(emit, pre.rights)
    if warning:
        emit(StepEvent(name="account", status="warning", message=warning))
    return pre


def require_rights(pre: Preflight) -> None:
    """Raise AccountError (exit 3) with the build role's explanations when the caller lacks a right."""
    if not pre.denied:
        return
    report = PermissionReport(pre.caller_arn, pre.rights)
    report.proposed_policy = least_privilege_policy(pre.rights)
    message, hint = denied_explanation(report, who="the caller")
    raise AccountError(message, hint=hint)


def missing_message(pre: Preflight) -> tuple[str, str]:
    """One line per missing input with the flag that names an existing one (and what ``--yes`` creates)."""
    lines = [
        f"{i.name}: {'no ' + i.what if i.source == 'proposed' else i.what + ' ' + i.value + ' does not exist'}"
        f"; pass {i.flag}, or --yes to create {i.value}"
        for i in pre.missing
    ]
    head = f"{len(lines)} input(s) this run needs {'is' if len(lines) == 1 else 'are'} missing in {pre.region}:"
    return head + "\n  " + "\n  ".join(lines), "pass the flags above for what exists, or --yes to create the rest"


# --------------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PlannedResource:
    """One resource to create, with every document it will carry (what the confirmation shows)."""

    kind: str
    setting: str
    name: str
    arn: str
    region: str
    documents: Mapping[str, Any]
    tags: Mapping[str, str]

    def describe(self) -> str:
        docs = "\n".join(
            f"  {k}:\n    " + json.dumps(v, indent=2).replace("\n", "\n    ") for k, v in self.documents.items()
        )
        return f"+ {self.kind} {self.name} ({self.arn}, {self.region})\n{docs}"


def tags_for(run_id: str) -> dict[str, str]:
    return {MANAGED_BY[0]: MANAGED_BY[1], RUN_TAG: run_id}


def trust_policy(service: str) -> dict[str, Any]:
    """Only ``service`` may assume the role (IAM User Guide, "Creating a role to delegate permissions to an
    AWS service")."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def sagemaker_policy(partition: str, region: str, account: str, bucket: str, prefix: str, repo: str) -> dict[str, Any]:
    """The SageMaker execution role's inline policy: S3 on the run's bucket and prefix only (Neo reads the
    input archive and writes its output there), and the image pull a SageMaker endpoint does (the
    authorization token has no resource; the pull actions on the one repository)."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    repo_arn = f"arn:{partition}:ecr:{region}:{account}:repository/{repo}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RunObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": [f"{bucket_arn}/{prefix}/*"],
            },
            {
                "Sid": "RunPrefixList",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [bucket_arn],
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
            },
            {"Sid": "EcrAuth", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
            {"Sid": "ImagePull", "Effect": "Allow", "Action": list(ECR_PULL_ACTIONS), "Resource": [repo_arn]},
        ],
    }


def build_settings(pre: Preflight, settings: Settings) -> Settings:
    """The settings the build will run with, as far as they are known before any compile: the compiled model
    is somewhere under ``PREFIX/compilation-output/`` (the job's name comes later)."""
    values = pre.values()
    s = settings
    for name, value in (
        ("AWS_DEFAULT_REGION", pre.region),
        ("AWS_ACCOUNT_ID", pre.account),
        ("bucket", values.get("bucket", settings.bucket)),
        ("prefix", pre.prefix),
        ("IMAGE_REPO_NAME", values.get("IMAGE_REPO_NAME", settings.image_repo_name)),
        ("service_role", values.get("service_role", settings.service_role)),
        ("project_name", settings.project_name or "ncf-recommender-build"),
    ):
        s = s.with_value(name, value, "derived:account")
    if not s.neo_model_s3_uri or s.model_bucket != s.bucket:
        s = s.with_value("NEO_MODEL_S3_URI", f"{s.bucket}/{pre.prefix}/compilation-output", "derived:account")
    return s


def codebuild_policy(settings: Settings, base_image: str | None) -> dict[str, Any] | None:
    """The CodeBuild service role's policy: exactly what the permissions step would propose for a role with
    nothing (every pair it checks, implicitly denied, through ``iam.least_privilege_policy``)."""
    extra = source_permissions(settings.partition, settings.bucket, f"{settings.prefix}/{SOURCE_KEY}")
    pairs = required_permissions(settings, extra, base_image)
    return least_privilege_policy(PermissionResult(p, "implicitDeny") for p in pairs)


def plan(pre: Preflight, settings: Settings, run_id: str, *, base_image: str | None = None) -> list[PlannedResource]:
    """Every missing input as a resource with its documents, in the order ``create`` makes them."""
    partition = partition_for(pre.region)
    values = pre.values()
    tags = tags_for(run_id)
    bsettings = build_settings(pre, settings)
    out: list[PlannedResource] = []
    for i in pre.missing:
        if i.kind == BUCKET:
            docs: dict[str, Any] = {
                "CreateBucketConfiguration": _bucket_configuration(pre.region) or "(none: us-east-1)",
                "PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK,
                "ServerSideEncryptionConfiguration": ENCRYPTION,
            }
            arn = f"arn:{partition}:s3:::{i.value}"
            out.append(PlannedResource(BUCKET, i.name, i.value, arn, pre.region, docs, tags))
        elif i.name == "sagemaker_role":
            policy = sagemaker_policy(
                partition,
                pre.region,
                pre.account,
                values.get("bucket", settings.bucket),
                pre.prefix,
                values.get("IMAGE_REPO_NAME", settings.image_repo_name),
            )
            docs = {"AssumeRolePolicyDocument": trust_policy("sagemaker.amazonaws.com"), SAGEMAKER_POLICY: policy}
            out.append(PlannedResource(ROLE, i.name, i.resource_name, i.value, "global", docs, tags))
        elif i.name == "service_role":
            docs = {"AssumeRolePolicyDocument": trust_policy("codebuild.amazonaws.com")}
            build_policy = codebuild_policy(bsettings, base_image)
            if build_policy is not None:
                docs[CODEBUILD_POLICY] = build_policy
            out.append(PlannedResource(ROLE, i.name, i.resource_name, i.value, "global", docs, tags))
        else:
            arn = f"arn:{partition}:ecr:{pre.region}:{pre.account}:repository/{i.value}"
            docs = {"imageScanningConfiguration": {"scanOnPush": True}, "imageTagMutability": "MUTABLE"}
            out.append(PlannedResource(REPOSITORY, i.name, i.value, arn, pre.region, docs, tags))
    return out


def plan_text(resources: Sequence[PlannedResource]) -> str:
    return "\n".join(r.describe() for r in resources)


# ------------------------------------------------------------------------------------------------- create

PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]}


def _bucket_configuration(region: str) -> dict[str, str] | None:
    """S3 CreateBucket: outside us-east-1 the region goes in LocationConstraint; in us-east-1 none is given
    (naming us-east-1 there is refused with InvalidLocationConstraint)."""
    return None if region == "us-east-1" else {"LocationConstraint": region}


@dataclass(frozen=True)
class Created:
    """What ncf-tui made: kept in the run state, matched against the resource's tags at teardown."""

    kind: str
    setting: str
    name: str
    arn: str
    region: str
    run_id: str
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Created:
        return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__ if k in data})


def _aws_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def create(
    aws: Aws,
    resources: Sequence[PlannedResource],
    run_id: str,
    *,
    emit: Emit = discard,
    on_created: Callable[[Created], None] = lambda _c: None,
) -> list[Created]:
    """Create each planned resource, tagged and recorded (``on_created``) as soon as AWS has it."""
    from .aws import aws_errors

    made: list[Created] = []
    for r in resources:
        with aws_errors(aws.target):
            regional = _regional(aws, r.region)
            if r.kind == BUCKET:
                s3 = regional.client("s3")
                config = _bucket_configuration(r.region)
                s3.create_bucket(Bucket=r.name, **({"CreateBucketConfiguration": config} if config else {}))
                record = Created(r.kind, r.setting, r.name, r.arn, r.region, run_id)
                on_created(record)  # recorded before its configuration: a failure below leaves it known
                s3.put_public_access_block(Bucket=r.name, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
                s3.put_bucket_encryption(Bucket=r.name, ServerSideEncryptionConfiguration=ENCRYPTION)
                s3.put_bucket_tagging(Bucket=r.name, Tagging={"TagSet": _aws_tags(r.tags)})
            elif r.kind == ROLE:
                iam = aws.client("iam")
                path = r.arn.split(":role", 1)[1].rsplit("/", 1)[0] + "/"
                iam.create_role(
                    RoleName=r.name,
                    Path=path,
                    AssumeRolePolicyDocument=json.dumps(r.documents["AssumeRolePolicyDocument"]),
                    Description=f"Created by ncf-tui for run {run_id}",
                    Tags=_aws_tags(r.tags),
                )
                record = Created(r.kind, r.setting, r.name, r.arn, r.region, run_id)
                on_created(record)
                for doc_name, doc in r.documents.items():
                    if doc_name != "AssumeRolePolicyDocument":
                        iam.put_role_policy(RoleName=r.name, PolicyName=doc_name, PolicyDocument=json.dumps(doc))
            else:
                regional.client("ecr").create_repository(
                    repositoryName=r.name,
                    imageTagMutability="MUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                    tags=_aws_tags(r.tags),
                )
                record = Created(r.kind, r.setting, r.name, r.arn, r.region, run_id)
                on_created(record)
        made.append(record)
        emit(ResourceEvent(setting=r.setting, resource=r.kind, name=r.name, arn=r.arn, status="created"))
    return made


def _regional(aws: Aws, region: str) -> Aws:
    if region in ("global", aws.region):
        return aws
    from .aws import Aws as AwsClass

    return AwsClass(replace(aws.target, region=region))


# ----------------------------------------------------------------------------------------------- teardown


@dataclass
class TeardownItem:
    """One recorded resource: ``ours`` when its tags agree with the state; ``empty`` lists what ncf-tui
    wrote into it (object keys, image digests) and ``foreign`` counts what it holds that ncf-tui did not."""

    record: Created
    ours: bool
    reason: str = ""
    empty: list[str] = field(default_factory=list)
    foreign: int = 0
    deleted: bool = False

    def line(self) -> str:
        r = self.record
        if not self.ours:
            return f"- keep {r.kind} {r.name}: {self.reason}"
        what = f" (and the {len(self.empty)} item(s) ncf-tui wrote in it)" if self.empty else ""
        keep = f"; {self.foreign} item(s) ncf-tui did not write stay, so it stays too" if self.foreign else ""
        return f"- delete {r.kind} {r.name}{what}{keep}"


def _tags_of(aws: Aws, record: Created) -> dict[str, str] | None:
    """The resource's tags; None when it no longer exists."""
    from botocore.exceptions import ClientError

    from .aws import aws_errors, error_code

    try:
        with aws_errors(aws.target):
            if record.kind == BUCKET:
                try:
                    tagset = _regional(aws, record.region).client("s3").get_bucket_tagging(Bucket=record.name)["TagSet"]
                except ClientError as exc:
                    if error_code(exc) == "NoSuchTagSet":
                        return {}
                    raise
                return {t["Key"]: t["Value"] for t in tagset}
            if record.kind == ROLE:
                iam = aws.client("iam")
                tags = iam.list_role_tags(RoleName=record.name)["Tags"]
                return {t["Key"]: t["Value"] for t in tags}
            ecr = _regional(aws, record.region).client("ecr")
            arn = ecr.describe_repositories(repositoryNames=[record.name])["repositories"][0]["repositoryArn"]
            return {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=arn)["tags"]}
    except ClientError as exc:
        if error_code(exc) in {"NoSuchBucket", "NoSuchEntity", "RepositoryNotFoundException", "404"}:
            return None
        raise


def recorded(state_steps: Mapping[str, Any]) -> list[Created]:
    """What the run state says ncf-tui created (the ``account`` step's record, finished or not)."""
    entry = state_steps.get("account") or {}
    return [Created.from_dict(c) for c in entry.get("created", []) if isinstance(c, dict)]


def written_by_run(state_steps: Mapping[str, Any], prefix: str) -> tuple[list[str], set[str]]:
    """The key prefixes and image digests the run's steps wrote: its input archives (``PREFIX/RUN/``), its Neo
    jobs' outputs, its build source; the image digests of its build and verify steps."""
    run_id = str((state_steps.get("account") or {}).get("run_id") or "")
    keys = [f"{prefix}/{SOURCE_KEY}"]
    if run_id:
        keys.append(f"{prefix}/{run_id}/")
    for job in ((state_steps.get("compile") or {}).get("jobs") or {}).values():
        if not isinstance(job, dict):
            continue
        for uri in (job.get("input_uri"), job.get("output_uri")):
            key = str(uri or "").removeprefix("s3://").partition("/")[2]
            if key:
                keys.append(key if key.endswith("/") or key.endswith(".tar.gz") else key + "/")
    digests = {
        str(d)
        for d in (
            (state_steps.get("verify") or {}).get("digest"),
            ((state_steps.get("build") or {}).get("values") or {}).get("image_digest"),
        )
        if d
    }
    return keys, digests


def teardown_plan(aws: Aws, state_steps: Mapping[str, Any]) -> list[TeardownItem]:
    """Each recorded resource, ``ours`` only where it exists and its tags say ncf-tui made it in this run."""
    entry = state_steps.get("account") or {}
    prefix = str(entry.get("prefix") or "ncf-tui")
    keys, digests = written_by_run(state_steps, prefix)
    items: list[TeardownItem] = []
    for rec in recorded(state_steps):
        tags = _tags_of(aws, rec)
        if tags is None:
            items.append(TeardownItem(rec, False, "it no longer exists"))
            continue
        if tags.get(MANAGED_BY[0]) != MANAGED_BY[1] or tags.get(RUN_TAG) != rec.run_id:
            why = f"it is not tagged {MANAGED_BY[0]}={MANAGED_BY[1]}, {RUN_TAG}={rec.run_id}: ncf-tui did not create it"
            items.append(TeardownItem(rec, False, why))
            continue
        item = TeardownItem(rec, True)
        if rec.kind == BUCKET:
            item.empty, item.foreign = _bucket_contents(aws, rec, keys)
        elif rec.kind == REPOSITORY:
            item.empty, item.foreign = _repository_contents(aws, rec, digests)
        items.append(item)
    return items


def _bucket_contents(aws: Aws, rec: Created, ours: Sequence[str]) -> tuple[list[str], int]:
    """(versions of the objects under ncf-tui's keys as ``key\\0versionId``, how many other versions there are)."""
    from .aws import aws_errors

    s3 = _regional(aws, rec.region).client("s3")
    mine: list[str] = []
    foreign = 0
    with aws_errors(aws.target):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=rec.name):
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                key = str(v["Key"])
                if any(key == k or (k.endswith("/") and key.startswith(k)) for k in ours):
                    mine.append(f"{key}\0{v.get('VersionId') or 'null'}")
                else:
                    foreign += 1
    return mine, foreign


def _repository_contents(aws: Aws, rec: Created, digests: set[str]) -> tuple[list[str], int]:
    from .aws import aws_errors

    ecr = _regional(aws, rec.region).client("ecr")
    mine: list[str] = []
    foreign = 0
    with aws_errors(aws.target):
        for page in ecr.get_paginator("list_images").paginate(repositoryName=rec.name):
            for image in page.get("imageIds", []):
                digest = str(image.get("imageDigest", ""))
                if digest in digests:
                    if digest not in mine:
                        mine.append(digest)
                else:
                    foreign += 1
    return mine, foreign


def teardown(aws: Aws, items: Sequence[TeardownItem], *, emit: Emit = discard) -> list[TeardownItem]:
    """Delete every item that is ncf-tui's: first what it wrote inside, then the resource when nothing else
    is left (repositories and buckets before the roles). Returns the items, ``deleted`` set."""
    from .aws import aws_errors

    order = {REPOSITORY: 0, BUCKET: 1, ROLE: 2}
    for item in sorted((i for i in items if i.ours), key=lambda i: order[i.record.kind]):
        rec = item.record
        with aws_errors(aws.target):
            regional = _regional(aws, rec.region)
            if rec.kind == BUCKET:
                s3 = regional.client("s3")
                for i in range(0, len(item.empty), 1000):  # DeleteObjects takes at most 1000 keys
                    batch = item.empty[i : i + 1000]
                    chunk = [dict(zip(("Key", "VersionId"), k.split("\0"), strict=True)) for k in batch]
                    s3.delete_objects(Bucket=rec.name, Delete={"Objects": chunk, "Quiet": True})
                if not item.foreign:
                    s3.delete_bucket(Bucket=rec.name)
            elif rec.kind == REPOSITORY:
                ecr = regional.client("ecr")
                if item.empty:
                    ecr.batch_delete_image(repositoryName=rec.name, imageIds=[{"imageDigest": d} for d in item.empty])
                if not item.foreign:
                    ecr.delete_repository(repositoryName=rec.name)
            else:
                _delete_role(aws, rec.name)
        item.deleted = not item.foreign
        why = "" if item.deleted else f"emptied of what ncf-tui wrote; {item.foreign} item(s) of others stay"
        status = "deleted" if item.deleted else "kept"
        emit(
            ResourceEvent(
                setting=rec.setting, resource=rec.kind, name=rec.name, arn=rec.arn, status=status, message=why
            )
        )
    return list(items)


def _delete_role(aws: Aws, name: str) -> None:
    """IAM DeleteRole refuses a role that still has inline policies, attached managed policies or instance
    profiles (DeleteConflict): those go first, whether or not the endpoint enforces it."""
    iam = aws.client("iam")
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy in page.get("PolicyNames", []):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for policy in page.get("AttachedPolicies", []):
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name):
        for profile in page.get("InstanceProfiles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
    iam.delete_role(RoleName=name)
