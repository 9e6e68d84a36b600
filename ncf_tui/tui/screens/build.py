"""Step 6: the CodeBuild phases beside the streaming build log; at the end, the image and how to deploy it.

The log is Textual's ``Log`` (one line list, virtual rendering), so 100k lines stay fast; follow mode and a
search (``/``, then ``n`` for the next match) work on it while the build streams.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import var
from textual.widgets import DataTable, Input, Log, Static

from ...engine.events import BuildEvent, ImageEvent, LogEvent, SmokeEvent
from ...engine.logs import parse_ncf_line
from ..messages import RunFinished
from .base import StepScreen

PHASE_MARK = {
    "SUCCEEDED": ("✔", "$success"),
    "FAILED": ("✘", "$error"),
    "FAULT": ("✘", "$error"),
    "TIMED_OUT": ("✘", "$error"),
    "STOPPED": ("■", "$warning"),
    "IN_PROGRESS": ("…", "$accent"),
}


def builder_text(server: str) -> str:
    """Which docker built the image, from the build log's ``NCF-TUI: docker-server`` line."""
    if not server:
        return "unknown (the build log named no docker server)"
    if server == "ncf-tui-sandbox-builder":
        return "the sandbox's fallback builder (no Docker Engine: RUN steps did not run)"
    return f"Docker Engine {server}"


