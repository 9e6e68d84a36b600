"""The checklist's ``neo-model`` and ``neo-compile`` checks: the Neo model the build downloads, and the run's jobs.

``neo-model`` checks NEO_MODEL_S3_URI the way the build reads it (``settings.validate``: no ``s3://``, the bucket
exists in the region, the Neo archive it names or the one under the prefix exists, with ncf-tui's sidecar
beside it) and, when it is wrong, offers the folder of the newest COMPLETED compilation job's output.
``neo-compile`` lists every FAILED job of the run with
SageMaker's reason and, for operators Neo does not implement, the variant whose offline preflight says it
avoids them and the one ``ncf-tui`` command that compiles it.
"""

from __future__ import annotations

import re
from typing import Any

from ..artifact import output_folder
from ..aws import aws_errors
from ..errors import NcfError
from ..neo import Job, rank_key, strip_s3
from ..settings import validate
from .base import FAIL, PASS, SKIP, WARN, ChecklistContext, CheckResult, bullet, update_project

TITLES = {
    "neo-model": "Neo model is where NEO_MODEL_S3_URI points",
    "neo-compile": "Neo compilation jobs of the run succeeded",
}
# TVM's own wording, as Neo's FailureReason quotes it inside its traceback; the list may be cut short, since
# FailureReason is at most 1,024 characters (botocore's sagemaker model, shape FailureReason: max 1024).
_OPERATORS = re.compile(
    r"operators? (?:are|is) not (?:implemented|supported)[^\[]*\[([^\]]*)(\]|$)", re.IGNORECASE | re.DOTALL
)
# Neo's own prefix, e.g. "ClientError: InputConfiguration: TVM cannot convert the PyTorch model. Invalid model
# or input-shape mismatch. ..." (public reports: aws/amazon-sagemaker-examples#2784, aws-panorama-samples#32).
_CANNOT_CONVERT = re.compile(r"InputConfiguration:\s*TVM cannot convert the PyTorch model", re.IGNORECASE)
FAILURE_REASON_MAX = 1024


def failure_operators(reason: str) -> tuple[list[str], bool]:
    """The operators a FailureReason says Neo does not implement, and whether the list was cut short."""
    m = _OPERATORS.search(reason)
    if m is None:
        return [], False
    cut = m.group(2) != "]"
    items = [i.strip() for i in m.group(1).split(",")]
    if cut and items and not re.fullmatch(r"'[^']*'|\"[^\"]*\"", items[-1]):
        items = items[:-1]  # the last name lost its end to the cap
    return [i.strip("'\"") for i in items if i.strip("'\"")], cut


