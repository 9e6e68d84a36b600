"""Step 7: the image as a SageMaker endpoint that answers; score a user; delete it when done.

An endpoint costs money on a real account, so the screen asks before the deploy step runs (``--deploy``
answers yes ahead). The endpoint's status follows the engine's ``endpoint`` events (created, Creating,
InService, or Failed with the reason and the endpoint's CloudWatch lines), the pair, batch and top-10
answers and the latency series its ``invocation`` events. The form scores one user of the sidecar's range
(a Textual ``Integer`` validator bounds it) through ``engine.deploy.invoke`` in a worker.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import var
from textual.validation import Integer
from textual.widgets import Button, DataTable, Input, Static

from ...engine.events import EndpointEvent, InvocationEvent
from ..messages import EndpointDeleted, RunFinished, UserScored
from .base import StepScreen, kv_table

STATUS_MARK = {
    "InService": ("✔", "green"),
    "Failed": ("✘", "red"),
    "OutOfService": ("✘", "red"),
    "UpdateRollbackFailed": ("✘", "red"),
    "Deleted": ("■", "yellow"),
}
COST_NOTE = (
    "A real-time endpoint's instances are charged while the endpoint exists, whether or not it is called. "
    "Delete it on this screen (d) when you are done: endpoint, config and model."
)
"""SageMaker developer guide, "Delete Endpoints and Resources": "Delete endpoints to stop incurring charges";
deleting an endpoint leaves its config and model, so the delete here takes all three
(https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-delete-resources.html)."""


class DeployScreen(StepScreen):
    STEP = "deploy"
    HELP_TEXT = (
        "Serves the image from a SageMaker real-time endpoint: its status as it comes up, the test calls and "
        "their latency, then a form that scores one user (their top-10 items). d deletes the endpoint, its "
        "config and its model (asks first); r deploys again after a failure."
    )
    PRIMARY_LABEL = "Deploy ▸"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "delete", "Delete endpoint"),
        Binding("r", "redeploy", "Deploy again", show=False),
    ]

    state: var[str] = var("idle")
    """idle | declined | deploying | ok | failed | deleting | deleted"""
    message: var[str] = var("")
    endpoint: var[EndpointEvent | None] = var(None)
    scored: var[UserScored | None] = var(None)

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[str] = []
        self.calls: dict[str, InvocationEvent] = {}
        self.failure: EndpointEvent | None = None
        self.user_range: tuple[int, int] = (0, 0)
        self.deleted: list[str] = []

    def body(self) -> ComposeResult:
        with Horizontal(classes="main split"):
            with VerticalScroll(id="deploy-left"):  # a failed endpoint's reason and log lines can run long
                with Vertical(id="endpoint-pane", classes="panel") as pane:
                    pane.border_title = "Endpoint"
                    yield Static("", id="endpoint")
                with Vertical(id="calls-pane", classes="panel") as pane:
                    pane.border_title = "Test calls (sagemaker-runtime InvokeEndpoint)"
                    yield Static("", id="calls")
            with Vertical(id="score-pane", classes="panel") as pane:
                pane.border_title = "Score a user"
                with Horizontal(id="score-form"):
                    yield Input(placeholder="user id", id="user", type="integer", disabled=True)
                    yield Button("Score", id="score", disabled=True)
                yield Static("", id="score-status")
                table: DataTable[Any] = DataTable(id="top", cursor_type="none", show_cursor=False)
                table.add_column("#", width=2)
                table.add_column("item", width=6)
                table.add_column("score", width=8)
                yield table

    def on_mount(self) -> None:
        signal = self.wizard.engine_signal
        signal(EndpointEvent).subscribe(self, self._endpoint)
        signal(InvocationEvent).subscribe(self, self._call)
        self.refresh_view()

    def on_screen_resume(self) -> None:
        if self.state == "idle":
            self.offer()
        self.refresh_view()

    # ---------------------------------------------------------------------------------------- deploying

    def offer(self) -> None:
        """Ask before anything is created (``--deploy`` has answered already)."""
        from .modals import ConfirmModal

        if self.wizard.config.deploy:
            self.deploy()
            return
        where = "the sandbox (nothing is billed)" if self.wizard.config.sandbox else "your AWS account"
        question = ConfirmModal(
            "Deploy the image as a SageMaker endpoint?",
            f"This creates a model, an endpoint config and an endpoint in {where}.\n\n{COST_NOTE}",
            yes="Deploy",
        )

        def decided(yes: bool | None) -> None:
            if yes:
                self.deploy()
            else:
                self.state = "declined"

        self.app.push_screen(question, decided)

    def deploy(self) -> None:
        self.wizard.session.ask_for_deploy()
        if self.wizard.start_run("deploy", self):
            self.statuses.clear()
            self.calls.clear()
            self.failure = None
            self.endpoint = None
            self.scored = None
            self.deleted = []
            self.state = "deploying"

    def action_redeploy(self) -> None:
        if self.state in ("failed", "declined", "deleted"):
            self.offer()

    def _endpoint(self, ev: EndpointEvent) -> None:
        if not self.statuses or self.statuses[-1] != ev.status:
            self.statuses.append(ev.status)
        if ev.log_lines or ev.status in ("Failed", "OutOfService", "UpdateRollbackFailed"):
            self.failure = ev
        self.endpoint = ev

    def _call(self, ev: InvocationEvent) -> None:
        self.calls[ev.request] = ev
        self.refresh_view()

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        deployed = self.wizard.session.result("deploy")
        if message.status == "ok" and deployed is not None:
            self.user_range = deployed.user_range
            low, high = deployed.user_range
            box = self.query_one("#user", Input)
            box.validators = [Integer(minimum=low, maximum=high, failure_description=f"a user id in {low}..{high}")]
            box.placeholder = f"user id {low}..{high}"
            if not box.value:
                box.value = str((low + high) // 2)
            self.message = f"{deployed.endpoint} on {deployed.instance_type}"
            self.state = "ok"
            return
        self.message = message.message.split("\n", 1)[0] + (f" (hint: {message.hint})" if message.hint else "")
        self.state = "declined" if message.status == "unavailable" else "failed"

    # -------------------------------------------------------------------------------------------- scoring

    @on(Input.Submitted, "#user")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.score()

    @on(Button.Pressed, "#score")
    def _score_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.score()

    def score(self) -> None:
        if self.state != "ok" or self.endpoint is None:
            return
        box = self.query_one("#user", Input)
        checked = box.validate(box.value)
        if checked is not None and not checked.is_valid:
            self.scored = UserScored(-1, [], None, "; ".join(checked.failure_descriptions))
            return
        deployed = self.wizard.session.result("deploy")
        if deployed is None:
            return
        self.query_one("#score-status", Static).update(Text(f"… scoring user {box.value}", style="dim"))
        self.wizard.score_user(deployed.endpoint, int(box.value), self)

    @on(UserScored)
    def _scored(self, message: UserScored) -> None:
        message.stop()
        self.scored = message

    # ------------------------------------------------------------------------------------------- deleting

    def action_delete(self) -> None:
        from .modals import ConfirmModal

        entry = self.wizard.session.pipeline.state.steps.get("deploy") if self.wizard.session.pipeline else None
        if self.state not in ("ok", "failed") or not isinstance(entry, dict) or not entry.get("endpoint"):
            self.notify("no endpoint of this run to delete", severity="warning")
            return
        names = f"endpoint {entry['endpoint']}\nendpoint config {entry['config']}\nmodel {entry['model']}"

        def decided(yes: bool | None) -> None:
            if yes:
                self.state = "deleting"
                self.wizard.delete_deployment(self)

        question = ConfirmModal("Delete the endpoint, its config and its model?", names, yes="Delete")
        self.app.push_screen(question, decided)

    @on(EndpointDeleted)
    def _deleted(self, message: EndpointDeleted) -> None:
        message.stop()
        if message.error:
            self.message = f"delete failed: {message.error}"
            self.state = "ok" if self.wizard.session.result("deploy") is not None else "failed"
            return
        self.deleted = list(message.deleted)
        self.message = "deleted: " + (", ".join(message.deleted) or "nothing was left")
        self.state = "deleted"

    # -------------------------------------------------------------------------------------------- drawing

    def watch_state(self) -> None:
        self.refresh_view()

    def watch_message(self) -> None:
        self.refresh_view()

    def watch_endpoint(self) -> None:
        self.refresh_view()

    def watch_scored(self) -> None:
        self.refresh_view()

    def ms(self, value: float | None) -> str:
        """Milliseconds as measured, or ``--`` where the app hides timings (snapshots)."""
        if value is None:
            return "?"
        return f"{value:.1f} ms" if self.wizard.config.timings else "-- ms"

    def _endpoint_text(self) -> Text:
        ev = self.endpoint
        if ev is None:
            waiting = "… creating the model, the config and the endpoint" if self.state == "deploying" else ""
            return Text(waiting or "not deployed", style="dim")
        status = self.statuses[-1] if self.statuses else ev.status
        mark, style = STATUS_MARK.get(status, ("…", "cyan"))
        trail = Text(" → ".join(self.statuses), style="dim")
        rows: list[tuple[str, Any]] = [
            ("Status", Text.assemble((f"{mark} {status}", f"bold {style}"))),
            ("Went", trail),
            ("Name", ev.name),
            ("Config", ev.config),
            ("Model", ev.model),
        ]
        deployed = self.wizard.session.result("deploy")
        if deployed is not None and deployed.instance_type:
            rows.append(("Instance", deployed.instance_type))
        text = kv_table(rows, key_width=10)
        if self.failure is not None:
            text.append("\nReason    ", style="bold")
            text.append(self.failure.failure_reason or "no FailureReason", style="red")
            if self.failure.log_lines:
                text.append("\nCloudWatch /aws/sagemaker/Endpoints/" + self.failure.name, style="bold")
                for line in self.failure.log_lines[-8:]:
                    text.append("\n  " + line, style="dim")
        return text

    def _calls_text(self) -> Text:
        if not self.calls:
            return Text("no calls yet", style="dim")
        rows: list[tuple[str, Any]] = []
        pair = self.calls.get("pair")
        if pair is not None:
            body = pair.body
            rows.append(("Pair", f"({body.get('user_id')}, {body.get('item_id')}) → {pair.scores[0]:.4f}"))
        batch = self.calls.get("batch")
        if batch is not None:
            shown = ", ".join(f"{s:.3f}" for s in batch.scores[:4])
            rows.append(("Batch", f"{len(batch.scores)} pairs → {shown}{', …' if len(batch.scores) > 4 else ''}"))
        top = self.calls.get("top_k")
        if top is not None and top.items:
            best = top.items[0]
            rows.append(
                ("Top-10", f"user {top.body.get('user_id')}: best item {best['item_id']} ({best['score']:.4f})")
            )
        latency = self.calls.get("latency")
        if latency is not None:
            rows.append(
                ("Latency", f"p50 {self.ms(latency.p50_ms)} · p95 {self.ms(latency.p95_ms)} ({latency.calls} calls)")
            )
        return kv_table(rows, key_width=10)

    def _draw_score(self) -> None:
        table = self.query_one("#top", DataTable)
        table.clear()
        out = self.query_one("#score-status", Static)
        scored = self.scored
        if scored is None:
            low, high = self.user_range
            hint = f"a user id in {low}..{high}, then enter" if self.state == "ok" else "once the endpoint is InService"
            out.update(Text(hint, style="dim"))
            return
        if scored.error:
            out.update(Text(f"✘ {scored.error}", style="red"))
            return
        took = self.ms(scored.latency_ms)
        out.update(Text.assemble(("✔ ", "green"), f"user {scored.user}: {len(scored.items)} items in {took}"))
        for rank, item in enumerate(scored.items, 1):
            table.add_row(str(rank), str(item["item_id"]), f"{item['score']:.4f}")

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        self.query_one("#endpoint", Static).update(self._endpoint_text())
        self.query_one("#calls", Static).update(self._calls_text())
        ready = self.state == "ok"
        self.query_one("#user", Input).disabled = not ready
        self.query_one("#score", Button).disabled = not ready
        self._draw_score()
        if self.state == "deploying":
            self.set_status("… deploying: the endpoint comes up, then the test calls", "busy")
            self.set_primary("Deploying…", enabled=False)
        elif self.state == "ok":
            self.set_status(Text.assemble(("✔ InService: ", "bold"), self.message, " · d deletes it"), "ok")
            self.set_primary("Checklist ▸", enabled=True)
        elif self.state == "deleting":
            self.set_status("… deleting the endpoint, its config and its model", "busy")
            self.set_primary(enabled=False)
        elif self.state == "deleted":
            self.set_status(Text.assemble(("■ ", "bold"), self.message), "warn")
            self.set_primary("Checklist ▸", enabled=True)
        elif self.state == "failed":
            failed = Text.assemble(("✘ deploy failed: ", "bold"), self.message, " (d deletes, r again)")
            self.set_status(failed, "error")
            self.set_primary("Checklist ▸", enabled=True)
        elif self.state == "declined":
            note = self.message or "not deployed: nothing was created"
            self.set_status(Text.assemble(note, " · Deploy asks again"), "warn")
            self.set_primary("Deploy ▸", enabled=True)
        else:
            self.set_status("")
            self.set_primary(enabled=False)

    def primary(self) -> None:
        if self.state == "declined":
            self.offer()
        else:
            self.wizard.action_checklist()
