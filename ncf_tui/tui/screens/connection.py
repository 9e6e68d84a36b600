"""Step 1: where the wizard talks to (profile, region, endpoint) and who it is there (STS)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import var
from textual.widgets import Static

from ..messages import Connected, ConnectFailed
from ..session import Connection
from .base import StepScreen, kv_table


class ConnectionScreen(StepScreen):
    STEP = "connection"
    HELP_TEXT = (
        "Who and where the wizard talks to. Against AWS it uses your profile and region (flags --profile, "
        "--region) and asks STS who you are. In sandbox mode an embedded local AWS starts here; nothing "
        "touches a real account."
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "retry", "Retry", show=False)]

    connection: var[Connection | None] = var(None)
    error: var[tuple[str, str] | None] = var(None)

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="main"):
            yield Static("", id="intro", classes="intro")
            yield Static("", id="details", classes="panel")

    def on_mount(self) -> None:
        self.refresh_view()

    @on(Connected)
    def _connected(self, message: Connected) -> None:
        self.error = None
        self.connection = message.connection

    @on(ConnectFailed)
    def _failed(self, message: ConnectFailed) -> None:
        self.error = (message.message, message.hint)

    def watch_connection(self) -> None:
        self.refresh_view()

    def watch_error(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        cfg = self.wizard.config
        intro = self.query_one("#intro", Static)
        if cfg.sandbox:
            intro.update(
                Text.assemble(
                    ("SANDBOX ", "bold"),
                    "An embedded local AWS (moto plus real Neo, IAM and CodeBuild behaviour) runs inside this "
                    "process. The bundled sample checkpoint is preselected. Nothing here touches a real account.",
                )
            )
        else:
            intro.update("Connecting to AWS with your usual credentials (profile, environment or SSO).")
        c = self.connection
        rows: list[tuple[str, object]] = [("Mode", "sandbox (embedded local AWS)" if cfg.sandbox else "AWS")]
        if not cfg.sandbox:
            rows.append(("Profile", cfg.profile or "(default)"))
        rows.append(("Region", c.region if c else (cfg.region or "(from your AWS config)")))
        if cfg.sandbox or cfg.endpoint_url:
            rows.append(("Endpoint", c.endpoint_url if c else (cfg.endpoint_url or "starting…")))
        if cfg.sandbox:
            rows.append(("Scenario", c.scenario if c else (cfg.scenario or "healthy")))
        if c is not None:
            rows.append(("Account", c.account))
            rows.append(("Caller", c.arn))
            rows.append(("Saved answers", c.saved_answers or "(settings module not available yet)"))
        self.query_one("#details", Static).update(kv_table(rows))
        if self.error is not None:
            message, hint = self.error
            text = Text.assemble(("✘ ", "bold"), message)
            if hint:
                text.append(f"\n  hint: {hint}")
            text.append("\n  press r to retry")
            self.set_status(text, "error")
            self.set_primary(enabled=False)
        elif c is None:
            self.set_status("… connecting" + (" (starting the embedded AWS)" if cfg.sandbox else ""), "busy")
            self.set_primary(enabled=False)
        else:
            self.set_status(Text.assemble(("✔ ", "bold"), f"connected as {c.arn}"), "ok")
            self.set_primary(enabled=True, focus=True)

    def action_retry(self) -> None:
        if self.error is not None:
            self.error = None
            self.wizard.connect(reply_to=self)
