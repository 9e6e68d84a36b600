"""Headless mode: run the pipeline's steps from flags and print their events.

Human progress goes to stderr through rich (one plain line per change when stderr is not a terminal or when
``CI`` is set); with ``--json`` stdout carries exactly one JSON object per line and nothing else.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine.errors import BadInputError, ExitCode, NcfError
from .engine.events import CheckpointEvent, DoneEvent, Event, StepEvent, VariantEvent

if TYPE_CHECKING:
    from rich.console import Console

    from .engine.variants import Variant


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
    """Readable progress on stderr: one line per change, then a summary table."""

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
            else:
                c.print(f"[red]✘ {event.name} {event.status}[/] {event.message}", highlight=False)
        elif isinstance(event, CheckpointEvent):
            c.print(
                f"  {event.path}: {event.architecture}; {event.params:,} parameters, "
                f"{event.pruned_sparsity:.0%} of the pruned layers are zero",
                highlight=False,
            )
        elif isinstance(event, VariantEvent) and event.status in ("ready", "rejected"):
            f = event.fidelity or {}
            mark = "[green]✔[/]" if event.status == "ready" else "[yellow]✘[/]"
            c.print(
                f"  {mark} {event.name:<17} top-10 overlap {f.get('top10_overlap', 0):.0%}, "
                f"max |Δscore| {f.get('max_abs_diff', 0):.2g}  {event.status}",
                highlight=False,
            )
            if event.failure_reason:
                c.print(f"      [yellow]└ Neo preflight: {event.failure_reason}[/]", highlight=False)
        elif isinstance(event, DoneEvent):
            style = "green" if event.exit_code == 0 else "red"
            c.print(f"[{style}]{event.message}[/]", highlight=False)


def variants_table(variants: list[Variant]) -> Any:
    from rich.table import Table

    t = Table(title="Neo-compatible variants", title_justify="left")
    for col in ("variant", "Neo preflight", "max |Δscore|", "top-10 overlap", "AUC", "HR@10"):
        t.add_column(col, justify="left" if col in ("variant", "Neo preflight") else "right")
    for v in variants:
        f = v.fidelity
        t.add_row(
            v.name,
            "accepted" if v.preflight.accepted else "rejected: " + ", ".join(v.preflight.missing),
            f"{f.max_abs_diff:.2g}" if f else "-",
            f"{f.top10_overlap:.0%}" if f else "-",
            f"{f.auc:.3f}" if f and f.auc is not None else "-",
            f"{f.hr_at_10:.3f}" if f and f.hr_at_10 is not None else "-",
        )
    return t


def run_headless(args: argparse.Namespace) -> int:
    from rich.console import Console

    from . import cli
    from .engine.pipeline import DEFAULT_OUTPUT_DIR, check_output_dir, checkpoint_step, variants_step
    from .engine.preflight import DEFAULT_TVM_RELEASE, operator_table
    from .engine.sample import sample_checkpoint_path

    until = args.until or cli.BUILT_STEPS[-1]
    if until not in cli.BUILT_STEPS:
        raise BadInputError(
            f"--until {until}: this release runs the steps {', '.join(cli.BUILT_STEPS)}; "
            "the AWS steps are not built yet"
        )
    release = args.tvm_release or DEFAULT_TVM_RELEASE
    operator_table(release)  # refuse an unknown release before any work
    out_dir = check_output_dir(args.output_dir or DEFAULT_OUTPUT_DIR)
    ckpt_path = args.checkpoint or sample_checkpoint_path()
    if args.checkpoint is not None and not Path(args.checkpoint).exists():
        raise BadInputError(f"--checkpoint {args.checkpoint}: no such file or directory")

    console = Console(stderr=True, force_terminal=None if not os.environ.get("CI") else False)
    emit = JsonPrinter() if args.json else HumanPrinter(console)
    try:
        ckpt = checkpoint_step(ckpt_path, emit)
        if until == "checkpoint":
            emit(DoneEvent(status="ok", exit_code=0, message="checkpoint checked"))
            return 0
        variants = variants_step(ckpt, out_dir, emit, release=release)
    except NcfError as exc:
        emit(DoneEvent(status="failed", exit_code=int(exc.exit_code), message=exc.message))
        raise
    if not args.json:
        console.print(variants_table(variants))
    ready = [v.name for v in variants if v.preflight.accepted]
    emit(
        DoneEvent(
            status="ok",
            exit_code=int(ExitCode.OK),
            message=f"{len(ready)} of {len(variants)} variants pass the Neo preflight; archives in {out_dir}",
        )
    )
    return 0
