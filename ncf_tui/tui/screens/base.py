"""What every step screen shares: the header, the footer, the primary button, back with escape."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import Button, Footer, Static

from ..widgets import WizardHeader

if TYPE_CHECKING:
    from ...engine.events import Event
    from ..config import AppConfig
    from ..session import Session

E = TypeVar("E", bound="Event")


class Wizard(Protocol):
    """What the screens ask of the app (``NcfApp`` is one); screens never import the app module."""

    config: AppConfig
    session: Session
    run_active: bool

    def goto_next(self, current: str) -> None: ...
    def step_back(self) -> None: ...
    def action_checklist(self) -> None: ...
    def get_screen(self, screen: str) -> Screen[Any]: ...
    def engine_signal(self, kind: type[E]) -> Signal[E]: ...
    def connect(self, reply_to: MessagePump | None = None) -> None: ...
    def preflight(self, reply_to: MessagePump) -> None: ...
    def describe_checkpoint(self, path: Path, reply_to: MessagePump) -> None: ...
    def run_checklist(self, reply_to: MessagePump, fix: str | None = None) -> None: ...
    def start_run(self, until: str, reply_to: MessagePump) -> bool: ...
    def cancel_run(self, stop_jobs: bool = True) -> None: ...
    def stop_job(self, variant: str, job_name: str) -> None: ...
    def score_user(self, endpoint: str, user: int, reply_to: MessagePump) -> None: ...
    def delete_deployment(self, reply_to: MessagePump) -> None: ...


class StepScreen(Screen[None]):
    """A wizard step: subclasses set ``STEP`` and ``HELP_TEXT`` and compose ``body()``."""

    STEP = ""
    HELP_TEXT = ""
    PRIMARY_LABEL = "Continue ▸"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("enter", "primary", "Continue", show=False),
    ]

    @property
    def wizard(self) -> Wizard:
        return cast(Wizard, self.app)

    def compose(self) -> ComposeResult:
        yield WizardHeader(self.STEP)
        yield from self.body()
        with Horizontal(classes="actions"):
            yield Static("", id="status", classes="status")
            yield Button(self.PRIMARY_LABEL, id="primary", variant="primary", disabled=True)
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def action_back(self) -> None:
        self.wizard.step_back()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "primary":
            event.stop()
            self.primary()

    def action_primary(self) -> None:
        """enter anywhere a widget does not use it presses the primary button (when it is enabled)."""
        if not self.query_one("#primary", Button).disabled:
            self.primary()

    def primary(self) -> None:
        self.wizard.goto_next(self.STEP)

    def set_primary(self, label: str | None = None, *, enabled: bool = True, focus: bool = False) -> None:
        button = self.query_one("#primary", Button)
        if label is not None:
            button.label = label
        button.disabled = not enabled
        if focus and enabled and self.is_current:
            button.focus()

    def set_status(self, text: str | Text, kind: str = "") -> None:
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_classes(f"status {kind}".strip())


def kv_table(rows: list[tuple[str, Any]], key_width: int = 16) -> Text:
    """Aligned ``key  value`` lines."""
    text = Text()
    for i, (key, value) in enumerate(rows):
        if i:
            text.append("\n")
        text.append(f"{key:<{key_width}}", style="bold")
        text.append_text(value if isinstance(value, Text) else Text(str(value)))
    return text
