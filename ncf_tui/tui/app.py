"""The wizard's App: screens for each step, thread workers for everything slow, engine events as signals.

Only Textual and the standard library load before the first paint; boto3, torch, moto and the sagemaker SDK
are imported inside the workers that need them (see ``bench/startup``). Workers live on the app, not on
screens, so a compile keeps running (and its screen keeps updating) while the user looks at another step.

How the parts talk, all with Textual's own plumbing:

- a worker's result or exception becomes one message (``messages.py``) in ``on_worker_state_changed``, posted
  to the screen that asked for the work; it bubbles on to the app's ``@on`` handlers;
- every engine event reaches the app as ``EngineEvent`` and is published on the ``Signal`` for its class;
  each screen subscribes to the classes it shows (``engine_signal(VariantEvent).subscribe(...)``);
- each screen's phase is a reactive whose ``watch_`` method redraws it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.message_pump import MessagePump
from textual.reactive import reactive
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from .config import AppConfig
from .messages import (
    ChecklistFinished,
    CheckpointDescribed,
    Connected,
    ConnectFailed,
    EndpointDeleted,
    EngineEvent,
    PolicyProposed,
    PreflightDone,
    RunFinished,
    UserScored,
)
from .session import Connection, Session

if TYPE_CHECKING:
    import argparse

    from ..engine.events import Event
    from ..engine.pipeline import RunOutcome

E = TypeVar("E", bound="Event")

STEP_ORDER: tuple[str, ...] = ("connection", "checkpoint", "variants", "settings", "permissions", "build", "deploy")


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
        self._run_reply_to: MessagePump | None = None
        self._tasks: dict[Worker[Any], Task] = {}
        self._signals: dict[type[Event], Signal[Any]] = {}

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
            "Quit (ctrl+q)",
            "Quit the wizard (asks first while a job runs or the endpoint is InService)",
            self.action_request_quit,
        )

    # ---------------------------------------------------------------------------------------- quitting

    def action_request_quit(self) -> None:
        from .screens.modals import EndpointQuitModal, QuitModal

        if isinstance(self.screen, (QuitModal, EndpointQuitModal)):
            return
        if not self.run_active:
            live = self.session.live_endpoint()
            if live is None:
                self.finish()
                return
            # An endpoint bills by the hour until it is deleted: leaving it is a choice, not an accident.
            region = self.session.target.region if self.session.target is not None else ""
            modal = EndpointQuitModal(live, region=region, sandbox=self.sandbox_mode)
            self.push_screen(modal, lambda leave: self.finish() if leave else None)
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
        """The engine's ``Emit`` callback: called from worker threads (``post_message`` is thread-safe)."""
        self.post_message(EngineEvent(event))

    def engine_signal(self, kind: type[E]) -> Signal[E]:
        """The signal that carries every engine event of exactly this class to the screens subscribed to it."""
        signal = self._signals.get(kind)
        if signal is None:
            signal = self._signals[kind] = Signal(self, kind.__name__)
        return cast("Signal[E]", signal)

    @on(EngineEvent)
    def _publish(self, message: EngineEvent) -> None:
        self.engine_signal(type(message.event)).publish(message.event)

    def ask_user(self, topic: str, detail: Any) -> bool:
        """The engine's confirmation, asked in a dialog; called from a worker thread, which waits."""
        from .screens.modals import ConfirmModal

        answer: dict[str, bool] = {}
        done = threading.Event()

        def decided(ok: bool | None) -> None:
            answer["ok"] = bool(ok)
            done.set()

        if topic == "attach-policy" and self._run_reply_to is not None:
            self._run_reply_to.post_message(PolicyProposed(detail))
        step = getattr(self._run_reply_to, "STEP", "")
        self.call_from_thread(self.push_screen, ConfirmModal.for_topic(topic, detail, step), decided)
        while not done.wait(0.2):
            if self.session.cancel.is_set() or not self.is_running:
                return False
        return answer["ok"]

    def _start(
        self,
        work: Callable[[], object],
        group: str,
        reply_to: MessagePump | None = None,
        done: Callable[[Any], Message | None] = lambda _result: None,
        failed: Callable[[BaseException], Message | None] = lambda _error: None,
        *,
        exclusive: bool = True,
    ) -> Worker[object]:
        """Run ``work`` in a thread; how it ends reaches ``reply_to`` as ``done(result)`` or ``failed(error)``.

        Workers never take the app down with them (``exit_on_error=False``): ``on_worker_state_changed``
        turns the result or the exception into the message the screen shows, in one place.
        """
        worker = self.run_worker(work, thread=True, group=group, exclusive=exclusive, exit_on_error=False)
        self._tasks[worker] = Task(reply_to or self, done, failed)
        return worker

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        task = self._tasks.get(event.worker)
        if task is None or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        del self._tasks[event.worker]
        if event.state == WorkerState.SUCCESS:
            message = task.done(event.worker.result)
        elif event.state == WorkerState.ERROR and event.worker.error is not None:
            message = task.failed(event.worker.error)
        else:
            return  # cancelled: superseded by a newer request of the same kind, or the app is closing
        if message is not None:
            task.reply_to.post_message(message)

    def connect(self, reply_to: MessagePump | None = None) -> None:
        def failed(exc: BaseException) -> Message:
            return ConnectFailed(*explain(exc))

        self._start(self._connect, "connect", reply_to or self.get_screen("connection"), Connected, failed)

    def _connect(self) -> Connection:
        connection = self.session.connect()
        self.connected.set()
        return connection

    def preflight(self, reply_to: MessagePump) -> None:
        """Every input the chosen steps need, present or to be created (``PreflightDone`` to ``reply_to``)."""

        def failed(exc: BaseException) -> Message:
            return PreflightDone(None, *explain(exc))

        self._start(self.session.preflight, "preflight", reply_to, PreflightDone, failed)

    def describe_checkpoint(self, path: Path, reply_to: MessagePump) -> None:
        def done(summary: dict[str, Any]) -> Message:
            return CheckpointDescribed(str(path), summary)

        def failed(exc: BaseException) -> Message:
            return CheckpointDescribed(str(path), None, *explain(exc))

        self._start(partial(self.session.describe_checkpoint, path), "checkpoint", reply_to, done, failed)

    def run_checklist(self, reply_to: MessagePump, fix: str | None = None) -> None:
        """Run every check, or apply one check's safe fix (after a yes) and re-run what it affects."""

        def failed(exc: BaseException) -> Message:
            return ChecklistFinished("", *explain(exc))

        self._start(partial(self._checklist, fix), "checklist", reply_to, ChecklistFinished, failed)

    def _checklist(self, fix: str | None) -> str:
        from ..engine.errors import NcfError

        if not self.connected.wait(120):
            raise NcfError("not connected to AWS yet (see the connection step)")
        checklist = self.session.checklist()
        if fix is None:
            self.session.forget_checklist()
            report = self.session.checklist().run(self.emit)
            counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
            return f"{len(report.results)} checks: {counts}"
        result = checklist.result(fix)
        if result is None or not result.fixable:
            return f"{fix}: no safe fix to apply"
        if not self.ask_user("checklist-fix", result):
            return f"{fix}: fix not applied"
        applied = checklist.fix(fix, self.emit)
        return f"{fix}: {getattr(applied, 'message', 'fix applied')}"

    def start_run(self, until: str, reply_to: MessagePump) -> bool:
        """Run the pipeline through ``until`` in a worker; False when a run is already going.

        ``reply_to`` (the screen that asked) gets the ``RunFinished``; it bubbles on to the app.
        """
        if self.run_active:
            self.notify("a step is still running: wait for it, or cancel it first", severity="warning")
            return False
        if self.config.clamp(until) != until:
            self.notify(f"--until {self.config.until}: this run stops there", severity="warning")
            return False
        self.run_active = True
        self._run_reply_to = reply_to

        def done(outcome: RunOutcome) -> Message:
            return RunFinished(until, "ok", outcome=outcome)

        def failed(exc: BaseException) -> Message:
            from ..engine.errors import Cancelled

            message, hint = explain(exc)
            if isinstance(exc, Cancelled):
                return RunFinished(until, "cancelled", message)
            return RunFinished(until, "unavailable" if "not built yet" in message else "failed", message, hint)

        self._start(partial(self._run, until), "pipeline", reply_to, done, failed)
        return True

    def _run(self, until: str) -> RunOutcome:
        from ..engine.errors import NcfError

        if self.session.pipeline is None:
            self.session.start_pipeline(self.emit, self.session.resume_store)
        if self.session.needs_aws(until) and not self.connected.wait(120):
            raise NcfError("not connected to AWS yet (see the connection step)")
        return self.session.run(until)

    def cancel_run(self, stop_jobs: bool = True) -> None:
        """Cancel the running step; with ``stop_jobs`` also stop this run's Neo jobs that have not ended."""
        self._start(partial(self._cancel_run, stop_jobs), "jobs", exclusive=False)

    def _cancel_run(self, stop_jobs: bool) -> None:
        from ..engine.events import VariantEvent

        jobs = self.session.running_jobs()
        self.session.cancel.set()
        if not stop_jobs:
            return
        for variant, name in sorted(jobs.items()):
            try:  # one job that will not stop must not keep the others running
                self.session.stop_job(name)
            except Exception as exc:
                self.emit(VariantEvent(name=variant, status="INPROGRESS", job_name=name, message=f"stop failed: {exc}"))
                continue
            self.emit(VariantEvent(name=variant, status="STOPPING", job_name=name, message="stop requested"))

    def score_user(self, endpoint: str, user: int, reply_to: MessagePump) -> None:
        """One user's top-10 from the endpoint, in a worker; a newer request supersedes an older one."""

        def done(answer: tuple[list[dict[str, Any]], float]) -> Message:
            return UserScored(user, answer[0], answer[1])

        def failed(exc: BaseException) -> Message:
            return UserScored(user, [], None, explain(exc)[0])

        self._start(partial(self.session.score_user, endpoint, user), "score", reply_to, done, failed)

    def delete_deployment(self, reply_to: MessagePump) -> None:
        """Delete the run's endpoint, its config and its model, in a worker (the screen asked first)."""

        def failed(exc: BaseException) -> Message:
            return EndpointDeleted([], explain(exc)[0])

        self._start(partial(self.session.delete_deployment, self.emit), "deploy", reply_to, EndpointDeleted, failed)

    def stop_job(self, variant: str, job_name: str) -> None:
        from ..engine.events import VariantEvent

        def stop() -> None:
            self.session.stop_job(job_name)
            self.emit(VariantEvent(name=variant, status="STOPPING", job_name=job_name, message="stop requested by you"))

        def failed(exc: BaseException) -> Message | None:
            self.notify(f"stopping {job_name} failed: {explain(exc)[0]}", severity="error")
            return None

        self._start(stop, "jobs", failed=failed, exclusive=False)

    # ------------------------------------------------------------------------- what the app itself keeps

    @on(Connected)
    def _connected(self, message: Connected) -> None:
        c = message.connection
        if not self.sandbox_mode:
            self.badge = f"account {c.account} · {c.region}"

    @on(ConnectFailed)
    def _connect_failed(self, _message: ConnectFailed) -> None:
        if not self.sandbox_mode:
            self.badge = "AWS · not connected"

    @on(RunFinished)
    def _run_finished(self, message: RunFinished) -> None:
        """After the screen that asked for the run has shown it (the message bubbles up from there)."""
        self.run_active = False
        self._run_reply_to = None
        if message.status == "cancelled":
            self._interrupted = True
        if self._quit_after_run:
            self.finish()

    def on_unmount(self) -> None:
        self.session.cancel.set()
        self.session.close()


@dataclass(frozen=True)
class Task:
    """What a worker was started for: who hears how it ended, and the message that says so."""

    reply_to: MessagePump
    done: Callable[[Any], Message | None]
    failed: Callable[[BaseException], Message | None]


def explain(exc: BaseException) -> tuple[str, str]:
    """(message, hint) for the screen: the engine's own words, or the exception's type and text, never a traceback."""
    from ..engine.errors import NcfError

    if isinstance(exc, NcfError):
        return exc.message, exc.hint or ""
    return f"{type(exc).__name__}: {exc}", ""


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
