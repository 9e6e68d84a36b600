"""Checks beyond the four troubleshooting ones: is the account ready for a build at all?

Credentials valid and for the expected account; the CodeBuild service role exists and IAM's simulator allows
every (action, resource) the build needs; the project exists with privileged mode and the five variables; the
ECR repository exists; the build image is not one CodeBuild deprecated. Each failure carries the one safe fix
that cures it where there is one (attach the least-privilege policy, switch privileged mode on, fill the
missing variables, create the repository, move to the current image).
"""

from __future__ import annotations

import json

from ..aws import aws_errors, error_code, error_message
from ..codebuild import DEFAULT_IMAGE, VARIABLE_NAMES, image_advice
from ..errors import NcfError
from ..iam import (
    BOUNDARY,
    POLICY_NAME,
    SIMULATION_LIMITS,
    attach_fix,
    check_permissions,
    role_name,
    source_permissions,
)
from ..settings import DEPRECATED_BUILD_IMAGES, check_value
from .base import FAIL, PASS, WARN, ChecklistContext, CheckResult, bullet, update_project

TITLES = {
    "credentials": "Credentials are valid and for the expected account",
    "service-role": "CodeBuild service role exists and has the build's permissions",
    "project": "CodeBuild project exists, with privileged mode and the five variables",
    "ecr-repository": "ECR repository exists",
    "build-image": "Build image is not deprecated",
}


