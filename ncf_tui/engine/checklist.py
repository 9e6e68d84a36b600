"""The troubleshooting checklist: every check run against the account and the run, with evidence and a fix.

Why it exists: four troubles users of a Neo + CodeBuild pipeline hit all the time (model not found, build
failed, image without the model, Neo compile failed). Each becomes a plain function that takes
a ``ChecklistContext`` and returns a ``CheckResult`` (id, title, pass|warn|fail|skip, evidence, fix, and an
optional safe ``apply``), plus five account checks beyond those four. ``run_checklist`` runs them in a thread
pool, the credentials check first (nothing else can work without it) and the rest in parallel, emitting one
``CheckEvent`` each as it finishes. ``apply_fixes`` applies the safe fixes the caller confirms and re-runs the
checks they affect. Front ends: the headless report (``ncf_tui.checklist_report``) and the TUI's screen, which
can call ``run_check`` and ``CheckResult.apply`` per check.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from .aws import Aws, error_message
from .checks.account import (
    check_build_image,
    check_credentials,
    check_ecr_repository,
    check_project,
    check_service_role,
)
from .checks.base import FAIL, PASS, SKIP, WARN, ChecklistContext, CheckResult
from .checks.build import check_build, check_image
from .checks.endpoint import check_endpoint
from .checks.model import check_neo_compile, check_neo_model
from .errors import ExitCode, NcfError
from .events import Emit, StepEvent, discard
from .settings import resolve_settings
from .state import RunState, latest_run

__all__ = [
    "CHECKS",
    "CHECK_IDS",
    "FAIL",
    "PASS",
    "SKIP",
    "WARN",
    "AppliedFix",
    "CheckResult",
    "CheckSpec",
    "Checklist",
    "ChecklistContext",
    "ChecklistReport",
    "apply_fixes",
    "build_context",
    "latest_run",
    "run_check",
    "run_checklist",
]

CheckFn = Callable[[ChecklistContext], CheckResult]


@dataclass(frozen=True)
class CheckSpec:
    """One check: a stable ``id`` (event id, TUI key, ``--only``), its title, its function and the checks
    whose failure makes it pointless (it is then skipped, saying which)."""

    id: str
    title: str
    run: CheckFn
    needs: tuple[str, ...] = ("credentials",)


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("credentials", "Credentials are valid and for the expected account", check_credentials, ()),
    CheckSpec("neo-model", "Neo model is where NEO_MODEL_S3_URI points", check_neo_model),
    CheckSpec("build", "Latest build succeeded", check_build),
    CheckSpec("image", "Image contains the model", check_image),
    CheckSpec("neo-compile", "Neo compilation jobs of the run succeeded", check_neo_compile),
    CheckSpec("service-role", "CodeBuild service role exists and has the build's permissions", check_service_role),
    CheckSpec("project", "CodeBuild project exists, with privileged mode and the five variables", check_project),
    CheckSpec("ecr-repository", "ECR repository exists", check_ecr_repository),
    CheckSpec("build-image", "Build image is not deprecated", check_build_image),
    CheckSpec("endpoint", "The run's SageMaker endpoint is InService and answers", check_endpoint),
)
"""Every check, in the order a report lists them (the four troubleshooting checks first, then the account checks)."""
CHECK_IDS: tuple[str, ...] = tuple(c.id for c in CHECKS)
_BY_ID: dict[str, CheckSpec] = {c.id: c for c in CHECKS}


@dataclass(frozen=True)
class AppliedFix:
    id: str
    ok: bool
    message: str


@dataclass
class ChecklistReport:
    """The results in ``CHECKS`` order, and the fixes applied on the way (if any)."""

    results: list[CheckResult]
    applied: list[AppliedFix] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (warnings and skips included), 3 when any check failed."""
        return int(ExitCode.PREFLIGHT_FAILED) if self.failed else int(ExitCode.OK)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def fixable(self) -> list[CheckResult]:
        return [r for r in self.results if r.fixable]

    def get(self, check_id: str) -> CheckResult:
        for r in self.results:
            if r.id == check_id:
                return r
        raise KeyError(check_id)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in (PASS, WARN, FAIL, SKIP)}


