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
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

from .engine.errors import BadInputError, Cancelled, ExitCode, NcfError
from .engine.events import CheckpointEvent, DoneEvent, Event, StepEvent, VariantEvent

if TYPE_CHECKING:
    from rich.console import Console

    from .engine.aws import Aws
    from .engine.neo import CompileConfig

STATUS_STYLE = {
    "ready": "green",
    "COMPLETED": "green",
    "chosen": "bold green",
    "FAILED": "red",
    "rejected": "yellow",
    "not-submitted": "yellow",
    "STOPPED": "yellow",
    "STOPPING": "yellow",
}


class JsonPrinter:
    """``--json``: one event per line on stdout, flushed at once so a reader sees it live."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.stream.write(event.to_json() + "\n")
            self.stream.flush()


class HumanPrinter:
    """Readable progress on stderr: one line per change, failure reasons under the line that failed."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self._print(event)

    def _print(self, event: Event) -> None:
        c = self.console
        if isinstance(event, StepEvent):
            if event.status == "started":
                c.print(f"[bold]▶ {event.name}[/]")
            elif event.status == "done":
                c.print(f"[green]✔ {event.name}[/] [dim]({event.elapsed:.1f} s)[/]")
            elif event.status == "skipped":
                c.print(f"[dim]↷ {event.name}: {event.message}[/]", highlight=False)
            else:
                c.print(f"[red]✘ {event.name} {event.status}[/] {event.message}", highlight=False)
        elif isinstance(event, CheckpointEvent):
            c.print(
                f"  {event.path}: {event.architecture}; {event.params:,} parameters, "
                f"{event.pruned_sparsity:.0%} of the pruned layers are zero",
                highlight=False,
            )
        elif isinstance(event, VariantEvent):
            self._variant(event)
        elif isinstance(event, DoneEvent):
            style = "green" if event.exit_code == 0 else "red"
            c.print(f"[{style}]{event.message}[/]", highlight=False)

    def _variant(self, e: VariantEvent) -> None:
        if e.status in ("traced", "measured"):
            return
        style = STATUS_STYLE.get(e.status, "cyan")
        f = e.fidelity or {}
        detail = ""
        if e.status in ("ready", "rejected"):
            detail = f"top-10 overlap {f.get('top10_overlap', 0):.0%}, max |Δscore| {f.get('max_abs_diff', 0):.2g}"
        elif e.job_name:
            detail = e.job_name
        line = f"  [{style}]{e.status:<13}[/] {e.name:<17} {detail}"
        if e.message and e.status not in ("ready", "rejected", "traced"):
            line += f"  [dim]{e.message}[/]"
        self.console.print(line, highlight=False)
        if e.failure_reason and e.status != "ready":
            self.console.print(f"      [yellow]└ {e.failure_reason}[/]", highlight=False)


