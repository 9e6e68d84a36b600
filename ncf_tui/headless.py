"""Headless mode: run the pipeline from flags and print its events.

Human progress goes to stderr through rich: a live per-variant table while Neo compiles when stderr is a
terminal, one plain line per change otherwise (or when ``CI`` is set). With ``--json`` stdout carries exactly
one JSON object per line and nothing else. Ctrl-C or SIGTERM stops at a safe point: the jobs this run started
are stopped (or left running with ``--leave-running``), the state is saved, and the exit code is 130.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .engine.neo import Candidate

from .engine.errors import BadInputError, Cancelled, ExitCode, NcfError
from .engine.events import (
    BuildEvent,
    CheckpointEvent,
    DoneEvent,
    EndpointEvent,
    Event,
    ImageEvent,
    InvocationEvent,
    JsonLines,
    LogEvent,
    PermissionEvent,
    ResourceEvent,
    SettingEvent,
    SmokeEvent,
    StepEvent,
    VariantEvent,
)
from .engine.metrics import score_diff_text

if TYPE_CHECKING:
    from rich.console import Console


STATUS_STYLE = {
    "ready": "green",
    "COMPLETED": "green",
    "chosen": "bold green",
    "FAILED": "red",
    "rejected": "yellow",
    "not-submitted": "yellow",
    "STOPPED": "yellow",
    "STOPPING": "yellow",
    "QUEUED": "yellow",
}

RESOURCE_MARK = {
    "present": "[green]✔[/]",
    "will be created": "[yellow]+[/]",
    "created": "[green]+[/]",
    "deleted": "[cyan]-[/]",
    "kept": "[yellow]=[/]",
}
"""A ``ResourceEvent``'s mark by status: found, to be made, made, taken down, left as it was."""