def _unknown(ids: Collection[str]) -> None:
    bad = sorted(set(ids) - set(CHECK_IDS))
    if bad:
        raise ValueError(f"unknown check id(s) {', '.join(bad)}; known: {', '.join(CHECK_IDS)}")


def run_check(ctx: ChecklistContext, check_id: str, emit: Emit = discard) -> CheckResult:
    """Run one check by id (no prerequisites), emit its event and return it: the TUI's per-check re-run."""
    _unknown([check_id])
    result = _run_one(_BY_ID[check_id], ctx)
    emit(result.event())
    return result


def _run_one(spec: CheckSpec, ctx: ChecklistContext) -> CheckResult:
    """A check never raises: an error it did not expect is a warning saying the check could not run."""
    try:
        result = spec.run(ctx)
    except NcfError as exc:
        return CheckResult(spec.id, spec.title, FAIL if spec.id == "credentials" else WARN, exc.message, exc.hint or "")
    except Exception as exc:
        return CheckResult(spec.id, spec.title, WARN, f"could not check: {type(exc).__name__}: {error_message(exc)}")
    if result.id != spec.id:
        raise AssertionError(f"check {spec.id} answered as {result.id}")
    return result


def run_checklist(
    ctx: ChecklistContext,
    emit: Emit = discard,
    *,
    only: Collection[str] | None = None,
    max_workers: int = 6,
) -> ChecklistReport:
    """Run the checks (all, or ``only`` these ids) and emit one ``check`` event each as it finishes.

    A check starts once the checks it ``needs`` have finished; when one of them failed it is skipped with the
    reason. Checks that need nothing of each other run in parallel. Results come back in ``CHECKS`` order.
    """
    wanted = list(CHECK_IDS) if only is None else [i for i in CHECK_IDS if i in set(only)]
    if only is not None:
        _unknown(only)
    results: dict[str, CheckResult] = {}
    pending = [_BY_ID[i] for i in wanted]
    running: dict[Future[CheckResult], CheckSpec] = {}
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="check") as pool:
        while pending or running:
            progressed = True
            while progressed:
                progressed = False
                for spec in list(pending):
                    needs = [n for n in spec.needs if n in wanted]
                    if any(n not in results for n in needs):
                        continue
                    pending.remove(spec)
                    progressed = True
                    blocked = [n for n in needs if results[n].status == FAIL]
                    if blocked:
                        r = CheckResult(spec.id, spec.title, SKIP, f"skipped: the {', '.join(blocked)} check failed")
                        results[spec.id] = r
                        emit(r.event())
                    else:
                        running[pool.submit(_run_one, spec, ctx)] = spec
            if not running:
                if pending:  # needs that can never be met: a wiring error, said plainly
                    raise AssertionError(f"checks wait on each other: {[s.id for s in pending]}")
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                spec = running.pop(future)
                results[spec.id] = future.result()
                emit(results[spec.id].event())
    return ChecklistReport([results[i] for i in wanted])


Confirm = Callable[[CheckResult], bool]