def newest_completed_job(ctx: ChecklistContext) -> tuple[str, str] | None:
    """(job name, the folder of its output as bucket/prefix without ``s3://``) of the newest COMPLETED Neo job,
    or None. The folder (of S3ModelArtifacts) is what NEO_MODEL_S3_URI means (docs/CONTRACTS.md)."""
    sm = ctx.aws.client("sagemaker")
    with aws_errors(ctx.aws.target):  # newest first: the first page holds the answer
        page = sm.list_compilation_jobs(
            StatusEquals="COMPLETED", SortBy="CreationTime", SortOrder="Descending", MaxResults=100
        )
    summaries: list[dict[str, Any]] = page.get("CompilationJobSummaries", [])
    done = [j for j in summaries if j.get("CompilationJobStatus") == "COMPLETED"]
    done.sort(key=lambda j: str(j.get("CompilationEndTime") or j.get("CreationTime") or ""), reverse=True)
    for job in done:
        name = str(job["CompilationJobName"])
        with aws_errors(ctx.aws.target):
            info = sm.describe_compilation_job(CompilationJobName=name)
        artifact = (info.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if artifact:
            return name, output_folder(strip_s3(str(artifact)))
    return None


def check_neo_model(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["neo-model"]
    s = ctx.effective()
    uri, source = s.neo_model_s3_uri, s.source("NEO_MODEL_S3_URI")
    problems: list[str] = []
    notes: list[str] = []
    prefixed = uri.strip().lower().startswith("s3://")
    if not uri:
        problems.append("NEO_MODEL_S3_URI is not set")
    else:
        try:
            _checked, verdicts = validate(s, ctx.aws, only=["NEO_MODEL_S3_URI"])
        except NcfError as exc:
            return CheckResult("neo-model", title, WARN, f"could not check {uri}: {exc.message}", exc.hint or "")
        v = verdicts["NEO_MODEL_S3_URI"]
        problems += [i.reason for i in v.issues if i.severity == "error"]
        notes += [i.reason for i in v.issues if i.severity != "error"] + list(v.notes)
    shown = f"NEO_MODEL_S3_URI={uri} ({source})" if uri else "NEO_MODEL_S3_URI"
    if not problems:
        if prefixed:  # the buildspec strips it, but the contract is bucket/key
            notes.insert(0, "it starts with s3://, which the build strips; the expected form is bucket/key")
            return CheckResult(
                "neo-model", title, WARN, f"{shown}: " + "; ".join(notes), "drop s3:// (the project check does it)"
            )
        status = WARN if any("could not verify" in n for n in notes) else PASS
        return CheckResult("neo-model", title, status, f"{shown}: " + "; ".join(notes))
    evidence = f"{shown}:\n" + bullet(problems)
    try:
        newest = newest_completed_job(ctx)
    except NcfError as exc:
        newest = None
        evidence += f"\n  (could not list Neo jobs: {exc.message})"
    except Exception as exc:
        newest = None
        evidence += f"\n  (could not list Neo jobs: {exc})"
    if newest is None:
        fix = "no COMPLETED Neo compilation job was found: compile first with " + ctx.command("--until", "compile")
        return CheckResult("neo-model", title, FAIL, evidence, fix)
    job, output = newest
    output = output.removesuffix("/")
    fix = f"set NEO_MODEL_S3_URI={output} (the output of {job}, the newest COMPLETED Neo compilation job)"
    apply = None
    if ctx.project() is not None:
        fix += f" on the CodeBuild project {ctx.project_name}"

        def apply() -> str:
            update_project(ctx, variables={"NEO_MODEL_S3_URI": output})
            return f"NEO_MODEL_S3_URI={output} on the CodeBuild project {ctx.project_name}"

    return CheckResult("neo-model", title, FAIL, evidence, fix, apply)


def _job_status(ctx: ChecklistContext, job: Job) -> tuple[str, str]:
    """The job's current (status, failure reason): asked of SageMaker, the state's record if it cannot say."""
    status, reason = job.status, job.failure_reason or ""
    name = job.job_name
    if not name:
        return status, reason
    try:
        with aws_errors(ctx.aws.target):
            info = ctx.aws.client("sagemaker").describe_compilation_job(CompilationJobName=str(name))
    except Exception:
        return status, reason
    return str(info.get("CompilationJobStatus", status)), str(info.get("FailureReason") or reason)


def check_neo_compile(ctx: ChecklistContext) -> CheckResult:
    title = TITLES["neo-compile"]
    jobs = ctx.jobs()
    if not jobs:
        where = f"the run state {ctx.state_path}" if ctx.state is not None else "no ncf-tui run state was found"
        return CheckResult(
            "neo-compile",
            title,
            SKIP,
            f"{where}: no Neo compilation jobs to check",
            "pass --state FILE to check the jobs of a run",
        )
    statuses = {name: _job_status(ctx, j) for name, j in sorted(jobs.items())}
    failed = {n: r for n, (st, r) in statuses.items() if st == "FAILED"}
    completed = [n for n, (st, _r) in statuses.items() if st == "COMPLETED"]
    running = [n for n, (st, _r) in statuses.items() if st not in ("COMPLETED", "FAILED", "STOPPED")]
    summary = ", ".join(f"{n} {st}" for n, (st, _r) in statuses.items())
    if not failed:
        if running:
            return CheckResult("neo-compile", title, WARN, f"still running: {summary}", "wait, or resume the run")
        compiled = ctx.compiled()
        chosen = compiled.chosen if compiled is not None else None
        return CheckResult("neo-compile", title, PASS, summary + (f"; chosen {chosen}" if chosen else ""))
    lines = [f"{n} FAILED: {r or 'no reason given'}" for n, r in failed.items()]
    fixes = _recompile_advice(ctx, failed, completed)
    status = WARN if completed else FAIL
    evidence = summary + "\n" + bullet(lines)
    if completed:
        evidence += f"\n  {', '.join(completed)} compiled, so the run has a model to build"
    return CheckResult("neo-compile", title, status, evidence, "; ".join(fixes))


def _recompile_advice(ctx: ChecklistContext, failed: dict[str, str], completed: list[str]) -> list[str]:
    """For each failure on unsupported operators: the variant that avoids them and the command that compiles it."""
    cands = ctx.candidates()
    out: list[str] = []
    for name, reason in failed.items():
        listed, cut = failure_operators(reason)
        if not listed and not _CANNOT_CONVERT.search(reason):
            out.append(f"{name}: read the reason above (the input archive, the role, the framework version)")
            continue
        if listed:
            ops = ", ".join(listed) + (" (and maybe more: Neo cuts its reason at 1,024 characters)" if cut else "")
            problem, avoids = f"uses {ops}, which Neo does not implement", f"avoids {ops}"
        else:  # Neo's prefix alone: the operator list, if any, was cut off or never given
            problem = "is a model TVM cannot convert (Neo's reason names no operator)"
            avoids = "passes the same operator check"
        avoiding = sorted((c for c in cands if c.accepted and c.name not in failed), key=rank_key)
        if not avoiding:
            out.append(f"{name} {problem}, and the run's preflight found no variant without it")
            continue
        best = avoiding[0]
        f = best.fidelity or {}
        why = f"{best.name} {avoids} (the offline preflight accepts it"
        why += f"; top-10 overlap {float(f['top10_overlap']):.0%})" if "top10_overlap" in f else ")"
        if best.name in completed:
            out.append(f"{why} and already compiled: build from its output")
            continue
        if ctx.compiled() is None and ctx.state_path is not None:
            command = ctx.command("--resume", "--state", str(ctx.state_path), "--until", "compile")
        else:
            checkpoint = ctx.state.checkpoint if ctx.state is not None else "CHECKPOINT"
            command = ctx.command("--checkpoint", checkpoint, "--until", "compile")
        out.append(f"{why}; compile it (without --force {name}): {command}")
    return out
