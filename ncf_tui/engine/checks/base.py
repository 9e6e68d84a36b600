"""What every check shares: its result, and the context it reads the account and the run through.

Why a context: several checks need the same slow facts (the CodeBuild project, the latest build, its whole
log, the caller's identity). The context fetches each one once, under a per-key lock, so checks running in
parallel threads share one call instead of racing to make three. ``fresh()`` gives a context with the same
inputs and an empty cache, which is how the checklist re-runs checks after a fix changed the account.
"""

from __future__ import annotations

import dataclasses
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..aws import Aws, Identity, aws_errors, error_code
from ..codebuild import VARIABLE_NAMES
from ..events import CheckEvent
from ..settings import Settings
from ..state import RunState

if TYPE_CHECKING:
    from ..neo import Candidate, CompileResult, Job

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
STATUSES = (PASS, WARN, FAIL, SKIP)
T = TypeVar("T")


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. ``apply`` (when set) is a safe repair: it changes the account, returns one line
    saying what it did, and the check is then run again. ``related`` names the check whose fix cures this
    one (a failed build caused by a denied permission points at ``service-role``)."""

    id: str
    title: str
    status: str
    evidence: str = ""
    fix: str = ""
    apply: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    related: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status {self.status!r} is not one of {STATUSES}")

    @property
    def fixable(self) -> bool:
        """True when a safe fix can be applied now (only offered for a failing or warning check)."""
        return self.apply is not None and self.status in (FAIL, WARN)

    def event(self) -> CheckEvent:
        return CheckEvent(id=self.id, title=self.title, status=self.status, evidence=self.evidence, fix=self.fix)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "evidence": self.evidence,
            "fix": self.fix,
            "fixable": self.fixable,
            "related": self.related,
        }


@dataclass
class ChecklistContext:
    """The inputs of a checklist run and the facts fetched for it (each fetched once, thread-safe).

    ``settings`` are the user's resolved answers; ``effective`` overlays the CodeBuild project's own values
    (its five variables, service role and image), because those are what a build really uses.
    ``cli_args`` are the flags that reach the same account again (``--sandbox``, ``--region`` ...), used to
    write exact ``ncf-tui`` commands into fixes.
    """

    aws: Aws
    settings: Settings
    state: RunState | None = None
    state_path: Path | None = None
    cli_args: tuple[str, ...] = ()
    _cache: dict[str, tuple[bool, Any]] = field(default_factory=dict, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fresh(self) -> ChecklistContext:
        """The same inputs with nothing cached: what a re-run after a fix must see."""
        return ChecklistContext(self.aws, self.settings, self.state, self.state_path, self.cli_args)

    def once(self, key: str, fetch: Callable[[], T]) -> T:
        """``fetch()`` the first time ``key`` is asked for, its result (or its exception) every time after."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._cache:
                try:
                    self._cache[key] = (True, fetch())
                except Exception as exc:
                    self._cache[key] = (False, exc)
            ok, value = self._cache[key]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    # -- shared facts

    def identity(self) -> Identity:
        return self.once("identity", self.aws.whoami)

    @property
    def project_name(self) -> str:
        return self.settings.project_name

    def project(self) -> dict[str, Any] | None:
        """The CodeBuild project as BatchGetProjects describes it, None when there is none."""

        def fetch() -> dict[str, Any] | None:
            with aws_errors(self.aws.target):
                found = self.aws.client("codebuild").batch_get_projects(names=[self.project_name]).get("projects")
            return dict(found[0]) if found else None

        return self.once("project", fetch)

    def project_variables(self) -> dict[str, dict[str, Any]]:
        project = self.project() or {}
        env = project.get("environment") or {}
        return {str(v.get("name")): dict(v) for v in env.get("environmentVariables") or []}

    def effective(self) -> Settings:
        """The settings a build uses: the project's plaintext variables, role and image over the answers."""

        def compute() -> Settings:
            s = self.settings
            project = self.project()
            if project is None:
                return s
            source = f"codebuild:{self.project_name}"
            for name, var in self.project_variables().items():
                if name in VARIABLE_NAMES and var.get("type", "PLAINTEXT") == "PLAINTEXT" and var.get("value"):
                    s = s.with_value(name, str(var["value"]), source)
            if project.get("serviceRole"):
                s = s.with_value("service_role", str(project["serviceRole"]), source)
            image = (project.get("environment") or {}).get("image")
            if image:
                s = s.with_value("build_image", str(image), source)
            return s

        return self.once("effective", compute)

    def latest_build(self) -> dict[str, Any] | None:
        """The project's newest build (BatchGetBuilds shape), None when the project has none (or is missing)."""

        def fetch() -> dict[str, Any] | None:
            if self.project() is None:
                return None
            client = self.aws.client("codebuild")
            with aws_errors(self.aws.target):
                ids = client.list_builds_for_project(projectName=self.project_name, sortOrder="DESCENDING")["ids"]
                if not ids:
                    return None
                builds = client.batch_get_builds(ids=[ids[0]]).get("builds") or []
            return dict(builds[0]) if builds else None

        return self.once("latest_build", fetch)

    def build_log(self) -> list[str]:
        """Every event message of the latest build's log stream, in order ([] when there is no stream).

        Messages keep their inner newlines: CodeBuild logs a multi-line command as one event, and the
        lines of a command's script must not be mistaken for its output."""

        def fetch() -> list[str]:
            build = self.latest_build() or {}
            logs = build.get("logs") or {}
            group, stream = logs.get("groupName"), logs.get("streamName")
            if not group or not stream:
                return []
            client = self.aws.client("logs")
            out: list[str] = []
            token: str | None = None
            for _page in range(10_000):
                kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
                if token:
                    kwargs["nextToken"] = token
                try:
                    with aws_errors(self.aws.target):
                        page = client.get_log_events(**kwargs)
                except Exception as exc:
                    if error_code(exc) == "ResourceNotFoundException":
                        return out
                    raise
                out += [str(e.get("message", "")).rstrip("\n") for e in page.get("events", [])]
                if page.get("nextForwardToken") in (None, token):
                    break
                token = page["nextForwardToken"]
            return out

        return self.once("build_log", fetch)

    def command(self, *args: str) -> str:
        """An exact ``ncf-tui`` command line reaching this account, quoted for a POSIX shell."""
        return shlex.join(["ncf-tui", "--headless", *self.cli_args, *args])

    def compiled(self) -> CompileResult | None:
        """The run's finished compile step (typed), None when there is none."""
        from ..steps import saved_result

        compiled: CompileResult | None = saved_result(self.state, "compile") if self.state is not None else None
        return compiled

    def jobs(self) -> dict[str, Job]:
        """The run's Neo jobs by variant: the finished compile step's, else what a running (or failed) one saved."""
        from ..neo import jobs_from_state

        compiled = self.compiled()
        if compiled is not None:
            return compiled.jobs
        entry = self.state.steps.get("compile") if self.state is not None else None
        return jobs_from_state(entry.get("jobs") if isinstance(entry, dict) else None)

    def candidates(self) -> list[Candidate]:
        """The run's variants as the compile step saw them (none without a finished variants step)."""
        from ..steps import saved_result

        variants = saved_result(self.state, "variants") if self.state is not None else None
        return list(variants.candidates) if variants is not None else []

    def with_settings(self, settings: Settings) -> ChecklistContext:
        return dataclasses.replace(self.fresh(), settings=settings)


