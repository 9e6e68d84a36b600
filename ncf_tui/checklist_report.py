"""``ncf-tui --checklist --headless``: the troubleshooting checklist as a report (engine ``checklist``).

Human mode prints one line per check on stderr as it finishes, then every check (status, evidence, fix) on
stdout, as a table on a terminal and as plain lines in a pipe, so ``ncf-tui --checklist --headless > report.txt``
keeps the report. ``--json``
prints exactly one JSON object per line on stdout: a ``check`` event per check (again after fixes), a ``step``
event per fix applied (``name`` "fix <check id>"), and a final ``done`` event with the exit code. ``--fix``
applies the safe fixes after confirmation (``--yes`` confirms all; without it a terminal is asked fix by fix
and a script is told to pass ``--yes``) and re-runs the checks they affect. Exit 0 when no check fails, 3
when any does (2 for bad input, as everywhere in the CLI).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine.errors import BadInputError, NcfError
from .engine.events import CheckEvent, DoneEvent, Event, StepEvent

if TYPE_CHECKING:
    from rich.console import Console

    from .engine.aws import AwsTarget
    from .engine.checklist import ChecklistReport, CheckResult
    from .engine.state import RunState

MARK = {"pass": ("✔", "green"), "warn": ("⚠", "yellow"), "fail": ("✘", "red"), "skip": ("–", "dim")}


class _JsonLines:
    def __init__(self, stream: Any) -> None:
        import threading

        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.stream.write(event.to_json() + "\n")
            self.stream.flush()


class _Progress:
    """One line per finished check on stderr (the table at the end has the details)."""

    def __init__(self, console: Console) -> None:
        import threading

        self.console = console
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            if isinstance(event, CheckEvent):
                mark, style = MARK.get(event.status, ("?", ""))
                first = event.evidence.splitlines()[0] if event.evidence else ""
                self.console.print(
                    f"[{style}]{mark} {event.status:<4}[/] {event.id:<15} [dim]{first}[/]",
                    highlight=False,
                    no_wrap=True,
                    overflow="ellipsis",
                    crop=True,
                )
            elif isinstance(event, StepEvent):
                style = "green" if event.status == "done" else "red"
                self.console.print(f"[{style}]{event.name}: {event.message}[/]", highlight=False)


def report_table(report: ChecklistReport) -> Any:
    """The report as a rich Table: status, check, evidence and (for what is not passing) the fix."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title="Troubleshooting checklist", title_justify="left", show_lines=True)
    t.add_column("status", no_wrap=True)
    t.add_column("check")
    t.add_column("evidence")
    t.add_column("fix")
    for r in report.results:
        mark, style = MARK.get(r.status, ("?", ""))
        fix = r.fix if r.status in ("fail", "warn") else ""
        if r.fixable and fix:
            fix += "\n(safe fix: --fix)"
        t.add_row(Text(f"{mark} {r.status}", style=style), Text(f"{r.title}\n[{r.id}]"), Text(r.evidence), Text(fix))
    return t


def report_text(report: ChecklistReport) -> str:
    """The report as plain lines (for a pipe or a file: nothing wraps mid-word, every line greps)."""
    out: list[str] = []
    for r in report.results:
        mark, _style = MARK.get(r.status, ("?", ""))
        out.append(f"{mark} {r.status:<4}  {r.id:<15} {r.title}")
        out += [f"        {line}" for line in r.evidence.splitlines()]
        if r.fix and r.status in ("fail", "warn"):
            out.append(f"        fix: {r.fix}" + ("  (safe fix: --fix)" if r.fixable else ""))
    return "\n".join(out)


def _target(args: argparse.Namespace, stack: ExitStack, console: Console) -> tuple[AwsTarget, dict[str, str], str]:
    """Where to check, what the account's own defaults are, and the flags that reach it again."""
    from .engine.aws import AwsError, AwsTarget, resolve_region

    if getattr(args, "sandbox", False):
        from .sandbox.server import Sandbox

        try:
            sandbox = stack.enter_context(Sandbox(args.sandbox_scenario, region=args.region or "us-east-1"))
        except ValueError as exc:
            raise BadInputError(str(exc)) from None
        derived = sandbox.user_answers()
        if not getattr(args, "json", False):
            console.print(
                f"[bold magenta]SANDBOX[/] embedded local AWS at {sandbox.endpoint_url} (scenario "
                f"{sandbox.scenario.name}): a fresh account, so there is no earlier build to read",
                highlight=False,
            )
        target = AwsTarget(region=sandbox.region, endpoint_url=sandbox.endpoint_url, credentials=sandbox.credentials)
        return target, derived, "sandbox"
    region = resolve_region(args.region, args.profile)
    if not region:
        raise AwsError("no AWS region set", hint="pass --region, or set AWS_DEFAULT_REGION")
    return AwsTarget(region=region, profile=args.profile, endpoint_url=args.endpoint_url), {}, "aws"


