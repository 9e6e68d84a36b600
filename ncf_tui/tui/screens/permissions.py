"""Step 5: what the build role may do, from iam:SimulatePrincipalPolicy, with the fix for every deny."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import var
from textual.widgets import DataTable, Static

from ...engine.events import PermissionEvent
from ...engine.iam import SIMULATION_LIMITS
from ..messages import PolicyProposed, RunFinished
from .base import StepScreen


def proposed_policy(denied: list[PermissionEvent]) -> dict[str, Any]:
    """A least-privilege statement per resource for the denied pairs (what 'attach' would add)."""
    by_resource: dict[str, list[str]] = {}
    for p in denied:
        by_resource.setdefault(p.resource, []).append(p.action)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": sorted(set(actions)), "Resource": resource}
            for resource, actions in sorted(by_resource.items())
        ],
    }


class PermissionsScreen(StepScreen):
    STEP = "permissions"
    HELP_TEXT = (
        "Every (action, resource) the build needs, simulated against the CodeBuild service role with "
        "iam:SimulatePrincipalPolicy. For a deny, the least-privilege policy that would fix it is shown; "
        "a attaches it to the role (after you confirm) and checks again."
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("a", "attach", "Attach fix"), Binding("r", "recheck", "Re-check")]

    state: var[str] = var("idle")
    """idle | checking | ok | denied | failed | unavailable"""
    message: var[str] = var("")
    proposed: var[Any] = var(None)
    """The policy document the engine proposes for the denies (it asks before attaching it)."""

    def __init__(self) -> None:
        super().__init__()
        self.perms: dict[tuple[str, str], PermissionEvent] = {}
        self.attached = False

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="main"):
            yield Static("", id="intro", classes="intro")
            table: DataTable[Any] = DataTable(id="perms", cursor_type="row", zebra_stripes=True)
            table.add_columns("", "action", "decision", "matched statement", "resource")
            yield table
            yield Static("", id="policy", classes="panel")

    def on_screen_resume(self) -> None:
        if self.state == "idle":
            self.action_recheck()
        self.refresh_view()

    def on_mount(self) -> None:
        self.wizard.engine_signal(PermissionEvent).subscribe(self, self._permission)
        self.refresh_view()

    def watch_state(self) -> None:
        self.refresh_view()

    def watch_message(self) -> None:
        self.refresh_view()

    def watch_proposed(self) -> None:
        self.refresh_view()

    def action_recheck(self) -> None:
        if self.state == "checking":
            return
        self.wizard.session.forget_from("permissions")
        if self.wizard.start_run("permissions", self):
            self.perms.clear()
            self.state = "checking"

    def action_attach(self) -> None:
        """Run the check again; when something is denied the engine asks (a dialog) before attaching the fix."""
        if not any(p.decision != "allowed" for p in self.perms.values()):
            self.notify("nothing is denied", severity="information")
            return
        self.action_recheck()

    def _permission(self, p: PermissionEvent) -> None:
        self.perms[(p.action, p.resource)] = p
        self.refresh_view()

    @on(PolicyProposed)
    def _proposed(self, message: PolicyProposed) -> None:
        self.proposed = message.policy

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        first = message.message.split("\n", 1)[0]
        self.message = first + (f" (hint: {message.hint})" if message.hint else "")
        done = self.wizard.session.result("permissions")
        self.attached = bool(done is not None and done.attached)
        if message.status == "ok":
            self.state = "denied" if any(p.decision != "allowed" for p in self.perms.values()) else "ok"
        else:
            self.state = {"unavailable": "unavailable", "cancelled": "idle"}.get(message.status, "failed")
        self.refresh_view()  # attached may have changed when the state did not

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#perms", DataTable)
        table.clear()
        # denies first: they are what needs doing
        for p in sorted(self.perms.values(), key=lambda p: p.decision == "allowed"):
            allowed = p.decision == "allowed"
            mark = Content.styled("✔ allow" if allowed else "✘ deny", "$success" if allowed else "bold $error")
            decision = p.decision + (f" ({p.blocked_by})" if p.blocked_by else "")
            table.add_row(mark, p.action, decision, ", ".join(p.matched) or "-", p.resource)
        denied = [p for p in self.perms.values() if p.decision != "allowed"]
        fixable = [p for p in denied if p.decision == "implicitDeny" and not p.blocked_by]
        capped = [p for p in denied if p.blocked_by]
        policy = self.query_one("#policy", Static)
        if fixable:
            document = self.proposed if self.proposed is not None else proposed_policy(fixable)
            policy.update(Syntax(json.dumps(document, indent=2), "json", background_color="default"))
            policy.border_title = "Proposed least-privilege policy (a: attach and re-check)"
        elif capped:
            caps = " and ".join(sorted({p.blocked_by for p in capped}))
            policy.update(
                f"{len(capped)} denied permission(s) are refused by the role's {caps}: no inline policy on the role "
                "can allow them, so none is proposed. Whoever owns the boundary (or the organisation's SCPs) must "
                "allow them there."
            )
            policy.border_title = "Cannot be fixed here"
        policy.display = bool(fixable or capped)
        intro = self.query_one("#intro", Static)
        intro.update(
            "The permissions the CodeBuild service role needs for this build, simulated with "
            f"iam:SimulatePrincipalPolicy.\n{SIMULATION_LIMITS[0].upper()}{SIMULATION_LIMITS[1:]}."
        )
        if self.state == "checking":
            self.set_status("… simulating the role's policies", "busy")
            self.set_primary(enabled=False)
        elif self.state == "ok":
            attached = " (after attaching the fix)" if self.attached else ""
            self.set_status(f"✔ all {len(self.perms)} permissions allowed{attached}", "ok")
            self.set_primary("Continue ▸", enabled=True, focus=True)
        elif self.state == "denied" and not fixable:
            self.set_status(f"✘ {len(denied)} of {len(self.perms)} denied: not fixable by an inline policy", "error")
            self.set_primary("Continue anyway ▸", enabled=True)
        elif self.state == "denied":
            self.set_status(f"✘ {len(denied)} of {len(self.perms)} denied: a attaches the fix", "error")
            self.set_primary("Continue anyway ▸", enabled=True)
        elif self.state == "unavailable":
            self.set_status(Text.assemble(("not available yet: ", "bold"), self.message), "warn")
            self.set_primary("Continue anyway ▸", enabled=True)
        elif self.state == "failed" and denied and not fixable:
            self.set_status(Text.assemble(("✘ ", "bold"), self.message), "error")
            self.set_primary("Continue anyway ▸", enabled=True)
        elif self.state == "failed" and denied:
            self.set_status(f"✘ {len(denied)} of {len(self.perms)} denied: a attaches the fix (asks first)", "error")
            self.set_primary("Continue anyway ▸", enabled=True)
        elif self.state == "failed":
            self.set_status(Text.assemble(("✘ ", "bold"), self.message), "error")
            self.set_primary("Continue anyway ▸", enabled=True)
        else:
            self.set_status("")
            self.set_primary(enabled=False)