class HumanPrinter:
    """Readable progress on stderr: one line per change, failure reasons under the line that failed."""

    def __init__(self, console: Console, live: bool = False) -> None:
        self.console = console
        self.lock = threading.Lock()
        self.live_enabled = live
        self._live: Any = None
        self._jobs: dict[str, dict[str, Any]] = {}

    def __call__(self, event: Event) -> None:
        with self.lock:
            if self._live_event(event):
                return
            self._print(event)

    # A live per-variant table while Neo compiles (terminal only): one row per job, a spinner and the elapsed
    # time while it runs, the failure reason under a failed row. Elsewhere, one line per change.
    def _live_event(self, event: Event) -> bool:
        if not self.live_enabled:
            return False
        if isinstance(event, StepEvent) and event.name == "compile":
            if event.status == "started":
                from rich.live import Live

                self._jobs = {}
                self._live = Live(self._job_table(), console=self.console, refresh_per_second=8, transient=False)
                self._live.start()
                self._print(event)
                return True
            if self._live is not None:
                self._live.update(self._job_table())
                self._live.stop()
                self._live = None
            return False
        if self._live is not None and isinstance(event, VariantEvent) and event.status not in ("traced", "measured"):
            row = self._jobs.setdefault(event.name, {"started": time.monotonic()})
            row.update(status=event.status, reason=event.failure_reason or row.get("reason"))
            if event.status == "QUEUED":
                row["reason"] = event.message  # why it waits: the quota SageMaker named
            if event.status in ("COMPLETED", "FAILED", "STOPPED", "chosen"):
                row.setdefault("ended", time.monotonic())
            if event.status == "chosen":
                row["status"], row["chosen"] = "COMPLETED", event.message
            self._live.update(self._job_table())
            return True
        return False

    def _job_table(self) -> Any:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        lines: list[Any] = []
        for name, row in self._jobs.items():
            status = row.get("status", "")
            running = status in ("STARTING", "INPROGRESS", "STOPPING")
            grid = Table.grid(padding=(0, 1))
            grid.add_column(width=2)
            grid.add_column(width=17, no_wrap=True)
            grid.add_column(width=13, no_wrap=True)
            grid.add_column(width=6, justify="right")
            done = {"COMPLETED": "✔", "FAILED": "✘", "STOPPED": "■", "not-submitted": "–"}.get(status, "·")
            mark: Any = Spinner("dots") if running else Text("★" if row.get("chosen") else done)
            took = (row.get("ended") or time.monotonic()) - row["started"]
            grid.add_row(mark, name, Text(status.lower(), style=STATUS_STYLE.get(status, "cyan")), f"{took:.0f} s")
            lines.append(grid)
            if row.get("reason") and status in ("FAILED", "not-submitted", "QUEUED"):
                lines.append(Text(f"     └ {row['reason']}", style="yellow"))
            if row.get("chosen"):
                lines.append(Text(f"     └ chosen: {row['chosen']}", style="green"))
        return Group(*lines)

    def _print(self, event: Event) -> None:
        c = self.console
        if isinstance(event, StepEvent):
            if event.status == "started":
                c.print(f"[bold]▶ {event.name}[/]")
            elif event.status == "done":
                c.print(f"[green]✔ {event.name}[/] [dim]({event.elapsed:.1f} s)[/]")
            elif event.status == "skipped":
                c.print(f"[dim]↷ {event.name}: {event.message}[/]", highlight=False)
            elif event.status == "note":
                c.print(f"  [dim]ⓘ {event.message}[/]", highlight=False, markup=True)
            elif event.status == "warning":
                c.print(f"[yellow]! {event.name}: {event.message}[/]", highlight=False)
            else:
                c.print(f"[red]✘ {event.name} {event.status}[/] {event.message}", highlight=False)
        elif isinstance(event, CheckpointEvent):
            c.print(
                f"  {event.path}: {event.architecture}; {event.params:,} parameters, "
                f"{event.pruned_sparsity:.0%} of the pruned layers are zero",
                highlight=False,
            )
            if event.behaviour:
                c.print(f"  {event.layout} layout; {event.behaviour}", highlight=False, markup=False)
        elif isinstance(event, VariantEvent):
            self._variant(event)
        elif isinstance(event, SettingEvent):
            mark = "[green]✔[/]" if event.ok else "[red]✘[/]"
            line = f"  {mark} {event.name:<18} {event.value}"
            if event.message:
                line += f"  [dim]{event.message}[/]" if event.ok else f"\n      [red]└ {event.message}[/]"
            c.print(line, highlight=False)
        elif isinstance(event, PermissionEvent):
            mark = "[green]✔ allowed[/]" if event.decision == "allowed" else f"[red]✘ {event.decision}[/]"
            if event.decision == "unverified":
                mark = "[yellow]? unverified[/]"
            capped = f"  [red](refused by the role's {event.blocked_by}: no inline policy lifts it)[/]"
            if event.blocked_by and event.blocked_by != "permissions boundary":
                capped = f"  [red](refused by an {event.blocked_by}: no inline policy lifts it)[/]"
            tail = capped if event.blocked_by else ""
            c.print(f"  {mark} {event.action:<32} {event.resource}{tail}", highlight=False)
        elif isinstance(event, BuildEvent):
            took = f" ({event.duration:.1f} s)" if event.duration is not None else ""
            style = "red" if event.status in ("FAILED", "FAULT", "TIMED_OUT", "STOPPED") else "cyan"
            c.print(f"  [{style}]{event.phase:<18} {event.status}{took}[/]", highlight=False)
        elif isinstance(event, LogEvent):
            c.print(f"  │ {event.line.rstrip()}", highlight=False, markup=False, soft_wrap=True)
        elif isinstance(event, ImageEvent):
            c.print(f"  [green]image[/] {event.uri}  {event.digest}", highlight=False)
        elif isinstance(event, SmokeEvent):
            mark = "[green]✔ serves[/]" if event.ok else "[red]✘ does not serve[/]"
            c.print(f"  {mark} {event.message}", highlight=False)
        elif isinstance(event, ResourceEvent):
            mark = RESOURCE_MARK.get(event.status, "·")
            why = f"  [dim]({event.message})[/]" if event.message else ""
            c.print(f"  {mark} {event.resource} {event.name} {event.status}{why}", highlight=False)
        elif isinstance(event, EndpointEvent | InvocationEvent):
            self._deploy(event)
        elif isinstance(event, DoneEvent):
            style = "green" if event.exit_code == 0 else "red"
            c.print(f"[{style}]{event.message}[/]", highlight=False)

    def _deploy(self, e: EndpointEvent | InvocationEvent) -> None:
        c = self.console
        if isinstance(e, EndpointEvent):
            style = {"InService": "green", "Failed": "red"}.get(e.status, "cyan")
            c.print(f"  [{style}]endpoint {e.name} {e.status}[/] {e.message}", highlight=False)
            if e.failure_reason:
                c.print(f"      [red]└ {e.failure_reason}[/]", highlight=False)
            for line in e.log_lines:
                c.print(f"      │ {line}", highlight=False, markup=False)
        elif e.request == "latency":
            c.print(f"  invocation latency: {e.message}", highlight=False)
        else:
            shown = e.items[:10] if e.items else e.scores
            c.print(f"  invocation {e.request} {e.latency_ms} ms: {shown}", highlight=False, markup=False)

    def _variant(self, e: VariantEvent) -> None:
        if e.status in ("traced", "measured"):
            return
        style = STATUS_STYLE.get(e.status, "cyan")
        f = e.fidelity or {}
        detail = ""
        if e.status in ("ready", "rejected"):
            diff = score_diff_text(f.get("max_abs_diff", 0))
            detail = f"top-10 overlap {f.get('top10_overlap', 0):.0%}, max |Δscore| {diff}"
        elif e.job_name:
            detail = e.job_name
        line = f"  [{style}]{e.status:<13}[/] {e.name:<17} {detail}"
        if e.message and e.status not in ("ready", "rejected", "traced"):
            line += f"  [dim]{e.message}[/]"
        self.console.print(line, highlight=False)
        if e.failure_reason and e.status != "ready":
            self.console.print(f"      [yellow]└ {e.failure_reason}[/]", highlight=False)