def _cli_args(args: argparse.Namespace, mode: str) -> tuple[str, ...]:
    if mode == "sandbox":
        return ("--sandbox",)
    out: list[str] = []
    for flag, value in (("--region", args.region), ("--profile", args.profile), ("--endpoint-url", args.endpoint_url)):
        if value:
            out += [flag, str(value)]
    return tuple(out)


def _state(args: argparse.Namespace, mode: str, console: Console) -> tuple[RunState | None, Path | None]:
    from .engine.checklist import latest_run
    from .engine.state import CorruptState, StateStore

    if args.state is not None:
        store = StateStore(Path(args.state))
        if not store.path.exists():
            raise BadInputError(f"--state {args.state}: no such run state file")
        return store.load(), store.path
    if mode == "sandbox":  # each --sandbox process is a fresh account: an earlier run's jobs are not in it
        return None, None
    found = latest_run(mode)
    if found is None:
        return None, None
    try:
        return found.load(), found.path
    except CorruptState as exc:
        console.print(f"[yellow]{exc.message}[/]; checking without a run state", highlight=False)
        return None, None


def _confirmer(args: argparse.Namespace, console: Console) -> Any:
    if getattr(args, "yes", False):
        return True
    if getattr(args, "json", False) or not sys.stdin.isatty():
        return False

    def ask(result: CheckResult) -> bool:
        console.print(f"[bold]{result.id}[/]: {result.fix}", highlight=False)
        answer = console.input("apply this fix? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    return ask


def run_checklist_cli(args: argparse.Namespace) -> int:
    """Run the checklist headless from parsed CLI flags; returns the exit code (0 no failure, 3 a failure).

    Reads ``json``, ``sandbox``, ``sandbox_scenario``, ``config``, ``region``, ``profile``, ``endpoint_url``,
    ``state``, ``yes`` and ``fix`` from ``args`` (a missing attribute counts as unset). Never raises for
    anything a user can cause: the error is printed (and with ``--json`` also ends the stream as ``done``).
    """
    from rich.console import Console

    from .engine.aws import Aws
    from .engine.checklist import apply_fixes, build_context, run_checklist

    for name in ("json", "sandbox", "yes", "fix"):
        if not hasattr(args, name):
            setattr(args, name, False)
    for name in ("sandbox_scenario", "config", "region", "profile", "endpoint_url", "state"):
        if not hasattr(args, name):
            setattr(args, name, None)
    ci = bool(os.environ.get("CI"))
    console = Console(stderr=True, force_terminal=False if ci else None, no_color=ci or None)
    emit = _JsonLines(sys.stdout) if args.json else _Progress(console)
    try:
        with ExitStack() as stack:
            target, derived, mode = _target(args, stack, console)
            state, state_path = _state(args, mode, console)
            if args.config is not None and not Path(args.config).is_file():
                raise BadInputError(f"--config {args.config}: no such file")
            sandboxed: dict[str, Any] = {}
            if mode == "sandbox":  # a fresh account: neither the environment nor the user's saved answers apply
                sandboxed = {"env": {}, "saved_dir": Path(stack.enter_context(tempfile.TemporaryDirectory()))}
            ctx = build_context(
                Aws(target),
                state=state,
                state_path=state_path,
                config=args.config,
                derived=derived,
                cli_args=_cli_args(args, mode),
                **sandboxed,
            )
            if not args.json and state_path is not None:
                console.print(f"run state: {state_path}", highlight=False)
            report = run_checklist(ctx, emit)
            if args.fix and report.fixable:
                confirm = _confirmer(args, console)
                if confirm is False:
                    message = f"{len(report.fixable)} safe fix(es) offered; pass --yes to apply them"
                    emit(StepEvent(name="fix", status="skipped", message=message))
                else:
                    report, ctx = apply_fixes(ctx, report, emit, confirm=confirm)
    except NcfError as exc:
        if args.json:
            emit(DoneEvent(status="failed", exit_code=int(exc.exit_code), message=str(exc)))
        else:
            console.print(f"[red]ncf-tui: error: {exc.message}[/]", highlight=False)
            if exc.hint:
                console.print(f"  hint: {exc.hint}", highlight=False)
        return int(exc.exit_code)
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    message = f"{len(report.results)} checks: {counts}"
    if args.json:
        status = "ok" if report.exit_code == 0 else "failed"
        emit(DoneEvent(status=status, exit_code=report.exit_code, message=message))
    else:
        if sys.stdout.isatty() and not ci:
            Console().print(report_table(report))
        else:
            sys.stdout.write(report_text(report) + "\n")
        style = "green" if report.exit_code == 0 else "red"
        console.print(f"[{style}]{message}[/]", highlight=False)
    return report.exit_code
