"""The troubleshooting checklist: every check with its status, evidence and fix (engine ``checklist``).

The checks run in a worker as soon as the screen opens (and again with ``r``); each arrives as a
``CheckEvent``. A check with a safe fix is numbered: its number applies the fix after a confirmation and
re-runs the checks it affects.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from ...engine.events import CheckEvent, StepEvent
from ..messages import ChecklistFinished, EngineEvent
from ..widgets import WizardHeader

MARK = {"pass": ("✔ pass", "green"), "warn": ("⚠ warn", "yellow"), "fail": ("✘ fail", "red"), "skip": ("– skip", "dim")}
ORDER = ("credentials", "neo-model", "build", "image", "neo-compile", "service-role", "project", "ecr-repository",
         "build-image")  # fmt: skip


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

    def __init__(self) -> None:
        super().__init__()
        self.checks: dict[str, CheckEvent] = {}
        self.status = "The checks start once the connection is up."
        self.fixable: list[str] = []

    def compose(self) -> ComposeResult:
        yield WizardHeader("checklist")
        with VerticalScroll(classes="main"):
            yield Static("", id="checks", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()
        self.action_rerun()

    def wizard_message(self, message: Message) -> None:
        if isinstance(message, EngineEvent) and isinstance(message.event, CheckEvent):
            self.checks[message.event.id] = message.event
        elif isinstance(message, EngineEvent) and isinstance(message.event, StepEvent):
            if message.event.name.startswith("fix"):
                self.status = f"{message.event.name}: {message.event.status} {message.event.message}".strip()
        elif isinstance(message, ChecklistFinished):
            self.status = message.error or message.message
            if message.hint:
                self.status += f"  ({message.hint})"
        else:
            return
        if self.is_mounted:
            self.refresh_view()

    def refresh_view(self) -> None:
        text = Text()
        text.append("Troubleshooting checklist\n", style="bold")
        text.append(self.status + "\n\n", style="italic")
        self.fixable = []
        for check_id in sorted(self.checks, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER)):
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
        self.status = "running the checks…"
        self.checks.clear()
        self.refresh_view()
        self.app.run_checklist()  # type: ignore[attr-defined]

    def action_fix(self, number: int) -> None:
        if not 1 <= number <= len(self.fixable):
            self.notify(f"no fix numbered {number}", severity="warning")
            return
        check_id = self.fixable[number - 1]
        self.status = f"{check_id}: applying the fix…"
        self.refresh_view()
        self.app.run_checklist(fix=check_id)  # type: ignore[attr-defined]

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