def variants_table(candidates: Sequence[Candidate]) -> Any:
    from rich.table import Table

    t = Table(title="Neo-compatible variants", title_justify="left")
    t.add_column("variant", no_wrap=True)
    t.add_column("Neo preflight")
    for col in ("max |Δscore|", "top-10 overlap", "AUC", "HR@10"):
        t.add_column(col, justify="right", no_wrap=True)
    for c in candidates:
        f = c.fidelity or {}
        missing = c.preflight_message.partition(": ")[2].strip("[]").replace("'", "")
        t.add_row(
            c.name,
            "accepted" if c.accepted else f"rejected: {missing.replace('aten::', '')}",
            score_diff_text(f["max_abs_diff"]) if f else "-",
            f"{f['top10_overlap']:.0%}" if f else "-",
            f"{f['auc']:.3f}" if f.get("auc") is not None else "-",
            f"{f['hr_at_10']:.3f}" if f.get("hr_at_10") is not None else "-",
        )
    return t


def _sigterm_as_interrupt() -> None:
    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def precheck_settings(flags: dict[str, str | None], options: Any, emit: Any) -> None:
    """Refuse a bad config file or a hostile answer before any work: nothing is written, no job launched.

    Only the values the user gave (flags, environment, --config) are checked here, locally and without AWS;
    the settings step checks everything against the account later.
    """
    from .engine.settings import SettingIssue, SettingsError, check_value, resolve_settings, shown

    s = resolve_settings(flags=flags, env=options.env, config=options.config, saved_dir=options.saved_dir, derived={})
    issues = []
    for name, value, source in s.items():
        if value and source.split(":", 1)[0] in ("flag", "env", "config"):
            check = check_value(name, value)
            if not check.ok:
                issues.append(SettingIssue(name, shown(value), source, check.reason))
                emit(SettingEvent(name=name, value=shown(value), ok=False, message=check.reason, source=source))
    if issues:
        raise SettingsError(issues)