def variants_table(candidates: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    t = Table(title="Neo-compatible variants", title_justify="left")
    for col in ("variant", "Neo preflight", "max |Δscore|", "top-10 overlap", "AUC", "HR@10"):
        t.add_column(col, justify="left" if col in ("variant", "Neo preflight") else "right")
    for c in candidates:
        f = c.get("fidelity") or {}
        missing = c.get("preflight_message", "").partition(": ")[2]
        t.add_row(
            c["name"],
            "accepted" if c["accepted"] else f"rejected {missing}",
            f"{f['max_abs_diff']:.2g}" if f else "-",
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


def _real_compile_config(aws: Aws) -> CompileConfig:
    """Compile settings for a real account, from the environment (the settings step refines these)."""
    from .engine.neo import CompileConfig

    bucket = os.environ.get("NCF_TUI_BUCKET", "")
    role = os.environ.get("NCF_TUI_SAGEMAKER_ROLE", "")
    if not bucket or not role:
        raise BadInputError(
            "compiling on AWS needs a bucket and a SageMaker execution role",
            hint="set NCF_TUI_BUCKET and NCF_TUI_SAGEMAKER_ROLE (an IAM role ARN SageMaker can assume)",
        )
    return CompileConfig(
        bucket=bucket,
        prefix=os.environ.get("NCF_TUI_PREFIX", "ncf-tui"),
        role_arn=role,
        target_device=os.environ.get("NCF_TUI_TARGET_DEVICE", "ml_c5"),
    )


def run_headless(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .engine.aws import Aws, AwsTarget
    from .engine.pipeline import DEFAULT_OUTPUT_DIR, STEPS, Pipeline, RunOptions, check_output_dir
    from .engine.preflight import DEFAULT_TVM_RELEASE, operator_table
    from .engine.sample import sample_checkpoint_path
    from .engine.state import StateStore, latest_unfinished
    from .engine.variants import VARIANT_NAMES

    release = args.tvm_release or DEFAULT_TVM_RELEASE
    operator_table(release)  # refuse an unknown release before any work
    out_dir = check_output_dir(args.output_dir or DEFAULT_OUTPUT_DIR)
    if args.checkpoint is not None and not Path(args.checkpoint).exists():
        raise BadInputError(f"--checkpoint {args.checkpoint}: no such file or directory")
    force = frozenset(args.force or ())
    unknown = sorted(force - set(VARIANT_NAMES))
    if unknown:
        raise BadInputError(f"--force {', '.join(unknown)}: unknown variant; choose from {', '.join(VARIANT_NAMES)}")
    mode = "sandbox" if args.sandbox else "aws"
    options = RunOptions(
        checkpoint=Path(args.checkpoint) if args.checkpoint else sample_checkpoint_path(),
        output_dir=out_dir,
        until=args.until or "compile",
        release=release,
        force=force,
        stop_on_cancel=not args.leave_running,
        mode=mode,
    )
    ci = bool(os.environ.get("CI"))
    console = Console(stderr=True, force_terminal=False if ci else None, no_color=ci or None)
    emit = JsonPrinter() if args.json else HumanPrinter(console)
    started = time.monotonic()
    _sigterm_as_interrupt()

    with ExitStack() as stack:
        try:
            if args.sandbox:
                from .sandbox.server import Sandbox

                try:
                    sandbox = stack.enter_context(Sandbox(args.sandbox_scenario, region=args.region or "us-east-1"))
                except ValueError as exc:
                    raise BadInputError(str(exc)) from None
                target = AwsTarget(
                    region=sandbox.region, endpoint_url=sandbox.endpoint_url, credentials=sandbox.credentials
                )
                defaults = sandbox.project_defaults()

                def sandbox_compile_config(_aws: Aws) -> CompileConfig:
                    from .engine.neo import CompileConfig

                    return CompileConfig(
                        bucket=defaults["bucket"], prefix=defaults["prefix"], role_arn=defaults["sagemakerRoleArn"]
                    )

                compile_config: Callable[[Aws], CompileConfig] = sandbox_compile_config

                if not args.json:
                    console.print(
                        f"[bold magenta]SANDBOX[/] embedded local AWS at {sandbox.endpoint_url} "
                        f"(scenario {sandbox.scenario.name}); nothing here touches a real account",
                        highlight=False,
                    )
            else:
                region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
                target = AwsTarget(region=region, profile=args.profile, endpoint_url=args.endpoint_url)
                compile_config = _real_compile_config

            def aws_factory() -> Aws:
                if not target.region:
                    from .engine.aws import AwsError

                    raise AwsError("no AWS region set", hint="pass --region, or set AWS_DEFAULT_REGION")
                return Aws(target)

            kw: dict[str, Any] = {"aws": aws_factory, "compile_config": compile_config}
            if args.resume:
                store = StateStore(args.state) if args.state else latest_unfinished(mode)
                if store is None:
                    raise BadInputError(f"no unfinished {mode} run to resume", hint="start one without --resume")
                pipeline = Pipeline.resume(store, options, emit, **kw)
                if not args.json:
                    console.print(f"resuming run {pipeline.run_id} from {store.path}", highlight=False)
            else:
                pipeline = Pipeline.new(options, emit, store=StateStore(args.state) if args.state else None, **kw)
            outcome = pipeline.run(options.until)
        except Cancelled as exc:
            emit(DoneEvent(status="cancelled", exit_code=int(ExitCode.INTERRUPTED), message=exc.message))
            return int(ExitCode.INTERRUPTED)
        except NcfError as exc:
            emit(DoneEvent(status="failed", exit_code=int(exc.exit_code), message=exc.message))
            raise
    if not args.json and "candidates" in outcome.results and STEPS.index(options.until) >= 1:
        console.print(variants_table(outcome.results["candidates"]))
    message = f"run {outcome.run_id} done through {options.until} in {time.monotonic() - started:.1f} s"
    if outcome.chosen:
        message += f"; chosen {outcome.chosen}; NEO_MODEL_S3_URI={outcome.neo_model_s3_uri}"
    if outcome.results.get("inference_image"):
        message += f"; Neo inference image {outcome.results['inference_image']}"
    emit(DoneEvent(status="ok", exit_code=int(ExitCode.OK), image_uri=outcome.image_uri, message=message))
    return 0