class BuildScreen(StepScreen):
    STEP = "build"
    HELP_TEXT = (
        "The CodeBuild build: phases on the left, the log on the right as it streams. F toggles follow mode, "
        "/ searches the log (n: next match), y copies the image URI when the build is done."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("F", "toggle_follow", "Follow"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next match", show=False),
        Binding("y", "copy_uri", "Copy URI"),
        Binding("r", "rebuild", "Build again", show=False),
    ]

    state: var[str] = var("idle")
    """idle | building | ok | failed | unavailable"""
    message: var[str] = var("")
    image: var[ImageEvent | None] = var(None)
    smoke: var[SmokeEvent | None] = var(None)
    docker_server: var[str] = var("")
    follow: var[bool] = var(True)

    def __init__(self) -> None:
        super().__init__()
        self.phases: dict[str, BuildEvent] = {}
        self.query_text = ""
        self.match_line = -1
        self.pending: list[str] = []
        self.deploy: list[str] = []

    def body(self) -> ComposeResult:
        with Vertical(classes="main"):
            with Horizontal(classes="split", id="build-split"):
                with Vertical(id="phases-pane", classes="panel") as left:
                    left.border_title = "Phases"
                    table: DataTable[Any] = DataTable(id="phases", cursor_type="none", show_cursor=False)
                    table.add_column("", width=1)
                    table.add_column("phase", width=16)
                    table.add_column("status", width=11)  # IN_PROGRESS, SUCCEEDED: never cut short
                    table.add_column("time", width=5)
                    yield table
                with Vertical(id="log-pane", classes="panel") as right:
                    right.border_title = "Build log"
                    yield Input(placeholder="search the log (enter: find, escape: close)", id="search")
                    yield Log(id="log", highlight=False, max_lines=None, auto_scroll=True)
            with VerticalScroll(id="image-pane", classes="panel result") as pane:
                pane.border_title = "Image"
                yield Static("", id="image")

    def on_mount(self) -> None:
        self.query_one("#search", Input).display = False
        signal = self.wizard.engine_signal
        signal(LogEvent).subscribe(self, self._log_line)
        signal(BuildEvent).subscribe(self, self._phase)
        signal(ImageEvent).subscribe(self, self._image)
        signal(SmokeEvent).subscribe(self, self._smoke)
        self.set_interval(0.05, self._flush)
        self.refresh_view()

    def watch_state(self) -> None:
        self.refresh_view()

    def watch_message(self) -> None:
        self.refresh_view()

    def watch_image(self) -> None:
        self.refresh_view()

    def watch_smoke(self) -> None:
        self.refresh_view()

    def watch_docker_server(self) -> None:
        self.refresh_view()

    def watch_follow(self, follow: bool) -> None:
        if not self.is_mounted:
            return
        log = self.query_one("#log", Log)
        log.auto_scroll = follow
        if follow:
            log.scroll_end(animate=False)
        self.refresh_view()

    def _flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            self.query_one("#log", Log).write_lines(lines)

    def on_screen_resume(self) -> None:
        if self.state == "idle":
            self.action_rebuild()
        self.refresh_view()

    def action_rebuild(self) -> None:
        if self.state in ("building",):
            return
        if self.state == "failed":
            self.wizard.session.forget_from("build")  # a new build, not the failed one again
        if self.wizard.start_run("verify", self):
            self.phases.clear()
            self.image = None
            self.smoke = None
            self.docker_server = ""
            self.state = "building"

    def _log_line(self, ev: LogEvent) -> None:
        self.pending.append(ev.line)  # written in batches by _flush: one refresh per 50 ms, not per line
        parsed = parse_ncf_line(ev.line) if "NCF-TUI: docker-server" in ev.line else None
        if parsed is not None:
            self.docker_server = parsed[1]

    def _phase(self, ev: BuildEvent) -> None:
        self.phases[ev.phase] = ev
        self.refresh_view()

    def _image(self, ev: ImageEvent) -> None:
        self.image = ev

    def _smoke(self, ev: SmokeEvent) -> None:
        self.smoke = ev

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        self._flush()  # every line the build printed is in the log once it says how the build ended
        verified = self.wizard.session.result("verify")
        self.deploy = list(verified.deploy_commands) if verified is not None else []
        self.message = message.message.split("\n", 1)[0] + (f" (hint: {message.hint})" if message.hint else "")
        self.state = {"ok": "ok", "unavailable": "unavailable", "cancelled": "failed"}.get(message.status, "failed")
        self.refresh_view()  # the deploy commands arrive with the end, whatever the state was

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#phases", DataTable)
        table.clear()
        for ev in self.phases.values():
            mark, style = PHASE_MARK.get(ev.status, ("·", "dim"))
            took = f"{ev.duration:.0f}s" if ev.duration is not None else ""
            table.add_row(Content.styled(mark, style), ev.phase, Content.styled(ev.status, style), took)
        out = self.query_one("#image", Static)
        if self.image is not None:
            uri = self.image.uri
            text = Text()
            text.append("Image  ", style="bold")
            text.append(uri + "\n")
            text.append("Digest ", style="bold")
            text.append(self.image.digest + "\n")
            text.append("Built  ", style="bold")
            text.append(builder_text(self.docker_server) + "\n")
            text.append("Smoke  ", style="bold")
            if self.smoke is None:
                text.append("not run (nothing here runs images: no Docker Engine)\n\n", style="dim")
            else:
                mark, style = ("✔ ", "green") if self.smoke.ok else ("✘ ", "red")
                text.append(mark, style=style)
                score = f", score {self.smoke.score:.4f}" if self.smoke.score is not None else ""
                text.append(f"docker run IMAGE serve: {self.smoke.message}{score}\n\n")
            text.append("Deploy to a SageMaker endpoint (y copies the URI)\n", style="bold")
            for command in self.deploy or [f"docker pull {uri}"]:
                text.append(f"  {command}\n")
            out.update(text)
        self.query_one("#image-pane").display = self.image is not None
        if self.follow:
            self.call_after_refresh(self.query_one("#log", Log).scroll_end, animate=False)
        follow = "follow on" if self.follow else "follow off (F)"
        if self.state == "building":
            self.set_status(f"… building · {follow}", "busy")
            self.set_primary("Building…", enabled=False)
        elif self.state == "ok":
            self.set_status("✔ the image is in ECR", "ok")
            self.set_primary("Checklist ▸" if self._last() else "Deploy ▸", enabled=True, focus=True)
        elif self.state == "unavailable":
            self.set_status(Text.assemble(("not available yet: ", "bold"), self.message), "warn")
            self.set_primary("Checklist ▸", enabled=True)
        elif self.state == "failed":
            self.set_status(Text.assemble(("✘ build failed: ", "bold"), self.message, " (r builds again)"), "error")
            self.set_primary("Checklist ▸", enabled=True)
        else:
            self.set_status("")
            self.set_primary(enabled=False)

    def _last(self) -> bool:
        """True when ``--until`` ends the run here: the next step (the Deploy screen) is not offered."""
        return self.wizard.config.last_screen == self.STEP

    def primary(self) -> None:
        if self.state == "ok" and not self._last():
            self.wizard.goto_next(self.STEP)  # the Deploy screen, which asks before it creates anything
        else:
            self.wizard.action_checklist()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        event.stop()
        self.query_text = event.value
        self.match_line = -1
        self.action_next_match()
        self.query_one("#log", Log).focus()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#search", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.display = False
            self.query_one("#log", Log).focus()

    def action_next_match(self) -> None:
        if not self.query_text:
            return
        log = self.query_one("#log", Log)
        needle = self.query_text.lower()
        lines = log.lines
        for offset in range(1, len(lines) + 1):
            i = (self.match_line + offset) % len(lines)
            if needle in lines[i].lower():
                self.match_line = i
                self.follow = False
                log.auto_scroll = False
                log.scroll_to(y=max(0, i - 2), animate=False)
                self.set_status(f"match at line {i + 1}: {lines[i][:80]}", "ok")
                return
        self.set_status(f"no line contains {self.query_text!r}", "warn")

    def action_copy_uri(self) -> None:
        if self.image is None:
            self.notify("no image yet", severity="warning")
            return
        self.app.copy_to_clipboard(self.image.uri)
        self.notify(f"copied {self.image.uri}")
