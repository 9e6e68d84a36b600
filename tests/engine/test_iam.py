"""IAM checks against the sandbox's real policy simulator over HTTP: allowed, denied, Deny wins, wildcards, fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.errors import ExitCode
from ncf_tui.engine.events import Event, PermissionEvent
from ncf_tui.engine.iam import (
    ECR_PUSH_ACTIONS,
    POLICY_NAME,
    Permission,
    PermissionsError,
    attach_fix,
    least_privilege_policy,
    model_object_arn,
    permissions_step,
    required_permissions,
    simulate,
    source_permissions,
)
from ncf_tui.engine.settings import Settings, resolve_settings, settings_step
from ncf_tui.sandbox.server import Sandbox

from .aws_kit import aws_for

sandbox_aws = aws_for


def validated_settings(sb: Sandbox, tmp_path: Path) -> Settings:
    uri = sb.suggested_settings()["NEO_MODEL_S3_URI"]
    s3, folder = sb.internal_client("s3"), uri.split("/", 1)[1]
    s3.put_object(Bucket=sb.names.bucket, Key=f"{folder}/model-ml_c5.tar.gz", Body=b"m")
    s3.put_object(Bucket=sb.names.bucket, Key=f"{folder}/ncf-model.json", Body=b"{}")
    flags = {**sb.suggested_settings(), "service_role": sb.names.codebuild_role_arn}
    return settings_step(sandbox_aws(sb), flags=flags, env={}, saved_dir=tmp_path)


class Recorder(list[Event]):
    def __call__(self, event: Event) -> None:
        self.append(event)

    def decisions(self) -> dict[tuple[str, str], str]:
        return {(e.action, e.resource): e.decision for e in self if isinstance(e, PermissionEvent)}


def put_role_policy(sb: Sandbox, name: str, statements: list[dict[str, Any]]) -> None:
    sb.internal_client("iam").put_role_policy(
        RoleName=sb.names.codebuild_role_name,
        PolicyName=name,
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )


def test_required_pairs_follow_the_seed_and_the_settings(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    pairs = [(p.action, p.resource) for p in required_permissions(s)]
    n = sandbox.names
    folder = f"{n.bucket_arn}/{n.prefix}/compilation-output/ncf-full-manual-norm"
    group = n.codebuild_log_group_arn
    assert pairs == [
        ("ecr:GetAuthorizationToken", "*"),
        *((a, n.ecr_repo_arn) for a in ECR_PUSH_ACTIONS),
        ("s3:GetObject", f"{folder}/model-ml_c5.tar.gz"),
        ("s3:GetObject", f"{folder}/ncf-model.json"),
        ("s3:ListBucket", n.bucket_arn),
        # CodeBuild's documented service-role policy: the three actions on the group and on "group:*"
        ("logs:CreateLogGroup", group),
        ("logs:CreateLogGroup", f"{group}:*"),
        ("logs:CreateLogStream", group),
        ("logs:CreateLogStream", f"{group}:*"),
        ("logs:PutLogEvents", group),
        ("logs:PutLogEvents", f"{group}:*"),
    ]
    assert len(ECR_PUSH_ACTIONS) == 7


def test_the_neo_base_image_and_the_s3_source_add_the_pairs_aws_checks(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    image = "785573368785.dkr.ecr.us-east-1.amazonaws.com/sagemaker-inference-pytorch:2.0-cpu-py3"
    source = source_permissions("aws", "bkt", "pre/source/ncf-tui-source.zip")
    pairs = [(p.action, p.resource) for p in required_permissions(s, source, base_image=image)]
    neo_repo = "arn:aws:ecr:us-east-1:785573368785:repository/sagemaker-inference-pytorch"
    assert [p for p in pairs if p[1] == neo_repo] == [
        ("ecr:BatchGetImage", neo_repo),
        ("ecr:GetDownloadUrlForLayer", neo_repo),
        ("ecr:BatchCheckLayerAvailability", neo_repo),
    ]
    assert pairs[-4:] == [
        ("s3:GetObject", "arn:aws:s3:::bkt/pre/source/ncf-tui-source.zip"),
        ("s3:GetObjectVersion", "arn:aws:s3:::bkt/pre/source/ncf-tui-source.zip"),
        ("s3:GetBucketAcl", "arn:aws:s3:::bkt"),
        ("s3:GetBucketLocation", "arn:aws:s3:::bkt"),
    ]
    # a China region's image: the registry's DNS suffix is read from the URI, and the partition follows
    cn = "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-inference-pytorch:2.0-cpu-py3"
    cn_pairs = [p.resource for p in required_permissions(s, base_image=cn) if p.sid == "NeoBaseImage"]
    assert set(cn_pairs) == {"arn:aws-cn:ecr:cn-north-1:727897471807:repository/sagemaker-inference-pytorch"}
    # the seeded role grants all of them (the sandbox seeds what CodeBuild's service-role page grants)
    report = permissions_step(
        sandbox_aws(sandbox),
        s,
        extra=source_permissions("aws", sandbox.names.bucket, "recommender-demo/source/x.zip"),
        base_image=image,
    )
    assert not report.denied and len(report.results) == 17 + 3 + 4


def test_model_object_arn_is_exact_or_the_prefix() -> None:
    base = resolve_settings(flags={"NEO_MODEL_S3_URI": "b/p/out", "AWS_DEFAULT_REGION": "us-east-1"}, env={})
    assert model_object_arn(base) == "arn:aws:s3:::b/p/out/*"
    assert (
        model_object_arn(Settings(neo_model_s3_uri="b/p/m.tar.gz", region="us-east-1")) == "arn:aws:s3:::b/p/m.tar.gz"
    )
    found = Settings(neo_model_s3_uri="b/p/out", region="cn-north-1", model_key="p/out/model.tar.gz")
    assert model_object_arn(found) == "arn:aws-cn:s3:::b/p/out/model.tar.gz"


def test_healthy_role_is_allowed_everything_with_matched_statements(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    rec = Recorder()
    report = permissions_step(sandbox_aws(sandbox), s, rec)
    assert report.verified and not report.denied and report.proposed_policy is None and not report.attached
    events = [e for e in rec if isinstance(e, PermissionEvent)]
    assert len(events) == len(required_permissions(s)) == 17
    assert {e.decision for e in events} == {"allowed"}
    assert all(m.startswith(sandbox.names.codebuild_policy_name + "@") for e in events for m in e.matched)


def test_missing_permissions_are_exactly_put_image_and_list_bucket(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("missing-permissions")
    s = validated_settings(sandbox, tmp_path)
    rec = Recorder()
    with pytest.raises(PermissionsError) as err:
        permissions_step(sandbox_aws(sandbox), s, rec, fix=False)
    assert err.value.exit_code == ExitCode.PREFLIGHT_FAILED
    report = err.value.report
    assert report is not None
    denied = {(r.permission.action, r.permission.resource) for r in report.denied}
    assert denied == {("ecr:PutImage", sandbox.names.ecr_repo_arn), ("s3:ListBucket", sandbox.names.bucket_arn)}
    assert {k for k, d in rec.decisions().items() if d != "allowed"} == denied
    assert report.proposed_policy == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EcrPush", "Effect": "Allow", "Action": ["ecr:PutImage"], "Resource": [sandbox.names.ecr_repo_arn]},
            {
                "Sid": "ModelList",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [sandbox.names.bucket_arn],
            },
        ],
    }
    assert '"ecr:PutImage"' in err.value.message  # the proposed policy is in the message
    assert "--yes" in (err.value.hint or "")
    roles = sandbox.internal_client("iam").list_role_policies(RoleName=sandbox.names.codebuild_role_name)
    assert POLICY_NAME not in roles["PolicyNames"]


def test_fix_attaches_the_proposed_policy_and_rechecks(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("missing-permissions")
    s = validated_settings(sandbox, tmp_path)
    offered: list[dict[str, Any]] = []

    def agree(policy: dict[str, Any]) -> bool:
        offered.append(policy)
        return True

    rec = Recorder()
    report = permissions_step(sandbox_aws(sandbox), s, rec, fix=agree)
    assert len(offered) == 1 and report.attached and not report.denied
    assert report.proposed_policy == offered[0]
    # 17 events for the first check, 17 for the re-check, all allowed the second time
    decisions = [e.decision for e in rec if isinstance(e, PermissionEvent)]
    assert len(decisions) == 34 and set(decisions[17:]) == {"allowed"}
    doc = sandbox.internal_client("iam").get_role_policy(
        RoleName=sandbox.names.codebuild_role_name, PolicyName=POLICY_NAME
    )["PolicyDocument"]
    assert doc == offered[0]


def test_fix_declined_leaves_the_role_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("missing-permissions")
    s = validated_settings(sandbox, tmp_path)
    with pytest.raises(PermissionsError, match="lacks 2 permission"):
        permissions_step(sandbox_aws(sandbox), s, fix=lambda policy: False)
    names = sandbox.internal_client("iam").list_role_policies(RoleName=sandbox.names.codebuild_role_name)
    assert names["PolicyNames"] == [sandbox.names.codebuild_policy_name]


def test_an_explicit_deny_overrides_the_allow_and_no_allow_is_proposed(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    put_role_policy(sandbox, "no-push", [{"Sid": "NoPush", "Effect": "Deny", "Action": "ecr:Put*", "Resource": "*"}])
    with pytest.raises(PermissionsError) as err:
        permissions_step(sandbox_aws(sandbox), s, fix=True)
    report = err.value.report
    assert report is not None and not report.attached
    (deny,) = report.denied
    assert (deny.permission.action, deny.decision) == ("ecr:PutImage", "explicitDeny")
    assert deny.matched and deny.matched[0].startswith("no-push@")
    assert report.proposed_policy is None
    assert "explicit Deny" in (err.value.hint or "") and "no-push" in err.value.message


def test_a_wildcard_policy_allows_everything(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    iam = sandbox.internal_client("iam")
    iam.delete_role_policy(RoleName=sandbox.names.codebuild_role_name, PolicyName=sandbox.names.codebuild_policy_name)
    put_role_policy(
        sandbox,
        "wide",
        [
            {"Effect": "Allow", "Action": ["ecr:*", "logs:Create*", "logs:PutLogEvents"], "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": f"{sandbox.names.bucket_arn}/*"},
            {"Effect": "Allow", "Action": "s3:List?ucket", "Resource": "arn:aws:s3:::ncf-tui-*"},
        ],
    )
    report = permissions_step(sandbox_aws(sandbox), s)
    assert not report.denied and all(r.matched == (r.matched[0],) for r in report.results)
    # ...and without the bucket statement, ListBucket falls to an implicit deny
    put_role_policy(
        sandbox, "wide", [{"Effect": "Allow", "Action": ["ecr:*", "logs:*", "s3:GetObject"], "Resource": "*"}]
    )
    with pytest.raises(PermissionsError) as err:
        permissions_step(sandbox_aws(sandbox), s)
    assert err.value.report is not None
    assert [r.permission.action for r in err.value.report.denied] == ["s3:ListBucket"]


def test_a_caller_who_may_not_simulate_gets_told_exactly_what_it_lacks(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    iam = sandbox.internal_client("iam")
    iam.create_user(UserName="ci-deployer")
    can = {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "iam:GetRole", "ecr:*", "s3:*"], "Resource": "*"}
    iam.put_user_policy(
        UserName="ci-deployer", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [can]})
    )
    key = iam.create_access_key(UserName="ci-deployer")["AccessKey"]
    aws = Aws(
        AwsTarget(
            region=sandbox.region,
            endpoint_url=sandbox.endpoint_url,
            credentials={"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]},
        )
    )
    rec = Recorder()
    report = permissions_step(aws, s, rec, fix=True)
    assert not report.verified and not report.attached and report.proposed_policy is None
    assert "arn:aws:iam::123456789012:user/ci-deployer may not call iam:SimulatePrincipalPolicy" in report.warning
    assert sandbox.names.codebuild_role_arn in report.warning
    assert set(rec.decisions().values()) == {"unverified"} and len(rec.decisions()) == 17


def test_simulate_chunks_resources_and_follows_markers(sandbox: Sandbox) -> None:
    bucket = sandbox.names.bucket_arn
    perms = [Permission("s3:GetObject", f"{bucket}/k{i}", "ModelRead", "") for i in range(45)]
    perms += [Permission("s3:PutObject", f"{bucket}/k{i}", "X", "") for i in range(45)]
    perms.append(Permission("s3:GetObject", "arn:aws:s3:::other-bucket/k", "ModelRead", ""))
    results = simulate(sandbox_aws(sandbox), sandbox.names.codebuild_role_arn, perms, page_size=7)
    assert len(results) == len(perms)
    got = {(r.permission.action, r.permission.resource): r.decision for r in results}
    assert sum(d == "allowed" for d in got.values()) == 45
    assert got[("s3:PutObject", f"{bucket}/k3")] == "implicitDeny"
    assert got[("s3:GetObject", "arn:aws:s3:::other-bucket/k")] == "implicitDeny"


def test_throttled_simulations_still_give_every_verdict(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    sandbox.reset("throttling")
    report = permissions_step(sandbox_aws(sandbox), s)
    assert len(report.results) == 17 and not report.denied


def test_a_missing_role_is_a_preflight_failure(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    gone = s.with_value("service_role", "arn:aws:iam::123456789012:role/gone", "flag")
    with pytest.raises(PermissionsError, match="does not exist") as err:
        permissions_step(sandbox_aws(sandbox), gone)
    assert err.value.exit_code == 3
    with pytest.raises(PermissionsError, match="no CodeBuild service role is set"):
        permissions_step(sandbox_aws(sandbox), s.with_value("service_role", "", "flag"))


def test_attaching_twice_keeps_what_the_first_fix_granted(sandbox: Sandbox, tmp_path: Path) -> None:
    s = validated_settings(sandbox, tmp_path)
    aws = sandbox_aws(sandbox)
    role = sandbox.names.codebuild_role_arn
    first = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EcrPush", "Effect": "Allow", "Action": ["ecr:PutImage"], "Resource": [sandbox.names.ecr_repo_arn]}
        ],
    }
    second = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EcrPush",
                "Effect": "Allow",
                "Action": ["ecr:PutImage"],
                "Resource": [sandbox.names.ecr_repo_arn + "-2"],
            }
        ],
    }
    attach_fix(aws, role, first)
    doc = attach_fix(aws, role, second)
    assert [st["Sid"] for st in doc["Statement"]] == ["EcrPush", "EcrPush2"]
    assert attach_fix(aws, role, second) == doc  # idempotent
    assert s.service_role == role


def test_least_privilege_policy_groups_by_statement_and_uses_star_only_for_the_token() -> None:
    from ncf_tui.engine.iam import PermissionResult

    s = Settings(
        region="us-east-1", account_id="123456789012", image_repo_name="r", neo_model_s3_uri="b/p", project_name="pr"
    )
    results = [PermissionResult(p, "implicitDeny") for p in required_permissions(s)]
    policy = least_privilege_policy(results)
    assert policy is not None
    sids = [st["Sid"] for st in policy["Statement"]]
    assert sids == ["EcrAuth", "EcrPush", "ModelRead", "ModelList", "BuildLogs"]
    stars = [st for st in policy["Statement"] if "*" in st["Resource"]]
    assert [st["Action"] for st in stars] == [["ecr:GetAuthorizationToken"]]
    assert policy["Statement"][1]["Action"] == list(ECR_PUSH_ACTIONS)


def test_a_boundary_denial_is_explained_and_no_attach_is_offered(sandbox: Sandbox, tmp_path: Path) -> None:
    # boundary-denied: the role's own policy allows ecr:PutImage, its permissions boundary does not; IAM's
    # simulator says so in PermissionsBoundaryDecisionDetail, and no inline policy can lift a boundary
    sandbox.reset("boundary-denied")
    s = validated_settings(sandbox, tmp_path)
    offered: list[dict[str, Any]] = []

    def agree(policy: dict[str, Any]) -> bool:
        offered.append(policy)
        return True

    rec = Recorder()
    with pytest.raises(PermissionsError) as err:
        permissions_step(sandbox_aws(sandbox), s, rec, fix=agree)
    assert offered == [], "an attach was offered for a denial no inline policy can fix"
    assert err.value.exit_code == ExitCode.PREFLIGHT_FAILED
    report = err.value.report
    assert report is not None and report.proposed_policy is None and not report.attached
    assert [(r.permission.action, r.decision, r.blocked_by) for r in report.denied] == [
        ("ecr:PutImage", "implicitDeny", "permissions boundary")
    ]
    assert "refused by the role's permissions boundary" in err.value.message
    assert "no inline policy on the role can allow them" in err.value.message
    assert "proposed least-privilege policy" not in err.value.message
    assert "permissions boundary must allow" in (err.value.hint or "")
    capped = [e for e in rec if isinstance(e, PermissionEvent) and e.blocked_by]
    assert [(e.action, e.blocked_by) for e in capped] == [("ecr:PutImage", "permissions boundary")]
    names = sandbox.internal_client("iam").list_role_policies(RoleName=sandbox.names.codebuild_role_name)
    assert names["PolicyNames"] == [sandbox.names.codebuild_policy_name]


def test_every_report_says_what_the_simulation_leaves_out(sandbox: Sandbox, tmp_path: Path) -> None:
    from ncf_tui.engine.events import StepEvent
    from ncf_tui.engine.iam import SIMULATION_LIMITS

    s = validated_settings(sandbox, tmp_path)
    rec = Recorder()
    report = permissions_step(sandbox_aws(sandbox), s, rec)
    notes = [e.message for e in rec if isinstance(e, StepEvent) and e.status == "note"]
    assert notes == [SIMULATION_LIMITS]
    assert report.to_dict()["limits"] == SIMULATION_LIMITS
    assert "resource-based policies" in SIMULATION_LIMITS and "SCP" in SIMULATION_LIMITS


def test_an_scp_refusal_is_read_from_the_result_and_never_proposed() -> None:
    # No organisation exists in the sandbox (and SCPs never apply to an organisation's management account), so
    # this reads results shaped as botocore's iam model documents them: OrganizationsDecisionDetail on the
    # top-level EvaluationResult, PermissionsBoundaryDecisionDetail on the resource-specific one too.
    from ncf_tui.engine.iam import BOUNDARY, SCP, PermissionResult, _cap, _refused

    by_scp = {"EvalDecision": "implicitDeny", "OrganizationsDecisionDetail": {"AllowedByOrganizations": False}}
    assert _refused(by_scp, "OrganizationsDecisionDetail", "AllowedByOrganizations")
    assert not _refused({"EvalDecision": "implicitDeny"}, "OrganizationsDecisionDetail", "AllowedByOrganizations")
    specific = {"EvalResourceDecision": "explicitDeny"}
    assert _cap(specific, True, "explicitDeny") == SCP
    boundary = {"PermissionsBoundaryDecisionDetail": {"AllowedByPermissionsBoundary": False}}
    assert _cap(boundary, True, "implicitDeny") == BOUNDARY
    assert _cap({"PermissionsBoundaryDecisionDetail": {"AllowedByPermissionsBoundary": True}}, False, "allowed") == ""
    perm = Permission("ecr:PutImage", "arn:aws:ecr:us-east-1:123456789012:repository/r", "EcrPush", "")
    capped = [PermissionResult(perm, "implicitDeny", (), SCP)]
    assert least_privilege_policy(capped) is None