def apply_fixes(
    ctx: ChecklistContext,
    report: ChecklistReport,
    emit: Emit = discard,
    *,
    confirm: Confirm | bool = False,
    only: Collection[str] | None = None,
) -> tuple[ChecklistReport, ChecklistContext]:
    """Apply every offered safe fix that ``confirm`` accepts (True: all), then re-run the affected checks.

    Each fix applied emits a ``step`` event named ``fix <check id>`` (status done or failed, the message saying
    what changed), then the re-run checks emit their ``check`` events.

    Affected: the fixed checks, the checks they point at and that point at them (``related``), and the build
    and image checks, which read everything else. Re-runs use a fresh context (nothing cached from before the
    fixes), which is returned with the merged report so a caller can keep checking against the changed account.
    """
    applied: list[AppliedFix] = []
    for r in report.results:
        if not r.fixable or (only is not None and r.id not in only):
            continue
        if not (confirm(r) if callable(confirm) else confirm):
            continue
        assert r.apply is not None
        try:
            outcome = AppliedFix(r.id, True, r.apply())
        except NcfError as exc:
            outcome = AppliedFix(r.id, False, f"fix failed: {exc}")
        except Exception as exc:
            outcome = AppliedFix(r.id, False, f"fix failed: {type(exc).__name__}: {error_message(exc)}")
        applied.append(outcome)
        emit(StepEvent(name=f"fix {r.id}", status="done" if outcome.ok else "failed", message=outcome.message))
    if not applied:
        return ChecklistReport(list(report.results), []), ctx
    fixed = {a.id for a in applied}
    pointed = {r.related for r in report.results if r.id in fixed and r.related}
    affected = fixed | pointed | {r.id for r in report.results if r.related in fixed} | {"build", "image"}
    affected &= {r.id for r in report.results}
    fresh = ctx.fresh()
    rerun = run_checklist(fresh, emit, only=affected)
    by_id = {r.id: r for r in rerun.results}
    merged = [by_id.get(r.id, r) for r in report.results]
    return ChecklistReport(merged, report.applied + applied), fresh


class Checklist:
    """A front end's handle on one checklist: run everything, then fix or re-run one check at a time.

    Made for the TUI's screen (a key per check): it keeps the context and the latest report, and every call
    is blocking (run it in a thread worker) and emits one ``check`` event per check it (re-)runs. One call at
    a time: a second worker must wait for the first.
    """

    def __init__(self, ctx: ChecklistContext) -> None:
        self.ctx = ctx
        self.report: ChecklistReport | None = None

    def run(self, emit: Emit = discard) -> ChecklistReport:
        self.ctx = self.ctx.fresh()
        self.report = run_checklist(self.ctx, emit)
        return self.report

    def result(self, check_id: str) -> CheckResult | None:
        if self.report is None:
            return None
        try:
            return self.report.get(check_id)
        except KeyError:
            return None

    def rerun(self, check_id: str, emit: Emit = discard) -> CheckResult:
        """Run one check again against the account as it is now (nothing cached)."""
        self.ctx = self.ctx.fresh()
        result = run_check(self.ctx, check_id, emit)
        if self.report is not None:
            self.report = ChecklistReport(
                [result if r.id == check_id else r for r in self.report.results], self.report.applied
            )
        return result

    def fix(self, check_id: str, emit: Emit = discard) -> AppliedFix | None:
        """Apply that check's safe fix (the caller has confirmed) and re-run what it affects; None when the
        check offers no fix to apply."""
        current = self.result(check_id)
        if self.report is None or current is None or not current.fixable:
            return None
        before = len(self.report.applied)
        self.report, self.ctx = apply_fixes(self.ctx, self.report, emit, confirm=True, only=[check_id])
        return self.report.applied[before] if len(self.report.applied) > before else None


# ------------------------------------------------------------------------------------------- inputs


def build_context(
    aws: Aws,
    *,
    state: RunState | None = None,
    state_path: Path | None = None,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    saved_dir: Path | None = None,
    derived: Mapping[str, str] | None = None,
    flags: Mapping[str, str | None] | None = None,
    cli_args: tuple[str, ...] = (),
) -> ChecklistContext:
    """A context from the usual settings sources (flags, env, ``--config``, saved config) plus what the run
    state knows (the chosen NEO_MODEL_S3_URI) and ``derived`` values (a sandbox's account). No AWS call."""
    extra = {"AWS_DEFAULT_REGION": aws.region, **dict(derived or {})}
    entry = state.steps.get("compile") if state is not None else None
    if isinstance(entry, dict) and entry.get("neo_model_s3_uri"):
        extra.setdefault("NEO_MODEL_S3_URI", str(entry["neo_model_s3_uri"]))
    settings = resolve_settings(flags=flags, env=env, config=config, saved_dir=saved_dir, derived=extra)
    return ChecklistContext(aws, settings, state, state_path, cli_args)
