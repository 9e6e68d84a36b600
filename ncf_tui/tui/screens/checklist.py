"""The troubleshooting checklist: every check with its status, evidence and fix (engine ``checklist``)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from ...engine.events import CheckEvent
from ..messages import EngineEvent
from ..widgets import WizardHeader

MARK = {"pass": ("✔ pass", "green"), "warn": ("⚠ warn", "yellow"), "fail": ("✘ fail", "red"), "skip": ("– skip", "dim")}


class ChecklistScreen(Screen[None]):
    HELP_TEXT = (
        "The troubleshooting checklist from the build guide: is the Neo model where NEO_MODEL_S3_URI points, "
        "did the build fail and why, does the image contain the model, did Neo compile. escape goes back."
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.checks: dict[str, CheckEvent] = {}

    def compose(self) -> ComposeResult:
        yield WizardHeader("checklist")
        with VerticalScroll(classes="main"):
            yield Static("", id="checks", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()

    def wizard_message(self, message: Message) -> None:
        if isinstance(message, EngineEvent) and isinstance(message.event, CheckEvent):
            self.checks[message.event.id] = message.event
            if self.is_mounted:
                self.refresh_view()

    def refresh_view(self) -> None:
        out = self.query_one("#checks", Static)
        if not self.checks:
            available = _module_available()
            out.update(
                Text.assemble(
                    ("Troubleshooting checklist\n\n", "bold"),
                    "The checks run here once the engine's checklist lands in this release."
                    if not available
                    else "No checks have run yet in this session.",
                    "\n\nUntil then, the guide's four checks by hand:\n"
                    "  1. Neo model not found: NEO_MODEL_S3_URI must point at the Neo compile output in S3.\n"
                    "  2. Build failed: read the build log; check the build role's IAM permissions.\n"
                    "  3. Image lacks the model: check the model-copy step in the build log.\n"
                    "  4. Neo compile failed: try the other variants (step 3).",
                )
            )
            return
        text = Text()
        for c in self.checks.values():
            label, style = MARK.get(c.status, (c.status, ""))
            text.append(f"{label:<7} ", style=style)
            text.append(c.title + "\n", style="bold")
            if c.evidence:
                text.append(f"        {c.evidence}\n", style="dim")
            if c.fix and c.status in ("fail", "warn"):
                text.append(f"        fix: {c.fix}\n")
        out.update(text)

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


def _module_available() -> Any:
    import importlib.util

    return importlib.util.find_spec("ncf_tui.engine.checklist") is not None