def update_project(ctx: ChecklistContext, *, variables: dict[str, str] | None = None, **environment: Any) -> None:
    """Change some of the project's environment (``privilegedMode``, ``image``) or variables, keeping the rest.

    UpdateProject replaces the whole environment object, so the current one is sent back with the changes. It
    is read afresh (never from the context's cache): two fixes applied one after the other must not undo each
    other with a stale copy."""
    client = ctx.aws.client("codebuild")
    with aws_errors(ctx.aws.target):
        found = client.batch_get_projects(names=[ctx.project_name]).get("projects") or []
    if not found:
        raise ValueError(f"no CodeBuild project {ctx.project_name}")
    project = dict(found[0])
    env = dict(project.get("environment") or {})
    env.update(environment)
    if variables:
        current = [dict(v) for v in env.get("environmentVariables") or []]
        names = {v.get("name") for v in current}
        for v in current:
            if v.get("name") in variables:
                v["value"], v["type"] = variables[str(v["name"])], "PLAINTEXT"
        current += [{"name": k, "value": val, "type": "PLAINTEXT"} for k, val in variables.items() if k not in names]
        env["environmentVariables"] = current
    keep = ("type", "image", "computeType", "privilegedMode", "environmentVariables", "imagePullCredentialsType")
    with aws_errors(ctx.aws.target):
        client.update_project(name=ctx.project_name, environment={k: env[k] for k in keep if k in env})


def bullet(lines: list[str], indent: str = "  ") -> str:
    return "\n".join(f"{indent}{line}" for line in lines)
