"""Step 3: the five variants, their fidelity and Neo preflight, then live Neo compile status per variant.

One row per variant, Copilot style: the status on the row (with a spinner and elapsed time while a job runs)
and the reason under the row that failed, or why the chosen one was chosen. Every status carries a symbol
and a word, so nothing depends on colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import var
from textual.widgets import Static

from ...engine.events import StepEvent, VariantEvent
from ...engine.metrics import score_diff_text
from ...engine.names import VARIANT_NAMES
from ..messages import NewRun, RunFinished
from ..widgets import SPINNER
from .base import StepScreen

if TYPE_CHECKING:
    from ...engine.neo import Candidate

RUNNING = frozenset({"STARTING", "INPROGRESS", "PENDING"})
STATUS_WORDS: dict[str, tuple[str, str, str]] = {
    # status: (symbol, words, style class)
    "waiting": ("·", "waiting", "dim"),
    "traced": ("·", "traced", "dim"),
    "measured": ("·", "measured", "dim"),
    "ready": ("✔", "preflight passed", "ok"),
    "rejected": ("✘", "preflight rejects", "warn"),
    "not-submitted": ("–", "not submitted", "warn"),
    "QUEUED": ("·", "queued: Neo quota", "warn"),
    "STARTING": ("", "starting", "busy"),
    "INPROGRESS": ("", "compiling", "busy"),
    "COMPLETED": ("✔", "compiled", "ok"),
    "FAILED": ("✘", "compile failed", "error"),
    "STOPPING": ("■", "stopping", "warn"),
    "STOPPED": ("■", "stopped", "warn"),
    "chosen": ("★", "chosen", "chosen"),
}
STYLE = {
    # theme variables: readable on dark and light themes alike (and every status also has a symbol and words)
    "dim": "dim",
    "ok": "$success",
    "warn": "$warning",
    "busy": "$accent",
    "error": "$error",
    "chosen": "bold $success",
}


@dataclass
class RowState:
    name: str
    status: str = "waiting"
    fidelity: dict[str, Any] | None = None
    accepted: bool | None = None
    preflight_message: str = ""
    failure_reason: str = ""
    job_name: str = ""
    started: float | None = None
    ended: float | None = None
    note: str = ""
    forced: bool = False
    chosen_reason: str = ""
    compiled: bool = False


class VariantRow(Static, can_focus=True):
    """One variant: a line of figures and status, and a second line for a reason (failure or choice)."""

    def __init__(self, state: RowState) -> None:
        super().__init__(id=f"row-{state.name}", classes="variant-row")
        self.state = state

    def show(self, clock: float, animate: bool) -> None:
        s = self.state
        symbol, words, kind = STATUS_WORDS.get(s.status, ("?", s.status.lower(), "dim"))
        if s.status in RUNNING:
            symbol = SPINNER[int(clock * 10) % len(SPINNER)] if animate else SPINNER[0]
        elapsed = ""
        if s.started is not None and (s.status in RUNNING or s.status in ("COMPLETED", "FAILED", "STOPPED", "chosen")):
            elapsed = f" {max(0.0, (s.ended if s.ended is not None else clock) - s.started):.0f}s"
        f = s.fidelity or {}
        overlap = f"{float(f['top10_overlap']):>4.0%}" if "top10_overlap" in f else "   -"
        diff = f"{score_diff_text(float(f['max_abs_diff'])):>7}" if "max_abs_diff" in f else "      -"
        pre = "-" if s.accepted is None else ("✔ ok" if s.accepted else "✘ no")
        parts: list[str | tuple[str, str]] = [
            ("★ " if s.status == "chosen" else "  ", "bold"),
            (f"{s.name:<17}", "bold"),
            f"{overlap}  {diff}  {pre:<5}  ",
            (f"{symbol} {words}{elapsed}", STYLE[kind]),
        ]
        if s.forced and s.status in ("rejected", "ready", "not-submitted", "waiting", "measured", "traced"):
            parts.append(("  [force]", "bold"))
        elif s.forced:
            parts.append(("  (forced)", "dim"))
        reason = ""
        if s.status == "chosen" and s.chosen_reason:
            reason = s.chosen_reason
        elif s.failure_reason and s.status not in ("ready", "COMPLETED", "chosen"):
            reason = s.failure_reason
        elif s.note:
            reason = s.note
        if reason:
            parts.append((f"\n    └ {reason}", STYLE["error" if s.status == "FAILED" else "dim"]))
        line = Content.assemble(*parts)
        self.update(line)


class VariantsScreen(StepScreen):
    STEP = "variants"
    PRIMARY_LABEL = "Compile ▸"
    HELP_TEXT = (
        "Each variant of the model is traced, checked offline against the operators Neo accepts, and measured "
        "against the original (top-10 overlap, max score difference). Compile submits every variant that "
        "passed (and any you force) to SageMaker Neo, and the most faithful one that compiles is chosen."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "force", "Force submit"),
        Binding("s", "stop", "Stop job"),
        Binding("o", "override", "Choose this"),
        Binding("c", "cancel_run", "Cancel run"),
        # priority: the scrolling container would take up/down first and the rows could not be walked
        Binding("up", "focus_row(-1)", "Up", show=False, priority=True),
        Binding("down", "focus_row(1)", "Down", show=False, priority=True),
    ]

    phase: var[str] = var("idle")
    """idle | preparing | ready | compiling | compiled | failed | cancelled | broken"""
    message: var[str] = var("")
    hint: var[str] = var("")
    chosen_uri: var[str] = var("")
    skipped: var[dict[str, str]] = var(dict)
    """Steps a resumed run did not redo, and why (a new dict on every change, so the watcher fires)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, RowState] = {n: RowState(n) for n in VARIANT_NAMES}

    @on(NewRun)
    def reset(self) -> None:
        self.rows = {n: RowState(n) for n in VARIANT_NAMES}
        for widget in self.query(VariantRow):
            widget.state = self.rows[widget.state.name]  # the row widgets show the new run's rows
        self.phase, self.message, self.hint, self.chosen_uri, self.skipped = "idle", "", "", "", {}
        self.refresh_view()

    def watch_phase(self) -> None:
        self.refresh_view()

    def watch_message(self) -> None:
        self.refresh_view()

    def watch_hint(self) -> None:
        self.refresh_view()

    def watch_chosen_uri(self) -> None:
        self.refresh_view()

    def watch_skipped(self) -> None:
        self.refresh_view()

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="main"):
            yield Static("", id="intro", classes="intro")
            yield Static(
                Text(f"  {'variant':<17}{'top10':>5}  {'max|Δ|':>7}  {'Neo?':<5}  status", style="bold"),
                id="columns",
            )
            for name in VARIANT_NAMES:
                yield VariantRow(self.rows[name])
            yield Static("", id="result", classes="panel")

    def on_mount(self) -> None:
        for name in self.wizard.session.force & set(self.rows):
            self.rows[name].forced = True  # --force on the command line
        self.wizard.engine_signal(VariantEvent).subscribe(self, self._variant_event)
        self.wizard.engine_signal(StepEvent).subscribe(self, self._step_event)
        self.set_interval(0.25, self._tick)
        self.refresh_view()

    def on_screen_resume(self) -> None:
        if self.phase == "idle" and not self.wizard.run_active and self.wizard.start_run("variants", self):
            self.phase = "preparing"
        self.refresh_view()

    def _tick(self) -> None:
        if any(r.status in RUNNING for r in self.rows.values()):
            self.refresh_rows()

    # ------------------------------------------------------------------------------------------ events

    def _variant_event(self, ev: VariantEvent) -> None:
        if ev.name in self.rows:
            self._apply(ev)
            self.refresh_view()

    def _step_event(self, ev: StepEvent) -> None:
        if ev.status == "skipped" and self.wizard.session.resume_store is not None:
            self.skipped = {**self.skipped, ev.name: ev.message}  # news only when continuing an earlier run

    def _apply(self, ev: VariantEvent) -> None:
        row = self.rows[ev.name]
        now = self.wizard.config.clock()
        if ev.fidelity:
            row.fidelity = ev.fidelity
        if ev.preflight:
            row.accepted = bool(ev.preflight.get("accepted"))
            row.preflight_message = str(ev.preflight.get("message") or "")
        if ev.job_name:
            row.job_name = ev.job_name
        if ev.status == "STARTING" and row.started is None:
            row.started = now
        if ev.status in ("COMPLETED", "FAILED", "STOPPED"):
            row.ended = now
            row.compiled = ev.status == "COMPLETED"
        if ev.status == "chosen":
            row.chosen_reason = ev.message
            for other in self.rows.values():
                if other is not row and other.status == "chosen":
                    other.status, other.chosen_reason = "COMPLETED", ""
        if ev.failure_reason:
            row.failure_reason = ev.failure_reason
        if ev.status in ("ready", "rejected", "not-submitted"):
            row.failure_reason = ev.failure_reason or row.preflight_message
        if ev.status in ("ready", "rejected"):
            row.note = ev.message if ev.status == "ready" else ""
        elif ev.status not in ("traced", "measured"):
            row.note = ev.message if ev.status in ("QUEUED", "STARTING", "STOPPING") else ""
        if ev.status == "STOPPING" and row.status in ("COMPLETED", "FAILED", "STOPPED", "chosen"):
            return
        if ev.status not in ("traced", "measured") or row.status == "waiting" or row.status in ("traced", "measured"):
            row.status = ev.status

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        """The run this screen started ended; the rows are filled in first, then the phase says so."""
        self.message, self.hint = message.message, message.hint
        if message.status == "ok":
            if message.until == "variants":
                variants = message.outcome.result("variants") if message.outcome else None
                for c in variants.candidates if variants is not None else []:
                    self._from_candidate(c)
                self.phase = "ready"
            else:
                self._from_state()
                self.phase = "compiled"
        elif message.status == "cancelled":
            self.phase = "cancelled"
        else:
            if message.until == "compile":
                self._from_state()
            self.phase = "failed" if message.until == "compile" or self.phase != "preparing" else "broken"
        self.refresh_view()  # the rows changed even when the phase did not

    def _from_candidate(self, c: Candidate) -> None:
        """A resumed run skips the variants step: fill the rows from the saved candidates."""
        row = self.rows.get(c.name)
        if row is None or row.status not in ("waiting", "traced", "measured"):
            return
        row.fidelity = c.fidelity
        row.accepted = c.accepted
        row.preflight_message = c.preflight_message
        row.status = "ready" if row.accepted else "rejected"
        row.failure_reason = row.preflight_message

    def _from_state(self) -> None:
        """After compile (or a resume that skipped it) the saved job table is the truth."""
        session = self.wizard.session
        for name, job in session.jobs().items():
            row = self.rows.get(name)
            if row is None:
                continue
            row.job_name = job.job_name or row.job_name
            if row.status not in ("chosen",) and job.status:
                row.status = job.status
            row.failure_reason = job.failure_reason or row.failure_reason
            row.compiled = job.status == "COMPLETED"
        compiled = session.result("compile")
        chosen = compiled.chosen if compiled is not None else None
        if chosen in self.rows:
            for r in self.rows.values():
                if r.status == "chosen" and r.name != chosen:
                    r.status = "COMPLETED"
            self.rows[chosen].status = "chosen"
            self.rows[chosen].chosen_reason = compiled.reason or self.rows[chosen].chosen_reason
            self.chosen_uri = compiled.neo_model_s3_uri

    # -------------------------------------------------------------------------------------------- view

    def refresh_rows(self) -> None:
        cfg = self.wizard.config
        now = cfg.clock()
        for row in self.query(VariantRow):
            row.show(now, cfg.animate)

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        self.refresh_rows()
        intro = self.query_one("#intro", Static)
        result = self.query_one("#result", Static)
        intros = {
            "idle": "The variants are traced and measured when you reach this step.",
            "preparing": "Tracing each variant, checking it against Neo's operators and measuring its fidelity…",
            "ready": "enter compiles every variant that passed the preflight. f on a rejected row forces it.",
            "compiling": "Neo is compiling. s stops the focused job, c cancels the run; keys keep working.",
            "compiled": "Done. o on another compiled row chooses it instead; enter continues to the settings.",
            "failed": "The compile did not succeed; the reasons are under the rows. f forces, enter retries.",
            "cancelled": "Cancelled. enter continues the run (jobs already finished are not redone).",
            "broken": "The variants could not be made; see below.",
        }
        intro.update(intros[self.phase])
        text = Text()
        for step, note in self.skipped.items():
            text.append(f"↷ {step}: {note}\n", style="dim")
        if self.chosen_uri:
            text.append("NEO_MODEL_S3_URI ", style="bold")
            text.append(self.chosen_uri)
        if self.message and self.phase != "compiled":
            if text:
                text.append("\n")
            text.append(("✘ " if self.phase in ("failed", "broken") else "") + self.message)
            if self.hint:
                text.append(f"\nhint: {self.hint}")
        result.update(text)
        result.display = bool(text)
        labels = {
            "idle": ("Compile ▸", False),
            "preparing": ("Compile ▸", False),
            "ready": ("Compile ▸", True),
            "compiling": ("Compiling…", False),
            "compiled": ("Continue ▸", True),
            "failed": ("Compile again ▸", True),
            "cancelled": ("Continue run ▸", True),
            "broken": ("Compile ▸", False),
        }
        label, enabled = labels[self.phase]
        self.set_primary(label, enabled=enabled, focus=enabled and not self._row_focused())
        status = {
            "preparing": ("… preparing the variants", "busy"),
            "compiling": ("… compiling with Neo", "busy"),
            "compiled": (f"✔ chosen: {self._chosen() or '-'}", "ok"),
            "failed": ("✘ no variant compiled", "error"),
            "cancelled": ("■ cancelled", "warn"),
            "broken": ("✘ the variants could not be made", "error"),
            "ready": (f"✔ {sum(1 for r in self.rows.values() if r.accepted)} of {len(self.rows)} pass", "ok"),
        }.get(self.phase, ("", ""))
        self.set_status(*status)

    def _chosen(self) -> str:
        return next((r.name for r in self.rows.values() if r.status == "chosen"), "")

    def _row_focused(self) -> bool:
        return isinstance(self.focused, VariantRow)

    def _focused_row(self) -> RowState | None:
        return self.focused.state if isinstance(self.focused, VariantRow) else None

    # ----------------------------------------------------------------------------------------- actions

    def action_focus_row(self, step: int) -> None:
        rows = list(self.query(VariantRow))
        if not rows:
            return
        current = self.focused
        i = rows.index(current) if isinstance(current, VariantRow) else (-1 if step > 0 else len(rows))
        rows[max(0, min(len(rows) - 1, i + step))].focus()

    def primary(self) -> None:
        if self.phase == "compiled":
            super().primary()
        elif self.phase in ("ready", "failed", "cancelled") and self.wizard.start_run("compile", self):
            for row in self.rows.values():
                if row.status in ("FAILED", "not-submitted") and row.forced:
                    row.status = "ready"
            self.message, self.hint = "", ""
            self.phase = "compiling"

    def action_force(self) -> None:
        row = self._focused_row()
        if row is None:
            self.notify("focus a variant row first (up/down)", severity="warning")
            return
        if self.phase in ("compiling", "preparing"):
            self.notify("wait for the current step to end before forcing a variant", severity="warning")
            return
        if row.accepted:
            self.notify(f"{row.name} passed the preflight: it is submitted anyway", severity="information")
            return
        forced = self.wizard.session.force
        if row.name in forced:
            forced.discard(row.name)
            row.forced = False
        else:
            forced.add(row.name)
            row.forced = True
        self.refresh_view()

    def action_stop(self) -> None:
        row = self._focused_row()
        if row is None or row.status not in RUNNING or not row.job_name:
            self.notify("focus a row whose Neo job is running to stop it", severity="warning")
            return
        self.wizard.stop_job(row.name, row.job_name)

    def action_override(self) -> None:
        from ...engine.errors import NcfError

        row = self._focused_row()
        if row is None or self.phase != "compiled":
            self.notify("after the compile, focus a compiled row and press o to choose it", severity="warning")
            return
        try:
            self.chosen_uri = self.wizard.session.override_choice(row.name)
        except NcfError as exc:
            self.notify(exc.message, severity="error")
            return
        for r in self.rows.values():
            if r.status == "chosen":
                r.status, r.chosen_reason = "COMPLETED", ""
        row.status, row.chosen_reason = "chosen", "chosen by you (overriding the ranking)"
        self.refresh_view()

    def action_cancel_run(self) -> None:
        if self.phase not in ("compiling", "preparing") or not self.wizard.run_active:
            self.notify("nothing is running", severity="information")
            return
        self.wizard.cancel_run(stop_jobs=True)
        self.set_status("… cancelling (stopping the running jobs)", "busy")
