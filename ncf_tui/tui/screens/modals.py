"""Dialogs: quit while a job runs, resume an unfinished run, confirm an account change, the key help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from ...engine.state import RunState
    from ...engine.steps.deploy import DeployResult


class QuitModal(ModalScreen[str | None]):
    """A step is running: stop its jobs and quit, leave them running and quit, or keep working."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Keep working"),
        Binding("s", "choose('stop')", "Stop and quit"),
        Binding("l", "choose('leave')", "Leave running"),
    ]

    def __init__(self, jobs: list[str]) -> None:
        super().__init__()
        self.jobs = jobs

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Quit while a step is running?", classes="dialog-title")
            if self.jobs:
                body = f"Neo jobs still running: {', '.join(self.jobs)}."
            else:
                body = "A step of this run is still working."
            body += " The run is saved either way; start ncf-tui again to resume it."
            yield Static(body)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop and quit (s)", id="stop", variant="error")
                yield Button("Leave running (l)", id="leave", variant="warning")
                yield Button("Stay (esc)", id="stay", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "stay" else event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ResumeModal(ModalScreen[bool]):
    """An unfinished run was found on start: continue it, or start a new one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "New run"),
        Binding("r", "answer(True)", "Resume"),
    ]

    def __init__(self, path: Path, state: RunState) -> None:
        super().__init__()
        self.path = path
        self.state = state

    def compose(self) -> ComposeResult:
        done = [k for k, v in self.state.steps.items() if isinstance(v, dict) and v.get("status") == "done"]
        text = Text()
        text.append("run      ", style="bold")
        text.append(f"{self.state.run_id} (started {self.state.created})\n")
        text.append("model    ", style="bold")
        text.append(f"{Path(self.state.checkpoint).name}\n")
        text.append("done     ", style="bold")
        text.append(f"{', '.join(done) or 'nothing yet'}\n")
        text.append("state    ", style="bold")
        text.append(str(self.path))
        with Vertical(classes="dialog"):
            yield Static("Resume the unfinished run?", classes="dialog-title")
            yield Static(text)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Resume (r)", id="resume", variant="primary")
                yield Button("New run (esc)", id="new")

    def on_mount(self) -> None:
        self.query_one("#resume", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "resume")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ConfirmModal(ModalScreen[bool]):
    """Yes or no before anything that changes the account or a value; the change is shown in full."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, title: str, body: str, *, syntax: str | None = None, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.syntax = syntax
        self.yes = yes
        self.no = no

    @classmethod
    def for_topic(cls, topic: str, detail: Any, step: str = "") -> ConfirmModal:
        """The dialog for one of the engine's questions (``pipeline.Ask`` topics), asked by the run of ``step``."""
        if topic == "attach-policy":
            role = "SageMaker execution role" if step == "deploy" else "CodeBuild role"
            return cls(
                f"Attach this policy to the {role}, then check again?",
                json.dumps(detail, indent=2),
                syntax="json",
                yes="Attach and re-check",
            )
        if topic == "create-resources":
            from ...engine.account import plan_text

            resources = list(detail or [])
            names = ", ".join(f"{r.kind} {r.name}" for r in resources)
            return cls(
                f"Create {len(resources)} resource(s) for this run, tagged as ncf-tui's? ({names})",
                plan_text(resources),
                yes="Create them",
            )
        if topic == "setting-fix":
            fix = getattr(detail, "fix", None)
            body = f"{getattr(detail, 'name', '')} = {getattr(detail, 'value', '')!r}\n{getattr(detail, 'reason', '')}"
            if fix is not None:
                body += f"\n\nfix: {fix.description}"
            return cls(f"Fix {getattr(detail, 'name', 'this setting')}?", body, yes="Apply the fix")
        if topic == "update-project":
            changes = "\n".join(str(c) for c in (detail or []))
            return cls("Update the CodeBuild project with these changes?", changes or str(detail), yes="Update")
        if topic == "checklist-fix":
            title = getattr(detail, "title", "this check")
            body = f"{title}\n\n{getattr(detail, 'evidence', '')}\n\nfix: {getattr(detail, 'fix', '')}"
            return cls(f"Apply the safe fix for {getattr(detail, 'id', 'this check')}?", body, yes="Apply and re-check")
        return cls(f"Go ahead? ({topic})", str(detail))

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                if self.syntax:
                    yield Static(Syntax(self.body, self.syntax, background_color="default"))
                else:
                    yield Static(Text(self.body))  # the engine's words, never read as markup
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="warning")
                yield Button(f"{self.no} (esc)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class EndpointQuitModal(ConfirmModal):
    """Quitting while the run's endpoint is InService: it is billed until deleted, so say how to delete it."""

    def __init__(self, deployed: DeployResult, *, region: str, sandbox: bool) -> None:
        name = deployed.endpoint
        where = f" --region {region}" if region else ""
        body = (
            f"Endpoint {name} ({deployed.instance_type}{', ' + region if region else ''}) is InService, and "
            "SageMaker charges for it until it is deleted. Stay and press d on the deploy screen to delete it with "
            "its config and model, or later:\n"
            f"  aws sagemaker delete-endpoint{where} --endpoint-name {name}\n"
            f"  aws sagemaker delete-endpoint-config{where} --endpoint-config-name {deployed.config}\n"
            f"  aws sagemaker delete-model{where} --model-name {deployed.model}"
        )
        if sandbox:
            body = "In the sandbox it costs nothing and goes when ncf-tui quits; on AWS it would stay.\n\n" + body
        super().__init__("Quit and leave the endpoint running?", body, yes="Leave it and quit", no="Stay")


class HelpModal(ModalScreen[None]):
    """What this step is for and every key it answers to."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss_help", "Close")]

    def __init__(self, about: str, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.about = about
        self.keys = keys

    def compose(self) -> ComposeResult:
        text = Text()
        if self.about:
            text.append(self.about + "\n\n")
        seen: set[tuple[str, str]] = set()
        for key, description in self.keys:
            if (key, description) in seen:
                continue
            seen.add((key, description))
            text.append(f"{key:>10}  ", style="bold")
            text.append(description + "\n")
        text.append(f"{'enter':>10}  ", style="bold")
        text.append("press the focused button (the primary one continues)\n")
        text.append(f"{'ctrl+p':>10}  ", style="bold")
        text.append("command palette: every action by name\n")
        with Vertical(classes="dialog wide"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(text)
            yield Static("escape closes", classes="dim")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