def check_credentials(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["credentials"]
    try:
        me = ctx.identity()
    except NcfError as exc:
        return CheckResult("credentials", title, FAIL, exc.message, exc.hint or "check the AWS profile or keys")
    expected = ctx.settings.account_id
    where = ctx.settings.source("AWS_ACCOUNT_ID")
    try:
        variable = ctx.effective().account_id
    except Exception:  # the project cannot be read: judged by the project check
        variable = expected
    evidence = f"{me.arn} (account {me.account}) in {ctx.aws.region}"
    for value, said in ((expected, f"AWS_ACCOUNT_ID from {where}"), (variable, "the project's AWS_ACCOUNT_ID")):
        if value and value != me.account:
            return CheckResult(
                "credentials",
                title,
                FAIL,
                f"the credentials are {evidence}, but {said} is {value}",
                f"use credentials of account {value} (--profile), or set AWS_ACCOUNT_ID={me.account}",
            )
    matches = f"; matches AWS_ACCOUNT_ID {expected}" if expected else ""
    return CheckResult("credentials", title, PASS, evidence + matches)


def _refused_by(cap: str) -> str:
    return ", refused by the role's permissions boundary" if cap == BOUNDARY else ", refused by an SCP"


def check_service_role(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["service-role"]
    s = ctx.effective()
    if not s.service_role:
        return CheckResult(
            "service-role", title, FAIL, "no CodeBuild service role is set", "set service_role (NCF_TUI_SERVICE_ROLE)"
        )
    extra = []
    location = str(((ctx.project() or {}).get("source") or {}).get("location") or "")
    if ((ctx.project() or {}).get("source") or {}).get("type") == "S3" and "/" in location:
        bucket, _, key = location.partition("/")
        extra = source_permissions(s.partition, bucket, key)
    compiled = ctx.compiled()
    base_image = compiled.inference_image if compiled is not None else None
    try:
        report = check_permissions(ctx.aws, s, extra=extra, base_image=str(base_image) if base_image else None)
    except NcfError as exc:
        return CheckResult("service-role", title, FAIL, exc.message, exc.hint or "")
    if not report.verified:
        return CheckResult("service-role", title, WARN, report.warning, "grant the caller iam:SimulatePrincipalPolicy")
    lines = [
        f"{r.permission.action} on {r.permission.resource}: {r.decision}"
        + (f" by {', '.join(r.matched)}" if r.matched and r.decision == "explicitDeny" else "")
        + (_refused_by(r.blocked_by) if r.blocked_by else "")
        for r in report.denied
    ]
    if not lines:
        return CheckResult(
            "service-role",
            title,
            PASS,
            f"{s.service_role} exists; IAM's simulator allows all {len(report.results)} actions the build needs",
        )
    evidence = f"{s.service_role} lacks {len(lines)} permission(s):\n" + bullet(lines)
    policy = report.proposed_policy
    explicit = report.explicit_denies
    fix_parts = []
    if policy is not None:
        fix_parts.append(
            f"attach the inline policy {POLICY_NAME} to {role_name(s.service_role)}: "
            + json.dumps(policy, separators=(",", ":"))
        )
    if explicit:
        fix_parts.append("remove the Deny statement(s) " + ", ".join(m for r in explicit for m in r.matched))
    if report.capped:
        fix_parts.append(
            "no inline policy can lift what the role's permissions boundary or an SCP refuses: "
            "have its owner allow those actions there"
        )
    evidence += f"\n  ({SIMULATION_LIMITS})"
    apply = None
    if policy is not None and not explicit:
        role, doc = s.service_role, policy

        def apply() -> str:
            attach_fix(ctx.aws, role, doc)
            return f"attached inline policy {POLICY_NAME} to {role_name(role)}"

    return CheckResult("service-role", title, FAIL, evidence, "; ".join(fix_parts), apply)


def check_project(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["project"]
    project = ctx.project()
    name = ctx.project_name
    if project is None:
        return CheckResult(
            "project",
            title,
            FAIL,
            f"no CodeBuild project named {name!r} in {ctx.aws.region}",
            f"the pipeline's build step creates it: {_build_command(ctx)}; or create it by hand with privileged "
            f"mode on, the five variables and the service role {ctx.effective().service_role or '(service_role)'}; "
            "or set project_name (NCF_TUI_PROJECT_NAME) to the project you use",
        )
    env = project.get("environment") or {}
    variables = ctx.project_variables()
    problems: list[str] = []
    fixes: list[str] = []
    changes: dict[str, str] = {}
    privileged = bool(env.get("privilegedMode"))
    if not privileged:
        problems.append("privileged mode is off: docker in the build cannot reach a daemon")
        fixes.append(f"turn privileged mode on (environment.privilegedMode) for {name}")
    for var in VARIABLE_NAMES:
        have = variables.get(var)
        answer = ctx.settings.value(var)
        usable = bool(answer) and check_value(var, answer).ok
        if have is None or not str(have.get("value", "")).strip():
            problems.append(f"{var} is not set on the project")
            if usable:
                changes[var] = check_value(var, answer).value
                fixes.append(f"set {var}={changes[var]} (from {ctx.settings.source(var)})")
            else:
                fixes.append(f"set {var} on the project")
            continue
        if have.get("type", "PLAINTEXT") != "PLAINTEXT":
            continue  # a Parameter Store / Secrets Manager name: its value is not ours to judge
        verdict = check_value(var, str(have["value"]))
        if not verdict.ok:
            problems.append(f"{var}={str(have['value'])!r}: {verdict.reason}")
            fixes.append(f"correct {var}")
        elif verdict.value != str(have["value"]):
            problems.append(f"{var}={str(have['value'])!r}: " + "; ".join(verdict.notes))
            changes[var] = verdict.value
            fixes.append(f"set {var}={verdict.value}")
    if not problems:
        listed = ", ".join(f"{k}={variables[k].get('value')}" for k in VARIABLE_NAMES)
        return CheckResult("project", title, PASS, f"{name}: privileged mode on; {listed}")
    apply = None
    safe = not privileged or changes
    if safe:

        def apply() -> str:
            extra = {} if privileged else {"privilegedMode": True}
            update_project(ctx, variables=changes or None, **extra)
            done = ([] if privileged else ["privileged mode on"]) + [f"{k}={v}" for k, v in changes.items()]
            return f"updated CodeBuild project {name}: " + ", ".join(done)

    return CheckResult("project", title, FAIL, f"{name}:\n" + bullet(problems), "; ".join(fixes), apply)


def _build_command(ctx: ChecklistContext) -> str:
    """The run that reaches the build step: the unfinished run of the state resumed, else a new run."""
    if ctx.state is not None and ctx.state_path is not None and not ctx.state.finished:
        return ctx.command("--resume", "--state", str(ctx.state_path), "--until", "build")
    return ctx.command("--until", "build")


def check_ecr_repository(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["ecr-repository"]
    s = ctx.effective()
    name = s.image_repo_name
    if not name or not check_value("IMAGE_REPO_NAME", name).ok:
        return CheckResult("ecr-repository", title, FAIL, f"IMAGE_REPO_NAME {name!r} is not a repository name", "")
    ecr = ctx.aws.client("ecr")
    try:
        with aws_errors(ctx.aws.target):
            repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    except NcfError:
        raise
    except Exception as exc:
        if error_code(exc) != "RepositoryNotFoundException":
            return CheckResult("ecr-repository", title, WARN, f"could not check {name}: {error_message(exc)}", "")

        def apply() -> str:
            with aws_errors(ctx.aws.target):
                ecr.create_repository(repositoryName=name, imageTagMutability="MUTABLE")
            return f"created ECR repository {name} in {ctx.aws.region}"

        return CheckResult(
            "ecr-repository",
            title,
            FAIL,
            f"ECR repository {name!r} does not exist in {ctx.aws.region}",
            f"create it: aws ecr create-repository --repository-name {name} --region {ctx.aws.region}",
            apply,
        )
    return CheckResult("ecr-repository", title, PASS, f"{repo.get('repositoryUri', name)} exists")


def check_build_image(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["build-image"]
    s = ctx.effective()
    image = s.build_image
    where = "the project's image" if ctx.project() is not None else f"build_image from {s.source('build_image')}"
    advice = image_advice(image)
    if advice is None and image in DEPRECATED_BUILD_IMAGES:
        advice = f"CodeBuild deprecated {image} on {DEPRECATED_BUILD_IMAGES[image]}"
    if advice is None:
        return CheckResult("build-image", title, PASS, f"{where}: {image}")
    apply = None
    if ctx.project() is not None:

        def apply() -> str:
            update_project(ctx, image=DEFAULT_IMAGE)
            return f"the project {ctx.project_name} now builds on {DEFAULT_IMAGE}"

    return CheckResult("build-image", title, WARN, f"{where}: {image}: {advice}", f"use {DEFAULT_IMAGE}", apply)
