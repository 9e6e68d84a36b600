"""Small widgets every screen shares: the header with the step trail and the account badge, and bars."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

STEP_TITLES: tuple[tuple[str, str], ...] = (
    ("connection", "Connect"),
    ("checkpoint", "Checkpoint"),
    ("variants", "Compile"),
    ("settings", "Settings"),
    ("permissions", "Permissions"),
    ("build", "Build"),
    ("deploy", "Deploy"),
)
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class WizardHeader(Widget):
    """One line: the product, the step trail (current step marked ▸, not by colour alone), the badge.

    The badge says SANDBOX on every screen in sandbox mode, and the account id and region against AWS,
    so no one mistakes one for the other.
    """

    DEFAULT_CSS = """
    WizardHeader { height: 1; dock: top; background: $panel; color: $text; }
    """

    def __init__(self, step: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.step = step

    def on_mount(self) -> None:
        self.watch(self.app, "badge", self._badge_changed, init=False)

    def _badge_changed(self, _value: str) -> None:
        self.refresh()

    def _trail(self, compact: bool) -> Text:
        trail = Text()
        for i, (name, title) in enumerate(STEP_TITLES, 1):
            if i > 1:
                trail.append(" ")  # between steps only: the last one's pad is the space before the badge
            label = f"{i}" if compact and name != self.step else f"{i} {title}"
            if name == self.step:
                trail.append(f"▸{label}", style="bold reverse")
            else:
                trail.append(f" {label}", style="dim")
        if self.step == "checklist":
            trail.append(" ")
            trail.append("▸Checklist", style="bold reverse")
        return trail

    def render(self) -> Text:
        badge = str(getattr(self.app, "badge", ""))
        sandbox = bool(getattr(self.app, "sandbox_mode", False))
        width = self.size.width or 100
        left = Text(" ncf-tui ", style="bold")
        right = Text(f" {badge} ", style="bold white on dark_magenta" if sandbox else "bold reverse")
        trail = self._trail(compact=False)
        if left.cell_len + trail.cell_len + right.cell_len + 1 > width:
            trail = self._trail(compact=True)  # the badge always stays whole: it says where this runs
        pad = max(1, width - left.cell_len - trail.cell_len - right.cell_len)
        return Text.assemble(left, trail, " " * pad, right)


def bar(fraction: float, width: int = 20) -> str:
    """A text bar with its percentage (readable without colour)."""
    fraction = min(1.0, max(0.0, fraction))
    full = round(fraction * width)
    return "█" * full + "░" * (width - full) + f" {fraction:>4.0%}"