def run_headless(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .context import compose
    from .engine.pipeline import Pipeline
    from .engine.state import StateStore
    from .engine.steps import DEFAULT_STEPS, STEPS
    from .engine.steps.deploy import DeployResult
    from .engine.steps.variants import VariantsResult
    from .engine.steps.verify import VerifyResult

    ctx = compose(args, "headless")
    options = ctx.run_options()  # refuses a bad --output-dir before any work
    if ctx.deploy and options.until not in (DEFAULT_STEPS[-1], "deploy"):
        raise BadInputError(f"--deploy runs after {DEFAULT_STEPS[-1]}: drop --until {options.until}")
    ci = bool(os.environ.get("CI"))
    console = Console(stderr=True, force_terminal=False if ci else None, no_color=ci or None)
    emit = JsonLines() if ctx.json else HumanPrinter(console, live=console.is_terminal and not ci)
    started = time.monotonic()
    _sigterm_as_interrupt()

    with ctx:
        try:
            ctx.connect(require_region=STEPS.index(options.until) >= STEPS.index("compile"))
            options = ctx.run_options()  # again: connecting chose the settings sources (a sandbox has its own)
            if ctx.sandbox is not None and not ctx.json:
                sandbox = ctx.sandbox
                console.print(
                    f"[bold magenta]SANDBOX[/] embedded local AWS at {sandbox.endpoint_url} "
                    f"(scenario {sandbox.scenario.name}); nothing here touches a real account",
                    highlight=False,
                )
                builder = "real Docker Engine" if sandbox.docker.mode == "real" else "the fallback builder"
                console.print(f"  docker: {builder} ({sandbox.docker.reason})", highlight=False)
            if ctx.credentials is not None and ctx.credentials.source == "keyring" and not ctx.json:
                console.print(ctx.credentials.message, highlight=False)

            precheck_settings(ctx.flags, options, emit)
            # The run's own flags: the account step adds the names of what it created to them.
            kw: dict[str, Any] = {
                "aws": ctx.aws,
                "compile_config": lambda aws: ctx.compile_config(aws, flags=options.settings_flags),
            }
            if ctx.resume:
                store = ctx.resume_store()
                pipeline = Pipeline.resume(store, options, emit, **kw)
                if not ctx.json:
                    console.print(f"resuming run {pipeline.run_id} from {store.path}", highlight=False)
            else:
                pipeline = Pipeline.new(options, emit, store=StateStore(ctx.state) if ctx.state else None, **kw)
            outcome = pipeline.run(options.until)
        except Cancelled as exc:
            emit(DoneEvent(status="cancelled", exit_code=int(ExitCode.INTERRUPTED), message=exc.message))
            return int(ExitCode.INTERRUPTED)
        except NcfError as exc:
            emit(DoneEvent(status="failed", exit_code=int(exc.exit_code), message=exc.message))
            raise
    variants = outcome.result("variants")
    if not ctx.json and isinstance(variants, VariantsResult) and options.until == "variants":
        console.print(variants_table(variants.candidates))
    message = f"run {outcome.run_id} done through {options.until} in {time.monotonic() - started:.1f} s"
    if outcome.image_uri:
        message += f"; image {outcome.image_uri}"
    deployed = outcome.result("deploy")
    if isinstance(deployed, DeployResult):
        message += f"; endpoint {deployed.endpoint} {deployed.status}"
    elif outcome.chosen:
        message += f"; chosen {outcome.chosen}; NEO_MODEL_S3_URI={outcome.neo_model_s3_uri}"
    verified = outcome.result("verify")
    if not ctx.json and isinstance(verified, VerifyResult) and verified.deploy_commands:
        console.print("[bold]Deploy it as a SageMaker endpoint:[/]")
        for line in verified.deploy_commands:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    emit(DoneEvent(status="ok", exit_code=int(ExitCode.OK), image_uri=outcome.image_uri, message=message))
    return 0
