"""Step 1: where the wizard talks to (profile, region, endpoint), who it is there (STS), and what the run needs.

Once connected, the preflight (``engine.account.preflight``, in a worker) lists every input the chosen steps
need, each present or "will be created" under its name. When something is missing, Continue runs the
account step here: it asks once (the plan: each resource with its policy documents), then each resource
turns "created" as its ``ResourceEvent`` arrives.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import var
from textual.widgets import Static

from ...engine.events import ResourceEvent
from ..messages import Connected, ConnectFailed, PreflightDone, RunFinished
from ..session import Connection
from .base import StepScreen, kv_table

SOURCE_WORDS = {"flag": "--set", "env": "the environment", "config": "--config", "saved": "saved answers"}
"""Where a named input came from, in words (the source's path is left out: it is on the settings screen)."""


class ConnectionScreen(StepScreen):
    STEP = "connection"
    HELP_TEXT = (
        "Who and where the wizard talks to. Against AWS it uses your profile and region (flags --profile, "
        "--region) and asks STS who you are. In sandbox mode an embedded local AWS starts here; nothing "
        "touches a real account. Then every input the run needs (bucket, roles, repository) is listed, present "
        "or to be created; Continue creates what is missing, after one confirmation that shows all of it."
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "retry", "Retry", show=False)]

    connection: var[Connection | None] = var(None)
    error: var[tuple[str, str] | None] = var(None)
    preflight: var[Any] = var(None)
    """``engine.account.Preflight`` once known."""
    preflight_error: var[tuple[str, str] | None] = var(None)
    creating: var[str] = var("")
    """"" | running | done | failed: the account step run from this screen."""
    create_error: var[tuple[str, str] | None] = var(None)

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, str] = {}
        """Each input's latest status (present, will be created, created), from the preflight and the events."""

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="main"):
            yield Static("", id="intro", classes="intro")
            yield Static("", id="details", classes="panel")
            yield Static("", id="preflight", classes="panel")

    def on_mount(self) -> None:
        self.wizard.engine_signal(ResourceEvent).subscribe(self, self._resource_event)
        self.query_one("#preflight", Static).border_title = "What this run needs"
        self.refresh_view()

    @on(Connected)
    def _connected(self, message: Connected) -> None:
        self.error = None
        self.connection = message.connection
        self.wizard.preflight(reply_to=self)

    @on(PreflightDone)
    def _preflight_done(self, message: PreflightDone) -> None:
        self.preflight_error = (message.error, message.hint) if message.preflight is None else None
        if message.preflight is not None:
            self.statuses = {i.name: i.status for i in message.preflight.inputs}
        self.preflight = message.preflight

    def _resource_event(self, event: ResourceEvent) -> None:
        self.statuses[event.setting] = event.status
        if event.status == "created" and not self.is_current:  # the run's first step, started elsewhere
            self.notify(f"created the {event.resource} {event.name}, tagged as ncf-tui's", timeout=6)
        self.refresh_view()

    @on(RunFinished)
    def _run_finished(self, message: RunFinished) -> None:
        if message.until != "account":
            return
        ok = message.status == "ok"
        self.create_error = None if ok else (message.message, message.hint)
        self.creating = "done" if ok else "failed"
        if ok and self.is_current:
            self.wizard.goto_next(self.STEP)

    def watch_preflight(self) -> None:
        self.refresh_view()

    def watch_preflight_error(self) -> None:
        self.refresh_view()

    def watch_creating(self) -> None:
        self.refresh_view()

    @property
    def missing(self) -> list[Any]:
        """The inputs still to be created (none once the account step made them)."""
        if self.preflight is None:
            return []
        return [i for i in self.preflight.inputs if self.statuses.get(i.name) == "will be created"]

    def primary(self) -> None:
        session = self.wizard.session
        has_checkpoint = (session.checkpoint or session.default_checkpoint()) is not None
        if self.missing and self.creating != "done" and has_checkpoint:
            # the account step, first of the run: it asks once, then creates (no checkpoint chosen yet: it asks
            # at the run's start instead, on the screen that starts it)
            if self.wizard.start_run("account", self):
                self.create_error = None
                self.creating = "running"
            return
        super().primary()

    def preflight_view(self) -> Text:
        pre = self.preflight
        if self.preflight_error is not None:
            message, hint = self.preflight_error
            text = Text.assemble(("! ", "bold"), f"could not check the account: {message}")
            return text.append(f"\n  hint: {hint}" if hint else "").append("\n  press r to check again")
        if pre is None:
            return Text("… checking the account for what the run needs" if self.connection else "")
        text = Text.assemble(("Caller ", "bold"), f"{pre.caller_arn}  ", ("Region ", "bold"), pre.region)
        if not pre.inputs:
            text.append("\nThis run needs nothing from the account (a model-only run).")
        mark = {"present": ("✔", "green"), "will be created": ("+", "yellow"), "created": ("✔", "green")}
        for i in pre.inputs:
            status = self.statuses.get(i.name, i.status)
            symbol, style = mark.get(status, ("·", ""))
            text.append("\n")
            text.append(f"{symbol} ", style=f"bold {style}")
            text.append(f"{i.name:<16}", style="bold")
            text.append(f"{i.resource_name:<34} ")
            text.append(status, style=style)
            given = SOURCE_WORDS.get(i.source.split(":", 1)[0], "")
            if given and status != "created":
                text.append(f"  (from {given})", style="dim")
        if pre.missing and not pre.rights_verified:
            text.append(f"\n? {pre.rights_warning}", style="yellow")
        elif pre.denied:
            actions = ", ".join(sorted({r.permission.action for r in pre.denied}))
            text.append(f"\n✘ you may not create them: {actions} denied to the caller", style="red")
        elif pre.missing:
            text.append("\n  your rights to create them: allowed (simulated)", style="dim")
        return text

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
        panel = self.query_one("#preflight", Static)
        panel.display = c is not None
        panel.update(self.preflight_view())
        missing = self.missing
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
        elif self.creating == "running":
            self.set_status(f"… creating {len(missing)} resource(s) (answer the confirmation)", "busy")
            self.set_primary(enabled=False)
        elif self.create_error is not None:
            message, hint = self.create_error
            self.set_status(Text.assemble(("✘ ", "bold"), message, f"\n  hint: {hint}" if hint else ""), "error")
            self.set_primary("Create and continue ▸", enabled=True)
        elif self.preflight is None and self.preflight_error is None:
            # Continue stays open: gone on now, the run's account step asks the same question when it starts
            self.set_status(Text.assemble(("✔ ", "bold"), f"connected as {c.arn}; checking what the run needs…"), "ok")
            self.set_primary(self.PRIMARY_LABEL, enabled=True, focus=True)
        elif missing:
            self.set_status(f"{len(missing)} input(s) will be created: Continue shows the plan and asks once", "busy")
            self.set_primary("Create and continue ▸", enabled=True, focus=True)
        else:
            self.set_status(Text.assemble(("✔ ", "bold"), f"connected as {c.arn}"), "ok")
            self.set_primary(self.PRIMARY_LABEL, enabled=True, focus=True)

    def action_retry(self) -> None:
        if self.error is not None:
            self.error = None
            self.wizard.connect(reply_to=self)
        elif self.preflight_error is not None:
            self.preflight_error = None
            self.wizard.preflight(reply_to=self)
