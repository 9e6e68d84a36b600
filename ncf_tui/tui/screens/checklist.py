"""The troubleshooting checklist: every check with its status, evidence and fix (engine ``checklist``).

The checks run in a worker as soon as the screen opens (and again with ``r``); each arrives as a
``CheckEvent``. A check with a safe fix is numbered: its number applies the fix after a confirmation and
re-runs the checks it affects.
"""

from __future__ import annotations

from typing import ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static

from ...engine.events import CheckEvent, StepEvent
from ..messages import ChecklistFinished
from ..widgets import WizardHeader
from .base import Wizard

MARK = {"pass": ("✔ pass", "green"), "warn": ("⚠ warn", "yellow"), "fail": ("✘ fail", "red"), "skip": ("– skip", "dim")}


def _report_order(check_id: str) -> int:
    """Where the engine's report lists a check. Imported here, not at the top: this screen is made at the app's
    start, and the checklist module (the checks, boto3's helpers) is only loaded once a check has run."""
    from ...engine.checklist import CHECK_IDS

    return CHECK_IDS.index(check_id) if check_id in CHECK_IDS else len(CHECK_IDS)


class ChecklistScreen(Screen[None]):
    HELP_TEXT = (
        "The troubleshooting checklist from the build guide, run against the account: is the Neo model where "
        "NEO_MODEL_S3_URI points, did the build fail and why, does the image contain the model, did Neo compile, "
        "and the role, project, repository and build image. r runs every check again; a number applies that "
        "check's safe fix after you confirm. escape goes back."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("r", "rerun", "Run again"),
        *[Binding(str(n), f"fix({n})", f"Fix {n}", show=False) for n in range(1, 10)],
    ]

    status: var[str] = var("The checks start once the connection is up.")

    def __init__(self) -> None:
        super().__init__()
        self.checks: dict[str, CheckEvent] = {}
        self.fixable: list[str] = []

    @property
    def wizard(self) -> Wizard:
        return cast(Wizard, self.app)

    def compose(self) -> ComposeResult:
        yield WizardHeader("checklist")
        with VerticalScroll(classes="main"):
            yield Static("", id="checks", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        self.wizard.engine_signal(CheckEvent).subscribe(self, self._check)
        self.wizard.engine_signal(StepEvent).subscribe(self, self._step)
        self.refresh_view()
        self.action_rerun()

    def watch_status(self) -> None:
        self.refresh_view()

    def _check(self, ev: CheckEvent) -> None:
        self.checks[ev.id] = ev
        self.refresh_view()

    def _step(self, ev: StepEvent) -> None:
        if ev.name.startswith("fix"):
            self.status = f"{ev.name}: {ev.status} {ev.message}".strip()

    @on(ChecklistFinished)
    def _finished(self, message: ChecklistFinished) -> None:
        self.status = (message.error or message.message) + (f"  ({message.hint})" if message.hint else "")

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        text = Text()
        text.append("Troubleshooting checklist\n", style="bold")
        text.append(self.status + "\n\n", style="italic")
        self.fixable = []
        for check_id in sorted(self.checks, key=_report_order):
            c = self.checks[check_id]
            label, style = MARK.get(c.status, (c.status, ""))
            number = "  "
            if c.fix and c.status in ("fail", "warn"):
                self.fixable.append(c.id)
                number = f"{len(self.fixable)} " if len(self.fixable) < 10 else "  "
            text.append(number, style="bold")
            text.append(f"{label:<7} ", style=style)
            text.append(c.title + "\n", style="bold")
            if c.evidence:
                text.append(f"          {c.evidence}\n", style="dim")
            if c.fix and c.status in ("fail", "warn"):
                text.append(f"          fix: {c.fix}\n")
        if not self.checks:
            text.append(
                "The guide's four checks, by hand:\n"
                "  1. Neo model not found: NEO_MODEL_S3_URI must point at the Neo compile output in S3.\n"
                "  2. Build failed: read the build log; check the build role's IAM permissions.\n"
                "  3. Image lacks the model: check the model-copy step in the build log.\n"
                "  4. Neo compile failed: try the other variants (step 3).\n",
                style="dim",
            )
        self.query_one("#checks", Static).update(text)

    def action_rerun(self) -> None:
        self.checks.clear()
        self.status = "running the checks…"
        self.refresh_view()  # the old checks go even when the status reads the same
        self.wizard.run_checklist(self)

    def action_fix(self, number: int) -> None:
        if not 1 <= number <= len(self.fixable):
            self.notify(f"no fix numbered {number}", severity="warning")
            return
        check_id = self.fixable[number - 1]
        self.status = f"{check_id}: applying the fix…"
        self.wizard.run_checklist(self, fix=check_id)

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
