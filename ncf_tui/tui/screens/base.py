"""What every step screen shares: the header, the footer, the primary button, back with escape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

from ..widgets import WizardHeader

if TYPE_CHECKING:
    from ..app import NcfApp


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
    def wizard(self) -> NcfApp:
        return self.app  # type: ignore[return-value]

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

    def wizard_message(self, message: Message) -> None:
        """Every worker message, routed here by the app (screens pick what they need)."""

    def is_mounted_screen(self) -> bool:
        return self.is_mounted and bool(self.query("#primary"))


def kv_table(rows: list[tuple[str, Any]], key_width: int = 16) -> Text:
    """Aligned ``key  value`` lines."""
    text = Text()
    for i, (key, value) in enumerate(rows):
        if i:
            text.append("\n")
        text.append(f"{key:<{key_width}}", style="bold")
        text.append_text(value if isinstance(value, Text) else Text(str(value)))
    return text
