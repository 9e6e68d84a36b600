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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine.errors import BadInputError, NcfError
from .engine.events import CheckEvent, DoneEvent, Event, JsonLines, StepEvent

if TYPE_CHECKING:
    from rich.console import Console

    from .engine.checklist import ChecklistReport, CheckResult
    from .engine.state import RunState

MARK = {"pass": ("✔", "green"), "warn": ("⚠", "yellow"), "fail": ("✘", "red"), "skip": ("–", "dim")}


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


def _state(state_file: Path | None, mode: str, console: Console) -> tuple[RunState | None, Path | None]:
    from .engine.checklist import latest_run
    from .engine.state import CorruptState, StateStore

    if state_file is not None:
        store = StateStore(Path(state_file))
        if not store.path.exists():
            raise BadInputError(f"--state {state_file}: no such run state file")
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

    The flags go through :func:`ncf_tui.context.compose` as for a headless run (the keyring's credentials,
    ``--config`` and ``--set``); a flag the checklist cannot honour (``--until``, ``--leave-running``...) is
    refused with exit 2. A missing attribute of ``args`` counts as unset. Never raises for anything a user can
    cause: the error is printed (and with ``--json`` also ends the stream as ``done``).
    """
    from rich.console import Console

    from .context import compose
    from .engine.checklist import apply_fixes, build_context, run_checklist

    ci = bool(os.environ.get("CI"))
    console = Console(stderr=True, force_terminal=False if ci else None, no_color=ci or None)
    as_json = bool(getattr(args, "json", False))
    emit = JsonLines(sys.stdout) if as_json else _Progress(console)
    try:
        with compose(args, "checklist") as ctx:
            ctx.connect()
            if ctx.sandbox is not None and not ctx.json:
                console.print(
                    f"[bold magenta]SANDBOX[/] embedded local AWS at {ctx.sandbox.endpoint_url} (scenario "
                    f"{ctx.sandbox.scenario.name}): a fresh account, so there is no earlier build to read",
                    highlight=False,
                )
            if ctx.credentials is not None and ctx.credentials.source == "keyring" and not ctx.json:
                console.print(ctx.credentials.message, highlight=False)
            state, state_path = _state(ctx.state, ctx.mode, console)
            check_ctx = build_context(
                ctx.aws(),
                state=state,
                state_path=state_path,
                config=ctx.config,
                env=ctx.env,
                saved_dir=ctx.saved_dir,
                derived=ctx.sandbox.user_answers() if ctx.sandbox is not None else None,
                flags=ctx.flags,
                cli_args=ctx.cli_args(),
            )
            if not ctx.json and state_path is not None:
                console.print(f"run state: {state_path}", highlight=False)
            report = run_checklist(check_ctx, emit)
            if ctx.fix and report.fixable:
                confirm = _confirmer(args, console)
                if confirm is False:
                    message = f"{len(report.fixable)} safe fix(es) offered; pass --yes to apply them"
                    emit(StepEvent(name="fix", status="skipped", message=message))
                else:
                    report, check_ctx = apply_fixes(check_ctx, report, emit, confirm=confirm)
    except NcfError as exc:
        if as_json:
            emit(DoneEvent(status="failed", exit_code=int(exc.exit_code), message=str(exc)))
        else:
            console.print(f"[red]ncf-tui: error: {exc.message}[/]", highlight=False)
            if exc.hint:
                console.print(f"  hint: {exc.hint}", highlight=False)
        return int(exc.exit_code)
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    message = f"{len(report.results)} checks: {counts}"
    if as_json:
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
