"""Fixtures for the TUI tests: one app factory, a prepared run (variants made once), and a wait helper."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RUN_ID = "20261130-120000-abcd"
"""Fixed run id: job names, state files and snapshots stay the same from run to run."""


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> None:
    """Let the app run until ``predicate()`` is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


@pytest.fixture(scope="session")
def prepared_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox-mode run state with the checkpoint and variants steps done (tracing takes ~20 s: once)."""
    from ncf_tui.engine.events import discard
    from ncf_tui.engine.pipeline import Pipeline, RunOptions, _sha_or_empty
    from ncf_tui.engine.sample import sample_checkpoint_path
    from ncf_tui.engine.state import RunState, StateStore

    root = tmp_path_factory.mktemp("prepared")
    options = RunOptions(checkpoint=sample_checkpoint_path(), output_dir=root / "out", mode="sandbox")
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this folder's ``async def`` tests with ``asyncio.run`` (no async plugin needed)."""
    import asyncio
    import functools
    import inspect

    for item in items:
        fn = getattr(item, "obj", None)
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(fn):
            continue
        if Path(str(item.fspath)).parent != Path(__file__).parent:
            continue

        def make(f: Any) -> Any:
            @functools.wraps(f)
            def sync(*args: Any, **kwargs: Any) -> Any:
                return asyncio.run(f(*args, **kwargs))

            return sync

        item.obj = make(fn)
