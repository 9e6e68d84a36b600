"""Fixtures for the TUI tests: one app factory, a prepared run (variants made once), and waits on messages."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.worker import WorkerFailed

from ncf_tui.engine.events import VariantEvent
from ncf_tui.tui.messages import EngineEvent, RunFinished

M = TypeVar("M", bound=Message)

RUN_ID = "20261130-120000-abcd"
"""Fixed run id: job names, state files and snapshots stay the same from run to run."""


class Seen:
    """Every message the app dispatches (``run_test(message_hook=seen)``), for tests to wait on events.

    ``message`` waits for the next message of a kind (each one is taken once, in order). A timeout is only a
    safety net that names what never came; nothing here sleeps and then looks.
    """

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._cursor = 0
        self._taken: set[int] = set()
        """Messages already returned: a message that bubbles is dispatched twice (the screen, then the app)."""
        self._arrived = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def _next_arrival(self, timeout: float, what: str) -> None:
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def message(
        self, pilot: Pilot[Any], kind: type[M], where: Callable[[M], bool] = lambda _m: True, timeout: float = 300
    ) -> M:
        """The next ``kind`` message that satisfies ``where``, once its handlers have run."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            while self._cursor < len(self.messages):
                message = self.messages[self._cursor]
                self._cursor += 1
                if isinstance(message, kind) and id(message) not in self._taken and where(message):
                    self._taken.add(id(message))
                    await pilot.pause()  # the hook runs before the handlers: let them (and any bubbling) run
                    return message
            await self._next_arrival(deadline - asyncio.get_running_loop().time(), kind.__name__)

    async def variant(self, pilot: Pilot[Any], name: str, *statuses: str, timeout: float = 120) -> VariantEvent:
        """The next engine event that puts variant ``name`` in one of ``statuses``."""

        def matches(m: EngineEvent) -> bool:
            return isinstance(m.event, VariantEvent) and m.event.name == name and m.event.status in statuses

        return cast(VariantEvent, (await self.message(pilot, EngineEvent, matches, timeout)).event)

    async def run(self, pilot: Pilot[Any], until: str, timeout: float = 300) -> RunFinished:
        """The end of the next pipeline run through ``until``."""
        return await self.message(pilot, RunFinished, lambda m: m.until == until, timeout)


async def settle(pilot: Pilot[Any]) -> None:
    """Until every worker the app started has ended and the app has handled how (a failed step is an end too).

    Only the app's own workers: widgets keep some of their own running for good (``DirectoryTree``'s loader).
    """
    app = pilot.app
    while running := [w for w in app.workers if w.node is app and not w.is_finished]:
        try:
            await app.workers.wait_for_complete(running)
        except WorkerFailed:
            continue  # one failed; wait for the others
    await pilot.pause()


async def until_screen(pilot: Pilot[Any], name: str, timeout: float = 60) -> None:
    """Until the current screen is of the class ``name`` (woken by the app's ``screen_change_signal``)."""
    app = pilot.app
    changed = asyncio.Event()
    watcher = app.screen  # any running node can subscribe; the current screen stays mounted
    app.screen_change_signal.subscribe(watcher, lambda _screen: changed.set(), immediate=True)
    try:
        while type(app.screen).__name__ != name:
            try:
                await asyncio.wait_for(changed.wait(), timeout)
            except TimeoutError:
                raise AssertionError(f"the {name} screen never came; the screen is {app.screen!r}") from None
            changed.clear()
    finally:
        app.screen_change_signal.unsubscribe(watcher)
    await pilot.pause()


async def until_set(pilot: Pilot[Any], node: Any, attribute: str, timeout: float = 120) -> Any:
    """Until the reactive ``attribute`` of ``node`` (a screen) is not None: woken by its own watcher."""
    filled = asyncio.Event()
    node.watch(node, attribute, lambda value: filled.set() if value is not None else None)  # init: now too
    try:
        await asyncio.wait_for(filled.wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"{type(node).__name__}.{attribute} was never set") from None
    await pilot.pause()
    return getattr(node, attribute)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture(scope="session")
def prepared_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox-mode run state with the checkpoint and variants steps done (tracing takes ~20 s: once)."""
    from ncf_tui.engine.events import discard
    from ncf_tui.engine.pipeline import Pipeline, RunOptions, _sha_or_empty
    from ncf_tui.engine.sample import sample_checkpoint_path
    from ncf_tui.engine.state import RunState, StateStore

    root = tmp_path_factory.mktemp("prepared")
    # until="variants": a model-only run, so the account step needs no AWS (the wizard connects later)
    options = RunOptions(checkpoint=sample_checkpoint_path(), output_dir=root / "out", mode="sandbox", until="variants")
    store = StateStore.for_run(RUN_ID, root / "state")
    state = RunState(
        run_id=RUN_ID,
        mode="sandbox",
        checkpoint=str(options.checkpoint),
        checkpoint_sha256=_sha_or_empty(options.checkpoint),
        output_dir=str(options.output_dir),
    )
    Pipeline(options, discard, store, state).run("variants")
    return store.path


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def resumable(prepared_run: Path, state_dir: Path) -> Path:
    """A copy of the prepared run in this test's state folder, so the app offers to resume it."""
    target = state_dir / prepared_run.name
    shutil.copy(prepared_run, target)
    return target


@pytest.fixture
def make_app(sandbox: Any, state_dir: Path, tmp_path: Path) -> Callable[..., Any]:
    """``make_app(**config)``: the wizard on the shared sandbox, with this test's folders and a fixed run id."""
    from ncf_tui.tui.app import create_app

    def factory(**overrides: Any) -> Any:
        config: dict[str, Any] = {
            "sandbox": True,
            "sandbox_instance": sandbox,
            "state_dir": state_dir,
            "output_dir": tmp_path / "out",
            "run_id": RUN_ID,
            "offer_resume": False,
            "saved_dir": tmp_path / "config",  # never the user's own saved answers
            "env": {},
        }
        config.update(overrides)
        return create_app(**config)

    return factory
