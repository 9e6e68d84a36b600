"""The checklist's ``build`` and ``image`` checks: why the latest build failed, and whether its image holds the model.

``build`` reads the project's latest build: its status, the phase that failed with CodeBuild's reason, and the
FIRST error lines of its CloudWatch log (the tail of a failed build is mostly the clean-up after the
cause). The first line that says why is classified: AccessDenied names the action and the resource and
points at the service-role check; "Cannot connect to the Docker daemon" is privileged mode off (the project
check); an S3 404 or ``NCF-TUI: error model-not-found`` is ``neo-model``'s; a failed COPY is ``image``'s. When the cause
has been fixed since (the role now allows it, privileged mode is on, the model is there), the build is only a
warning: the next build should pass.

``image`` reads the same log for the model download, the ``NCF-TUI: model-sha256`` line and the COPY of the
model into the image, then asks ECR for the pushed tag and compares the sha256 the build printed of the
compiled model with the one inside the Neo archive NEO_MODEL_S3_URI leads to.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..artifact import compiled_model_in
from ..aws import aws_errors
from ..codebuild import FAILED_STATES
from ..ecr import verify_image
from ..errors import NcfError
from ..events import discard
from ..iam import (
    POLICY_NAME,
    Permission,
    PermissionResult,
    attach_fix,
    least_privilege_policy,
    required_permissions,
    role_name,
    simulate,
)
from ..logs import BuildValues
from ..settings import Settings, validate
from .base import FAIL, PASS, SKIP, WARN, ChecklistContext, CheckResult, bullet, update_project

TITLES = {
    "build": "Latest build succeeded",
    "image": "Image contains the model",
}
MAX_ERROR_LINES = 6
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024

_ERROR = re.compile(
    r"error|denied|cannot|failed|not found|no such file|exception|fatal|refused|unauthori[sz]ed|forbidden|"
    r"\b40[34]\b",
    re.IGNORECASE,
)
_DENIED_CALL = re.compile(r"\((AccessDenied\w*|Forbidden|UnauthorizedOperation)\) when calling the (\w+) operation")
# `aws s3 cp` HEADs the object first; S3 answers a HEAD with a bare status code, so the CLI prints
# "An error occurred (403) when calling the HeadObject operation: Forbidden". S3 also answers 403 for a key that
# does not exist when the caller lacks s3:ListBucket (S3 API Reference, HeadObject), so both are named.
_HEAD_403 = re.compile(r"\(403\) when calling the (HeadObject) operation")
_NOT_AUTHORIZED = re.compile(r"not authorized to perform:? ([\w-]+:[\w*]+)(?: on resource:? (\S+))?")
_DOCKER = re.compile(r"Cannot connect to the Docker daemon", re.IGNORECASE)
_S3_404 = re.compile(
    r"NCF-TUI: error model-not-found|NoSuchKey|\(404\)|404 Not Found|\(NotFound\) when calling", re.IGNORECASE
)
_COPY = re.compile(
    r"COPY failed|NCF-TUI: error model-missing|\bCOPY\b.*(?:not found|no such file|failed)|failed to compute cache key",
    re.IGNORECASE,
)
_MISSING_VARS = re.compile(r"NCF-TUI: error missing-variables")
_DOWNLOAD = re.compile(r"^Downloading (s3://\S+)")
_COPY_MODEL = re.compile(r"\bCOPY\s+(?:--\S+\s+)*model/?\s")
_OPERATION_ACTION = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "GetAuthorizationToken": "ecr:GetAuthorizationToken",
    "BatchCheckLayerAvailability": "ecr:BatchCheckLayerAvailability",
    "InitiateLayerUpload": "ecr:InitiateLayerUpload",
    "UploadLayerPart": "ecr:UploadLayerPart",
    "CompleteLayerUpload": "ecr:CompleteLayerUpload",
    "PutImage": "ecr:PutImage",
    "BatchGetImage": "ecr:BatchGetImage",
    "GetDownloadUrlForLayer": "ecr:GetDownloadUrlForLayer",
}


def output_lines(messages: list[str]) -> list[str]:
    """The lines the build's commands printed: CodeBuild's own ``[Container]`` events are left out whole
    (a ``Running command`` event carries the command's script, whose echo strings are not output)."""
    out: list[str] = []
    for message in messages:
        if message.startswith("[Container]"):
            continue
        out += message.splitlines()
    return out


def first_error_lines(lines: list[str], limit: int = MAX_ERROR_LINES) -> list[str]:
    return [line.strip() for line in lines if _ERROR.search(line)][:limit]


@dataclass(frozen=True)
class Cause:
    """What the first telling log line says went wrong, and which check's fix cures it."""

    kind: str  # access-denied | docker-daemon | model-not-found | copy-failed | missing-variables | unknown
    line: str = ""
    action: str = ""
    resource: str = ""
    note: str = ""

    @property
    def related(self) -> str:
        return {
            "access-denied": "service-role",
            "docker-daemon": "project",
            "model-not-found": "neo-model",
            "copy-failed": "image",
            "missing-variables": "project",
        }.get(self.kind, "")


def classify(lines: list[str], settings: Settings) -> Cause:
    """The cause named by the first line that names one (log order, not a fixed precedence)."""
    for line in lines:
        m = _DENIED_CALL.search(line)
        if m:
            action = _OPERATION_ACTION.get(m.group(2), m.group(2))
            return Cause("access-denied", line.strip(), action, _resource_for(action, settings))
        m = _HEAD_403.search(line)
        if m:
            action = _OPERATION_ACTION[m.group(1)]
            note = (
                "S3 answers a HEAD with 403 both when s3:GetObject is denied and when the object is missing and "
                "the role may not s3:ListBucket"
            )
            return Cause("access-denied", line.strip(), action, _resource_for(action, settings), note)
        m = _NOT_AUTHORIZED.search(line)
        if m:
            return Cause("access-denied", line.strip(), m.group(1), m.group(2) or _resource_for(m.group(1), settings))
        if _DOCKER.search(line):
            return Cause("docker-daemon", line.strip())
        if _S3_404.search(line):
            return Cause("model-not-found", line.strip())
        if _COPY.search(line):
            return Cause("copy-failed", line.strip())
        if _MISSING_VARS.search(line):
            return Cause("missing-variables", line.strip())
    return Cause("unknown")


def _resource_for(action: str, s: Settings) -> str:
    """The ARN the build used ``action`` on, as the IAM check names it."""
    from ..iam import model_object_arn

    if action == "s3:ListBucket":
        return f"arn:{s.partition}:s3:::{s.model_bucket}"
    if action.startswith("s3:"):
        return model_object_arn(s)
    if action == "ecr:GetAuthorizationToken":
        return "*"
    if action.startswith("ecr:"):
        return s.repository_arn
    return "*"


def _fix_for(cause: Cause, ctx: ChecklistContext) -> str:
    s = ctx.effective()
    if cause.kind == "access-denied":
        return (
            f"allow {cause.action} on {cause.resource} for the service role {s.service_role}: "
            "the service-role check attaches the least-privilege policy (--fix); then start a new build"
        )
    if cause.kind == "docker-daemon":
        return (
            f"turn privileged mode on for the CodeBuild project {ctx.project_name} "
            "(the project check does it with --fix); then start a new build"
        )
    if cause.kind == "model-not-found":
        return "NEO_MODEL_S3_URI does not lead to the model: see the neo-model check (its fix sets it)"
    if cause.kind == "copy-failed":
        return "the image build could not copy a file into the image: see the image check and the COPY lines"
    if cause.kind == "missing-variables":
        return "set the five variables on the project: see the project check (--fix)"
    return "read the error lines above; check the build role's IAM permissions"


def _fixed_since(cause: Cause, ctx: ChecklistContext) -> str:
    """Why the cause no longer holds ("" while it still does, or when that cannot be told)."""
    try:
        if cause.kind == "docker-daemon":
            project = ctx.project() or {}
            if (project.get("environment") or {}).get("privilegedMode"):
                return "privileged mode is on now"
        elif cause.kind == "access-denied" and cause.action:
            s = ctx.effective()
            perm = Permission(cause.action, cause.resource or "*", "", "")
            if s.service_role and simulate(ctx.aws, s.service_role, [perm])[0].allowed:
                return f"the service role allows {cause.action} on {cause.resource} now"
        elif cause.kind == "model-not-found":
            s = ctx.effective()
            checked, verdicts = validate(s, ctx.aws, only=["NEO_MODEL_S3_URI"])
            if not [i for i in verdicts["NEO_MODEL_S3_URI"].issues if i.severity == "error"] and checked.model_key:
                return f"the model is at s3://{checked.model_bucket}/{checked.model_key} now"
    except Exception:
        return ""
    return ""


def check_build(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["build"]
    if ctx.project() is None:
        return CheckResult("build", title, SKIP, f"no CodeBuild project {ctx.project_name}: no build to read")
    build = ctx.latest_build()
    if build is None:
        return CheckResult(
            "build",
            title,
            SKIP,
            f"the project {ctx.project_name} has no build yet",
            f"start one: aws codebuild start-build --project-name {ctx.project_name}",
        )
    build_id, status = str(build.get("id")), str(build.get("buildStatus"))
    if status == "SUCCEEDED":
        return CheckResult("build", title, PASS, f"{build_id} SUCCEEDED{_when(build)}")
    if status not in FAILED_STATES:
        phase = build.get("currentPhase", "?")
        return CheckResult("build", title, WARN, f"{build_id} is {status} (phase {phase})", "wait for it to end")
    phases = build.get("phases") or []
    failed = next((p for p in phases if p.get("phaseStatus") in FAILED_STATES), None)
    where = f"in phase {failed.get('phaseType')}" if failed else "without a failed phase"
    reason = ""
    if failed:
        reason = "; ".join(
            f"{c.get('statusCode', '')}: {c.get('message', '')}".strip(": ")
            for c in failed.get("contexts") or []
            if c.get("statusCode") or c.get("message")
        )
    lines = output_lines(ctx.build_log())
    errors = first_error_lines(lines)
    cause = classify(errors or lines, ctx.effective())
    evidence = f"{build_id} {status} {where}{_when(build)}"
    if reason:
        evidence += f"\n  {reason.splitlines()[0][:300]}"
    if errors:
        evidence += "\nfirst error lines of the log:\n" + bullet([f"| {e[:300]}" for e in errors])
    elif not lines:
        evidence += "\n  (the build has no log lines to read)"
    if cause.kind == "access-denied":
        evidence += f"\ncause: AccessDenied: the build may not {cause.action} on {cause.resource}"
        if cause.note:
            evidence += f" ({cause.note})"
    elif cause.kind != "unknown":
        evidence += f"\ncause: {cause.kind}"
    fix = _fix_for(cause, ctx)
    since = _fixed_since(cause, ctx)
    if since:
        evidence += f"\nfixed since: {since}"
        again = f"start a new build: aws codebuild start-build --project-name {ctx.project_name}"
        return CheckResult("build", title, WARN, evidence, again)
    return CheckResult("build", title, FAIL, evidence, fix, _cure(cause, ctx), cause.related)


def _cure(cause: Cause, ctx: ChecklistContext) -> Callable[[], str] | None:
    """The safe fix of the cause itself, so the build's own fix key repairs it (the related check offers the
    same one; both are idempotent, so applying the two is harmless)."""
    if cause.kind == "docker-daemon":

        def privileged() -> str:
            update_project(ctx, privilegedMode=True)
            return f"privileged mode on for the CodeBuild project {ctx.project_name}"

        return privileged
    if cause.kind == "access-denied" and cause.action and cause.resource:
        s = ctx.effective()
        role = s.service_role
        if not role:
            return None
        sid = next((p.sid for p in required_permissions(s) if p.action == cause.action), "BuildFix")
        pair = PermissionResult(Permission(cause.action, cause.resource, sid, ""), "implicitDeny")
        policy = least_privilege_policy([pair])
        if policy is None:
            return None

        def grant() -> str:
            attach_fix(ctx.aws, role, policy)
            return f"allowed {cause.action} on {cause.resource} for {role_name(role)} ({POLICY_NAME})"

        return grant
    if cause.kind == "model-not-found":

        def repoint() -> str:
            from .model import check_neo_model

            result = check_neo_model(ctx.fresh())
            if result.apply is None:
                raise NcfError(f"no safe fix for the model: {result.fix or result.evidence}")
            return result.apply()

        return repoint
    return None


def _when(build: dict[str, Any]) -> str:
    start, end = build.get("startTime"), build.get("endTime")
    if start is None:
        return ""
    took = ""
    if end is not None and hasattr(end, "__sub__"):
        took = f", {(end - start).total_seconds():.0f} s"
    return f" (started {start}{took})"


def model_sha256_of(ctx: ChecklistContext, settings: Settings) -> tuple[str, str] | None:
    """(sha256 of the compiled model, ``model.pth`` or ``compiled.pt``, inside the Neo archive NEO_MODEL_S3_URI
    leads to, that archive's URI), or None."""
    checked, _verdicts = validate(settings, ctx.aws, only=["NEO_MODEL_S3_URI"])
    if not checked.model_key:
        return None
    s3 = ctx.aws.client("s3")
    with aws_errors(ctx.aws.target):
        head = s3.head_object(Bucket=checked.model_bucket, Key=checked.model_key)
        if int(head.get("ContentLength", 0)) > MAX_ARCHIVE_BYTES:
            return None
        body = s3.get_object(Bucket=checked.model_bucket, Key=checked.model_key)["Body"].read()
    compiled = compiled_model_in(body)
    if compiled is None:
        return None
    return hashlib.sha256(compiled[1]).hexdigest(), f"s3://{checked.model_bucket}/{checked.model_key}"


def check_image(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["image"]
    build = ctx.latest_build() if ctx.project() is not None else None
    if build is None:
        return CheckResult("image", title, SKIP, "no build to read: the image check needs the latest build's log")
    lines = output_lines(ctx.build_log())
    values = BuildValues()
    for line in lines:
        values.update(line)
    download = next((m.group(1) for line in lines if (m := _DOWNLOAD.match(line.strip()))), None)
    copied = any(_COPY_MODEL.search(line) for line in lines)
    copy_error = next((line.strip() for line in lines if _COPY.search(line)), None)
    seen = [
        f"model downloaded from {download}" if download else "no model download line",
        f"NCF-TUI: model-sha256 {values.model_sha256[:12]}…" if values.model_sha256 else "no NCF-TUI: model-sha256",
        "model/ copied into the image" if copied else "no COPY of model/",
    ]
    status = str(build.get("buildStatus"))
    if copy_error:
        return CheckResult(
            "image",
            title,
            FAIL,
            f"{build.get('id')} {status}: " + "; ".join(seen) + f"\n  | {copy_error[:300]}",
            "the COPY source is missing from the build context: check the model-copy step of the log, that "
            "the Neo archive holds model.pth (or compiled.pt) and that ncf-model.json was fetched beside it",
        )
    if status != "SUCCEEDED":
        return CheckResult(
            "image",
            title,
            SKIP,
            f"{build.get('id')} {status} before an image was pushed (see the build check): " + "; ".join(seen),
        )
    missing = [text for text in seen if text.startswith("no ")]
    if missing:
        return CheckResult(
            "image",
            title,
            FAIL,
            f"{build.get('id')} SUCCEEDED but its log has " + ", ".join(missing),
            "check the model-copy step of buildspec.yml (pre_build) and confirm the model was downloaded",
        )
    s = ctx.effective()
    expected: tuple[str, str] | None = None
    note = ""
    try:
        expected = model_sha256_of(ctx, s)
    except NcfError as exc:
        note = f"; the chosen artifact could not be read ({exc.message})"
    except Exception as exc:
        note = f"; the chosen artifact could not be read ({exc})"
    if expected is None and not note:
        note = "; no chosen artifact at NEO_MODEL_S3_URI to compare with (see the neo-model check)"
    try:
        info = verify_image(
            ctx.aws,
            s.image_repo_name,
            s.image_tag,
            discard,
            build_values=values,
            expected_model_sha256=expected[0] if expected else None,
        )
    except NcfError as exc:
        return CheckResult(
            "image", title, FAIL, f"{build.get('id')}: " + "; ".join(seen) + f"\n  {exc.message}", exc.hint or ""
        )
    evidence = "; ".join(seen) + "\n" + bullet(list(info.verified))
    if expected:
        evidence += f"\n  chosen artifact {expected[1]} holds the compiled model {expected[0][:12]}…"
    return CheckResult("image", title, WARN if note else PASS, evidence + note)
