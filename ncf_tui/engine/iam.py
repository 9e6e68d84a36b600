"""Does the CodeBuild service role have what the build needs? Asked of IAM itself, before the build runs.

Why: a build that lacks ecr:PutImage fails after minutes of work, with an error deep in a log. The build's
needs are a short, exact list of (action, resource ARN) pairs derived from the settings; IAM's policy
simulator (iam:SimulatePrincipalPolicy on the role) answers each one with the role's real policies, including
explicit Denies and wildcards. For every deny we write the least-privilege policy that would fix it (exact
ARNs, ``*`` only for ecr:GetAuthorizationToken, which has no resource) and, when the user agrees, attach it as
an inline role policy and ask IAM again. A caller who may not run the simulator gets told exactly which
permission it lacks, and a "could not verify" result, never a guess.

The pairs are on the resource forms AWS authorises (sources beside each pair): the three CloudWatch Logs
actions on ``log-group:/aws/codebuild/P`` and ``log-group:/aws/codebuild/P:*`` as CodeBuild's documented
service-role policy grants them; the S3 source's object and bucket actions from the same page; the Neo base
image's pull actions on AWS's repository ARN (from the engine's image lookup). A pair the role's permissions
boundary or an SCP refuses (``PermissionsBoundaryDecisionDetail`` / ``OrganizationsDecisionDetail`` in the
result, botocore's iam model) cannot be fixed by an inline policy: it is said so, and no policy is proposed
for it. Resource-based policies are not simulated (``SIMULATION_LIMITS`` says so wherever results show).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ExitCode, NcfError
from .events import Emit, PermissionEvent, StepEvent, discard
from .settings import Settings

if TYPE_CHECKING:
    from .aws import Aws

POLICY_NAME = "ncf-tui-build-permissions"
MAX_RESOURCES_PER_CALL = 20
PAGE_SIZE = 100
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
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
ALLOWED = "allowed"
UNVERIFIED = "unverified"
BOUNDARY = "permissions boundary"
SCP = "SCP"
SIMULATION_LIMITS = (
    "not simulated: resource-based policies (the S3 bucket policy, the ECR repository policies) unless given to "
    "the simulator (ncf-tui gives none), and an organisation's SCPs beyond what IAM's simulator itself includes "
    "(reported as OrganizationsDecisionDetail); an allow here can still be refused by them when the build runs"
)
# https://docs.aws.amazon.com/codebuild/latest/userguide/setting-up-service-role.html
CODEBUILD_SERVICE_ROLE_DOC = "CodeBuild User Guide, 'Allow CodeBuild to interact with other AWS services'"


class PermissionsError(NcfError):
    """A permission the build needs is denied (or the role cannot be checked at all)."""

    exit_code = ExitCode.PREFLIGHT_FAILED

    def __init__(self, message: str, report: PermissionReport | None = None, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


@dataclass(frozen=True)
class Permission:
    """One thing the build does: ``action`` on ``resource``; ``sid`` names the statement that would grant it."""

    action: str
    resource: str
    sid: str
    why: str


@dataclass(frozen=True)
class PermissionResult:
    permission: Permission
    decision: str  # allowed | implicitDeny | explicitDeny | unverified
    matched: tuple[str, ...] = ()
    blocked_by: str = ""  # "" | BOUNDARY | SCP: a cap no inline policy lifts

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOWED

    @property
    def fixable(self) -> bool:
        """Whether an inline Allow on the role would fix it (not for explicit Denies, boundaries or SCPs)."""
        return self.decision == "implicitDeny" and not self.blocked_by


@dataclass
class PermissionReport:
    """What the check found, what it proposes, and whether the proposal was attached."""

    role_arn: str
    results: list[PermissionResult]
    verified: bool = True
    warning: str = ""
    proposed_policy: dict[str, Any] | None = None
    attached: bool = False
    policy_name: str = POLICY_NAME
    notes: list[str] = field(default_factory=list)

    @property
    def denied(self) -> list[PermissionResult]:
        return [r for r in self.results if r.decision not in {ALLOWED, UNVERIFIED}]

    @property
    def explicit_denies(self) -> list[PermissionResult]:
        return [r for r in self.results if r.decision == "explicitDeny" and not r.blocked_by]

    @property
    def capped(self) -> list[PermissionResult]:
        """Denied pairs a permissions boundary or an SCP refuses: no inline policy can fix them."""
        return [r for r in self.denied if r.blocked_by]

    def to_dict(self) -> dict[str, Any]:
        return {
            "role_arn": self.role_arn,
            "verified": self.verified,
            "warning": self.warning,
            "limits": SIMULATION_LIMITS,
            "results": [
                {
                    "action": r.permission.action,
                    "resource": r.permission.resource,
                    "decision": r.decision,
                    "matched": list(r.matched),
                    "blocked_by": r.blocked_by,
                    "why": r.permission.why,
                }
                for r in self.results
            ],
            "proposed_policy": self.proposed_policy,
            "attached": self.attached,
            "policy_name": self.policy_name,
            "notes": list(self.notes),
        }


def model_object_arn(settings: Settings) -> str:
    """The exact model object the build reads (validated ``model_key``, or the URI's archive), else ``path/*``."""
    bucket = f"arn:{settings.partition}:s3:::{settings.model_bucket}"
    key = settings.model_key or (settings.model_path if settings.model_path.endswith(".tar.gz") else "")
    return f"{bucket}/{key}" if key else f"{bucket}/{settings.model_path}/*"


def sidecar_object_arn(settings: Settings) -> str:
    """The sidecar object the build reads: ``ncf-model.json`` in the folder of the Neo archive."""
    from .artifact import sidecar_key

    key = sidecar_key(settings.model_key or settings.model_path)
    return f"arn:{settings.partition}:s3:::{settings.model_bucket}/{key}"


def source_permissions(partition: str, bucket: str, key: str) -> list[Permission]:
    """What CodeBuild needs to download an S3 source ``bucket/key``: s3:GetObject and s3:GetObjectVersion on
    the object, s3:GetBucketAcl and s3:GetBucketLocation on the bucket (CODEBUILD_SERVICE_ROLE_DOC)."""
    obj, bucket_arn = f"arn:{partition}:s3:::{bucket}/{key}", f"arn:{partition}:s3:::{bucket}"
    why = "CodeBuild downloads the build's source archive"
    return [
        Permission("s3:GetObject", obj, "BuildSource", why),
        Permission("s3:GetObjectVersion", obj, "BuildSource", why),
        Permission("s3:GetBucketAcl", bucket_arn, "BuildSourceBucket", "CodeBuild checks the source bucket"),
        Permission("s3:GetBucketLocation", bucket_arn, "BuildSourceBucket", "CodeBuild finds the source bucket"),
    ]


def required_permissions(
    settings: Settings, extra: Sequence[Permission] = (), base_image: str | None = None
) -> list[Permission]:
    """The (action, resource ARN) pairs the build needs, in the order the build uses them.

    ``extra`` adds pairs that depend on how the project is set up (e.g. reading an S3 source archive);
    ``base_image`` is the Neo inference image the build pulls FROM (its repository's pull actions)."""
    from .ecr import repository_arn_of

    repo = settings.repository_arn
    group = settings.log_group_arn
    base_repo = repository_arn_of(base_image) if base_image else None
    pairs = [
        Permission(
            "ecr:GetAuthorizationToken", "*", "EcrAuth", "docker login (this action has no resource: AWS wants *)"
        ),
        *(Permission(a, repo, "EcrPush", "docker push to the repository") for a in ECR_PUSH_ACTIONS),
        *(
            Permission(a, base_repo, "NeoBaseImage", "docker build pulls the Neo inference image (AWS's repository)")
            for a in ECR_PULL_ACTIONS
            if base_repo
        ),
        Permission("s3:GetObject", model_object_arn(settings), "ModelRead", "download the Neo-compiled model"),
        Permission(
            "s3:GetObject",
            sidecar_object_arn(settings),
            "ModelRead",
            "download ncf-model.json, which ncf-tui wrote beside the Neo output",
        ),
        Permission(
            "s3:ListBucket",
            f"arn:{settings.partition}:s3:::{settings.model_bucket}",
            "ModelList",
            "find the Neo archive under NEO_MODEL_S3_URI (aws s3 ls)",
        ),
        # CloudWatch Logs authorises CreateLogGroup on "...:log-group:NAME:log-stream:", the stream actions on
        # the stream's ARN: CodeBuild's documented service-role policy grants the group and "group:*" for all.
        *(
            Permission(a, r, "BuildLogs", "CodeBuild creates the project's log group and writes one stream per build")
            for a in LOG_ACTIONS
            for r in (group, f"{group}:*")
        ),
        *extra,
    ]
    return pairs


def role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def _matched(statements: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    out = []
    for m in statements:
        pos = m.get("StartPosition") or {}
        where = f"@{pos.get('Line')}:{pos.get('Column')}" if pos else ""
        out.append(f"{m.get('SourcePolicyId', '?')}{where}")
    return tuple(out)


def simulate(
    aws: Aws, role_arn: str, permissions: list[Permission], *, page_size: int = PAGE_SIZE
) -> list[PermissionResult]:
    """Ask IAM's simulator about every pair: one call per group of actions sharing resources, at most 20
    resources per call, every page followed by Marker. Throttling is retried by the client (standard mode)."""
    from .aws import aws_errors

    by_actions: dict[tuple[str, ...], list[str]] = {}
    for resource in dict.fromkeys(p.resource for p in permissions):
        actions = tuple(dict.fromkeys(p.action for p in permissions if p.resource == resource))
        by_actions.setdefault(actions, []).append(resource)
    iam = aws.client("iam")
    decisions: dict[tuple[str, str], tuple[str, tuple[str, ...], str]] = {}
    for actions, resources in by_actions.items():
        for i in range(0, len(resources), MAX_RESOURCES_PER_CALL):
            chunk = resources[i : i + MAX_RESOURCES_PER_CALL]
            kwargs: dict[str, Any] = {
                "PolicySourceArn": role_arn,
                "ActionNames": list(actions),
                "ResourceArns": chunk,
                "MaxItems": page_size,
            }
            while True:
                with aws_errors(aws.target):
                    page = iam.simulate_principal_policy(**kwargs)
                for r in page.get("EvaluationResults", []):
                    action = r["EvalActionName"]
                    specific = r.get("ResourceSpecificResults") or []
                    scp = _refused(r, "OrganizationsDecisionDetail", "AllowedByOrganizations")
                    if specific:
                        for s in specific:
                            key = (action.lower(), s["EvalResourceName"])
                            decisions[key] = (
                                s["EvalResourceDecision"],
                                _matched(s.get("MatchedStatements", [])),
                                _cap(s, scp, s["EvalResourceDecision"]),
                            )
                    else:
                        key = (action.lower(), r.get("EvalResourceName", "*"))
                        decisions[key] = (
                            r["EvalDecision"],
                            _matched(r.get("MatchedStatements", [])),
                            _cap(r, scp, r["EvalDecision"]),
                        )
                if not page.get("IsTruncated"):
                    break
                kwargs["Marker"] = page["Marker"]
    results = []
    for p in permissions:
        decision, matched, cap = decisions.get((p.action.lower(), p.resource), ("implicitDeny", (), ""))
        results.append(PermissionResult(p, decision, matched, cap))
    return results


def _refused(result: dict[str, Any], detail: str, flag: str) -> bool:
    """Whether the result's ``detail`` structure says the cap refused the request (absent: no such cap)."""
    value = (result.get(detail) or {}).get(flag)
    return value is False


def _cap(result: dict[str, Any], scp: bool, decision: str) -> str:
    """Which cap refused a denied pair: the role's permissions boundary, an SCP, or none."""
    if decision == ALLOWED:
        return ""
    if _refused(result, "PermissionsBoundaryDecisionDetail", "AllowedByPermissionsBoundary"):
        return BOUNDARY
    return SCP if scp else ""


def least_privilege_policy(results: Iterable[PermissionResult]) -> dict[str, Any] | None:
    """The smallest policy that allows every implicitly denied pair, one statement per Sid; None if none.

    Explicit denies are left out: no Allow overrides them, the Deny statement itself must go; so are pairs a
    permissions boundary or an SCP refuses: the boundary (or the SCP) must allow them, no role policy can.
    """
    statements: dict[str, dict[str, Any]] = {}
    for r in results:
        if not r.fixable:
            continue
        st = statements.setdefault(
            r.permission.sid, {"Sid": r.permission.sid, "Effect": "Allow", "Action": [], "Resource": []}
        )
        if r.permission.action not in st["Action"]:
            st["Action"].append(r.permission.action)
        if r.permission.resource not in st["Resource"]:
            st["Resource"].append(r.permission.resource)
    if not statements:
        return None
    return {"Version": "2012-10-17", "Statement": list(statements.values())}


def _merge(existing: dict[str, Any] | None, proposed: dict[str, Any]) -> dict[str, Any]:
    """The proposed statements added to what an earlier run attached under the same name (nothing is lost)."""
    if not existing:
        return proposed
    old = existing.get("Statement", [])
    old = [old] if isinstance(old, dict) else list(old)
    sids = {s.get("Sid") for s in old}
    merged = list(old)

    def body(st: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in st.items() if k != "Sid"}

    for st in proposed["Statement"]:
        if any(body(st) == body(m) for m in merged):
            continue
        new = dict(st)
        n = 2
        while new.get("Sid") in sids:
            new["Sid"] = f"{st['Sid']}{n}"
            n += 1
        sids.add(new["Sid"])
        merged.append(new)
    return {"Version": "2012-10-17", "Statement": merged}


def attach_fix(aws: Aws, role_arn: str, policy: dict[str, Any], *, policy_name: str = POLICY_NAME) -> dict[str, Any]:
    """Put ``policy`` on the role as the inline policy ``policy_name`` (merged with an earlier one of that name).

    Returns the document that was attached.
    """
    from botocore.exceptions import ClientError

    from .aws import aws_errors, error_code

    iam = aws.client("iam")
    name = role_name(role_arn)
    existing: dict[str, Any] | None = None
    try:
        with aws_errors(aws.target):
            doc = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
        existing = json.loads(doc) if isinstance(doc, str) else doc
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
    document = _merge(existing, policy)
    with aws_errors(aws.target):
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    return document


def emit_results(emit: Emit, results: Iterable[PermissionResult]) -> None:
    """One ``permission`` event per simulated pair (the build role's, the caller's, the hosting role's)."""
    for r in results:
        emit(
            PermissionEvent(
                action=r.permission.action,
                resource=r.permission.resource,
                decision=r.decision,
                matched=list(r.matched),
                blocked_by=r.blocked_by,
            )
        )


def _emit_all(emit: Emit, results: list[PermissionResult]) -> None:
    emit_results(emit, results)
    emit(StepEvent(name="permissions", status="note", message=SIMULATION_LIMITS))


def check_permissions(
    aws: Aws,
    settings: Settings,
    emit: Emit = discard,
    extra: Sequence[Permission] = (),
    base_image: str | None = None,
) -> PermissionReport:
    """Simulate every required pair on the service role and emit one ``permission`` event per pair.

    AccessDenied on the simulation itself gives an unverified report with a warning naming the missing
    permission; a missing role raises PermissionsError.
    """
    from botocore.exceptions import ClientError

    from .aws import aws_errors, error_code, error_message

    role_arn = settings.service_role
    if not role_arn:
        raise PermissionsError("no CodeBuild service role is set", hint="set service_role (NCF_TUI_SERVICE_ROLE)")
    permissions = required_permissions(settings, extra, base_image)
    try:
        results = simulate(aws, role_arn, permissions)
    except ClientError as exc:
        code = error_code(exc)
        if code in {"AccessDenied", "AccessDeniedException"}:
            try:
                with aws_errors(aws.target):
                    caller = aws.whoami().arn
            except NcfError:
                caller = "the caller"
            warning = (
                f"could not verify the build's permissions: {caller} may not call iam:SimulatePrincipalPolicy on "
                f"{role_arn}; grant it that action on that role ARN to check, or continue unverified"
            )
            results = [PermissionResult(p, UNVERIFIED) for p in permissions]
            _emit_all(emit, results)
            return PermissionReport(role_arn, results, verified=False, warning=warning)
        if code == "NoSuchEntity":
            raise PermissionsError(
                f"the CodeBuild service role {role_arn} does not exist", hint="check service_role in the settings"
            ) from None
        raise PermissionsError(f"iam:SimulatePrincipalPolicy failed: {error_message(exc)}") from None
    _emit_all(emit, results)
    report = PermissionReport(role_arn, results)
    report.proposed_policy = least_privilege_policy(results)
    return report


FixPolicy = bool | Callable[[dict[str, Any]], bool]


def permissions_step(
    aws: Aws,
    settings: Settings,
    emit: Emit = discard,
    fix: FixPolicy = False,
    extra: Sequence[Permission] = (),
    base_image: str | None = None,
) -> PermissionReport:
    """Check the role; if some pairs are denied and ``fix`` agrees (True, or the callable given the proposed
    policy document returns True), attach the proposed policy and check again.

    Returns the report (unverified reports included, with their warning); raises PermissionsError (exit 3)
    when a required permission stays denied, with the proposed policy in the message.
    """
    report = check_permissions(aws, settings, emit, extra, base_image)
    if not report.verified or not report.denied:
        return report
    proposed = report.proposed_policy
    if proposed is not None and (fix(proposed) if callable(fix) else fix):
        attach_fix(aws, report.role_arn, proposed)
        report = check_permissions(aws, settings, emit, extra, base_image)
        report.attached = True
        report.proposed_policy = proposed
        report.notes.append(f"attached inline policy {POLICY_NAME} to {role_name(report.role_arn)} and checked again")
    if report.denied:
        raise PermissionsError(_denied_message(report), report, hint=_denied_hint(report))
    return report


def denied_explanation(report: PermissionReport, *, who: str | None = None) -> tuple[str, str]:
    """(message, hint) for a report with denied pairs, as the permissions step words them; ``who`` names
    another principal than the CodeBuild service role (the caller, whose rights ncf-tui never changes)."""
    hint = _denied_hint(report)
    if who is not None and not report.capped and not report.explicit_denies:
        hint = f"an administrator must grant {who} the proposed policy (ncf-tui never widens the caller's rights)"
    return _denied_message(report, who), hint


def _denied_message(report: PermissionReport, who: str | None = None) -> str:
    parts = []
    for r in report.denied:
        where = f" by {', '.join(r.matched)}" if r.decision == "explicitDeny" and r.matched else ""
        if r.blocked_by:
            where += f", refused by the role's {r.blocked_by}" if r.blocked_by == BOUNDARY else ", refused by an SCP"
        parts.append(f"{r.permission.action} on {r.permission.resource} ({r.decision}{where})")
    principal = f"{who} {report.role_arn}" if who else f"the CodeBuild service role {role_name(report.role_arn)}"
    msg = f"{principal} lacks {len(parts)} permission(s): " + "; ".join(parts)
    if report.capped:
        caps = sorted({r.blocked_by for r in report.capped})
        names = {BOUNDARY: "the role's permissions boundary", SCP: "an SCP of the organisation"}
        msg += (
            f"\n{len(report.capped)} of them {'is' if len(report.capped) == 1 else 'are'} refused by "
            + " and ".join(names.get(c, c) for c in caps)
            + ": no inline policy on the role can allow them, so none is proposed for them"
        )
    if report.proposed_policy is not None and not report.attached:
        msg += "\nproposed least-privilege policy:\n" + json.dumps(report.proposed_policy, indent=2)
    return msg


def _denied_hint(report: PermissionReport) -> str:
    if report.capped:
        caps = {r.blocked_by for r in report.capped}
        who = []
        if BOUNDARY in caps:
            who.append(
                "the owner of the role's permissions boundary must allow these actions in it, or remove the boundary "
                "(iam:DeleteRolePermissionsBoundary)"
            )
        if SCP in caps:
            who.append("the organisation's administrator must allow them in the SCPs of this account")
        return "; ".join(who)
    if report.explicit_denies:
        return "an explicit Deny cannot be overridden by an Allow: remove or narrow the Deny statement named above"
    if report.attached:
        return "the attached policy did not take effect: check permission boundaries or SCPs on the role"
    return f"attach the proposed policy as inline policy {POLICY_NAME} (--yes does it), then run again"
