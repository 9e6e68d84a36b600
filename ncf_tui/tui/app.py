"""The wizard's App: screens for each step, thread workers for everything slow, engine events as messages.

Only Textual and the standard library load before the first paint; boto3, torch, moto and the sagemaker SDK
are imported inside the workers that need them (see ``bench/startup``). Workers live on the app, not on
screens, so a compile keeps running (and its screen keeps updating) while the user looks at another step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen

from .config import AppConfig
from .messages import (
    ChecklistFinished,
    CheckpointDescribed,
    Connected,
    ConnectFailed,
    EngineEvent,
    PolicyProposed,
    RunFinished,
)
from .session import Session

if TYPE_CHECKING:
    import argparse

    from ..engine.events import Event

STEP_ORDER: tuple[str, ...] = ("connection", "checkpoint", "variants", "settings", "permissions", "build")


class NcfApp(App[int]):
    """``ncf-tui``: take a pruned NCF checkpoint through Neo and CodeBuild to an image in ECR."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute, so subclasses elsewhere find it too
    TITLE = "ncf-tui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "request_quit", "Quit", priority=True),
        Binding("question_mark", "help", "Keys"),
        Binding("f1", "help", "Keys", show=False),
        Binding("f3", "checklist", "Checklist"),
    ]

    badge: reactive[str] = reactive("")

    def __init__(self, config: AppConfig | None = None) -> None:
        super().__init__()
        self.config = config or AppConfig()
        self.session = Session(self.config)
        self.session.ask = self.ask_user
        self.sandbox_mode = self.config.sandbox
        self.set_reactive(NcfApp.badge, "SANDBOX" if self.config.sandbox else "AWS · connecting")
        self._quit_after_run = False
        self._interrupted = False
        self.connected = threading.Event()
        self.run_active = False

    # ----------------------------------------------------------------------------------------- start

    def on_mount(self) -> None:
        from .screens import make_step_screens
        from .screens.checklist import ChecklistScreen

        for name, screen in make_step_screens().items():
            self.install_screen(screen, name)
        self.install_screen(ChecklistScreen(), "checklist")
        self.push_screen("connection")
        if self.config.checklist:
            self.push_screen("checklist")
        if (self.config.offer_resume or self.config.resume) and not self.config.checklist:
            self.offer_resume()

    def on_ready(self) -> None:
        """After the first paint: the connection worker imports boto3 (and moto), which would delay it."""
        self.connect()

    def offer_resume(self) -> None:
        from .screens.modals import ResumeModal

        store = self.session.find_resumable()
        if store is None:
            return
        try:
            state = store.load()
        except Exception as exc:  # a corrupt state file is set aside by the engine; say so
            self.notify(str(getattr(exc, "message", exc)), severity="warning", timeout=8)
            return
        if state is None:
            return

        def chosen(resume: bool | None) -> None:
            if resume:
                self.session.resume_store = store
                self.session.checkpoint = Path(state.checkpoint)
                self.push_screen("checkpoint")
                self.push_screen("variants")

        if self.config.resume:  # --resume: no question to ask
            chosen(True)
            return
        self.push_screen(ResumeModal(store.path, state), chosen)

    # ------------------------------------------------------------------------------------ navigation

    def step_screen(self, name: str) -> Any:
        return self.get_screen(name)

    def goto_next(self, current: str) -> None:
        i = STEP_ORDER.index(current)
        if current == self.config.last_screen:
            self.notify(f"--until {self.config.until}: this is the last step of this run", timeout=6)
            return
        if i + 1 < len(STEP_ORDER):
            self.push_screen(STEP_ORDER[i + 1])

    def step_back(self) -> None:
        if len(self.screen_stack) > 2:
            self.pop_screen()

    def action_checklist(self) -> None:
        if self.screen is not self.get_screen("checklist"):
            self.push_screen("checklist")

    def action_help(self) -> None:
        from .screens.modals import HelpModal

        if isinstance(self.screen, HelpModal):
            return
        bindings = [
            (b.binding.key_display or self.get_key_display(b.binding), b.binding.description)
            for b in self.screen.active_bindings.values()
            if b.binding.description
        ]
        self.push_screen(HelpModal(getattr(self.screen, "HELP_TEXT", ""), bindings))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every key the screen offers is also a command-palette entry."""
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            b = active.binding
            if not b.description or b.action in seen or b.action in ("command_palette", "request_quit"):
                continue
            seen.add(b.action)
            node = active.node
            yield SystemCommand(
                f"{b.description} ({self.get_key_display(b)})",
                b.tooltip or b.description,
                lambda n=node, a=b.action: self.run_action(a, n),
            )
        yield SystemCommand(
            "Quit (ctrl+q)", "Quit the wizard (asks first when a job is running)", self.action_request_quit
        )

    # ---------------------------------------------------------------------------------------- quitting

    def action_request_quit(self) -> None:
        from .screens.modals import QuitModal

        if isinstance(self.screen, QuitModal):
            return
        if not self.run_active:
            self.finish()
            return

        def decided(choice: str | None) -> None:
            if choice is None:
                return
            self._quit_after_run = True
            self.cancel_run(stop_jobs=choice == "stop")
            self.set_timer(20, self.finish)  # never hang on a slow stop

        self.push_screen(QuitModal(jobs=sorted(self.session.running_jobs())), decided)

    def finish(self) -> None:
        code = 130 if self._interrupted else 0
        self.exit(code, return_code=code)

    async def action_quit(self) -> None:
        self.action_request_quit()

    # ------------------------------------------------------------------------------------------ workers

    def emit(self, event: Event) -> None:
        """The engine's ``Emit`` callback: called from worker threads."""
        self.post_message(EngineEvent(event))

    def ask_user(self, topic: str, detail: Any) -> bool:
        """The engine's confirmation, asked in a dialog; called from a worker thread, which waits."""
        from .screens.modals import ConfirmModal

        answer: dict[str, bool] = {}
        done = threading.Event()

        def decided(ok: bool | None) -> None:
            answer["ok"] = bool(ok)
            done.set()

        if topic == "attach-policy":
            self.call_from_thread(self._route, PolicyProposed(detail))
        self.call_from_thread(self.push_screen, ConfirmModal.for_topic(topic, detail), decided)
        while not done.wait(0.2):
            if self.session.cancel.is_set() or not self.is_running:
                return False
        return answer["ok"]

    @work(thread=True, exclusive=True, group="connect")
    def connect(self) -> None:
        from ..engine.errors import NcfError

        try:
            connection = self.session.connect()
        except NcfError as exc:
            self.post_message(ConnectFailed(exc.message, exc.hint or ""))
            return
        except Exception as exc:  # an unexpected failure is shown, never a traceback
            self.post_message(ConnectFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.connected.set()
        self.post_message(Connected(connection))

    @work(thread=True, exclusive=True, group="checkpoint")
    def describe_checkpoint(self, path: Path) -> None:
        from ..engine.errors import NcfError

        try:
            summary = self.session.describe_checkpoint(path)
        except NcfError as exc:
            self.post_message(CheckpointDescribed(str(path), None, exc.message, exc.hint or ""))
            return
        except Exception as exc:
            self.post_message(CheckpointDescribed(str(path), None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(CheckpointDescribed(str(path), summary))

    @work(thread=True, exclusive=True, group="checklist")
    def run_checklist(self, fix: str | None = None) -> None:
        """Run every check, or apply one check's safe fix (after a yes) and re-run what it affects."""
        from ..engine.errors import NcfError

        try:
            if not self.connected.wait(120):
                raise NcfError("not connected to AWS yet (see the connection step)")
            checklist = self.session.checklist()
            if fix is None:
                self.session.forget_checklist()
                report = self.session.checklist().run(self.emit)
                counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
                self.post_message(ChecklistFinished(f"{len(report.results)} checks: {counts}"))
                return
            result = checklist.result(fix)
            if result is None or not result.fixable:
                self.post_message(ChecklistFinished(f"{fix}: no safe fix to apply"))
                return
            if not self.ask_user("checklist-fix", result):
                self.post_message(ChecklistFinished(f"{fix}: fix not applied"))
                return
            applied = checklist.fix(fix, self.emit)
            self.post_message(ChecklistFinished(f"{fix}: {getattr(applied, 'message', 'fix applied')}"))
        except NcfError as exc:
            self.post_message(ChecklistFinished("", exc.message, exc.hint or ""))
        except Exception as exc:  # shown on the screen, never a traceback
            self.post_message(ChecklistFinished("", f"{type(exc).__name__}: {exc}"))

    def start_run(self, until: str) -> bool:
        """Run the pipeline through ``until`` in a worker; False when a run is already going."""
        if self.run_active:
            self.notify("a step is still running: wait for it, or cancel it first", severity="warning")
            return False
        if self.config.clamp(until) != until:
            self.notify(f"--until {self.config.until}: this run stops there", severity="warning")
            return False
        self.run_active = True
        self._run(until)
        return True

    @work(thread=True, exclusive=True, group="pipeline")
    def _run(self, until: str) -> None:
        from ..engine.errors import Cancelled, NcfError

        try:
            if self.session.pipeline is None:
                self.session.start_pipeline(self.emit, self.session.resume_store)
            if until not in ("checkpoint", "variants") and not self.connected.wait(120):
                raise NcfError("not connected to AWS yet (see the connection step)")
            outcome = self.session.run(until)
        except Cancelled as exc:
            self.post_message(RunFinished(until, "cancelled", exc.message))
            return
        except NcfError as exc:
            status = "unavailable" if "not built yet" in exc.message else "failed"
            self.post_message(RunFinished(until, status, exc.message, exc.hint or ""))
            return
        except Exception as exc:
            self.post_message(RunFinished(until, "failed", f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(RunFinished(until, "ok", outcome=outcome))

    @work(thread=True, group="jobs")
    def cancel_run(self, stop_jobs: bool = True) -> None:
        """Cancel the running step; with ``stop_jobs`` also stop this run's Neo jobs that have not ended."""
        from ..engine.events import VariantEvent

        jobs = self.session.running_jobs()
        self.session.cancel.set()
        if not stop_jobs:
            return
        for variant, name in sorted(jobs.items()):
            try:
                self.session.stop_job(name)
            except Exception as exc:
                self.emit(VariantEvent(name=variant, status="INPROGRESS", job_name=name, message=f"stop failed: {exc}"))
                continue
            self.emit(VariantEvent(name=variant, status="STOPPING", job_name=name, message="stop requested"))

    @work(thread=True, group="jobs")
    def stop_job(self, variant: str, job_name: str) -> None:
        from ..engine.errors import NcfError
        from ..engine.events import VariantEvent

        try:
            self.session.stop_job(job_name)
        except NcfError as exc:
            self.call_from_thread(self.notify, f"stopping {job_name} failed: {exc.message}", severity="error")
            return
        self.emit(VariantEvent(name=variant, status="STOPPING", job_name=job_name, message="stop requested by you"))

    # ---------------------------------------------------------------------------------- message routing

    def _route(self, message: Message) -> None:
        for name in (*STEP_ORDER, "checklist"):
            screen = self.get_screen(name)
            handler = getattr(screen, "wizard_message", None)
            if handler is not None:
                handler(message)

    def on_engine_event(self, message: EngineEvent) -> None:
        self._route(message)

    def on_connected(self, message: Connected) -> None:
        c = message.connection
        if not self.sandbox_mode:
            self.badge = f"account {c.account} · {c.region}"
        self._route(message)

    def on_connect_failed(self, message: ConnectFailed) -> None:
        if not self.sandbox_mode:
            self.badge = "AWS · not connected"
        self._route(message)

    def on_checkpoint_described(self, message: CheckpointDescribed) -> None:
        self._route(message)

    def on_checklist_finished(self, message: ChecklistFinished) -> None:
        self._route(message)

    def on_run_finished(self, message: RunFinished) -> None:
        self.run_active = False
        if message.status == "cancelled":
            self._interrupted = True
        self._route(message)
        if self._quit_after_run:
            self.finish()

    def on_unmount(self) -> None:
        self.session.cancel.set()
        self.session.close()


def create_app(config: AppConfig | None = None, **overrides: Any) -> NcfApp:
    """The one app factory (CLI, tests, snapshots): ``create_app(sandbox=True, run_id="...")``."""
    if config is None:
        config = AppConfig(**overrides)
    else:
        for key, value in overrides.items():
            setattr(config, key, value)
    return NcfApp(config)


def run_tui(args: argparse.Namespace) -> int:
    """Run the wizard from parsed CLI flags; returns the exit code."""
    app = create_app(AppConfig.from_args(args))
    result = app.run()
    return int(app.return_code if app.return_code is not None else (result or 0))
