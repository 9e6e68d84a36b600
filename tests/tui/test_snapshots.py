"""SVG snapshots of the main screens at 100x30, with a fixed run id, a frozen clock and still spinners.

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at
the report before committing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ncf_tui.tui.config import frozen_clock
from tests.tui.conftest import wait_for

SIZE = (100, 30)
ASSETS = Path(__file__).resolve().parents[2] / "assets"


def still(make_app: Any, **overrides: Any) -> Any:
    return make_app(clock=frozen_clock(), animate=False, start_dir=ASSETS, **overrides)


async def resume_and_compile(pilot: Any, force: tuple[str, ...] = ("original",)) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ResumeModal", 10, "the resume offer")
    await pilot.press("r")
    variants = app.get_screen("variants")
    await wait_for(pilot, lambda: variants.phase == "ready", 30, "the resumed variants")
    for name in force:
        app.screen.query_one(f"#row-{name}").focus()
        await pilot.press("f")
    await pilot.press("enter")
    await wait_for(pilot, lambda: variants.phase == "compiled", 90, "the compile")
    app.screen.query_one("#row-original").focus()
    await pilot.pause()


def test_checkpoint_screen(snap_compare: Any, make_app: Any) -> None:
    async def before(pilot: Any) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.session.connection is not None, 30, "the connection")
        await pilot.press("enter")
        screen = app.get_screen("checkpoint")
        await wait_for(pilot, lambda: screen.summary is not None, 60, "the summary")
        await pilot.pause()

    assert snap_compare(still(make_app), terminal_size=SIZE, run_before=before)


def test_variants_after_compile_with_a_forced_failure(snap_compare: Any, make_app: Any, resumable: Path) -> None:
    assert snap_compare(still(make_app, offer_resume=True), terminal_size=SIZE, run_before=resume_and_compile)


def test_settings_screen(snap_compare: Any, make_app: Any, resumable: Path) -> None:
    async def before(pilot: Any) -> None:
        await resume_and_compile(pilot, force=())
        pilot.app.screen.query_one("#primary").focus()
        await pilot.press("enter")
        await pilot.pause()
        repo = pilot.app.screen.query_one("#in-IMAGE_REPO_NAME")
        repo.value = "NCF_Recommender"  # a refused value, its reason and its one-key fix
        pilot.app.screen.query_one("#primary").focus()
        await pilot.pause()

    assert snap_compare(still(make_app, offer_resume=True), terminal_size=SIZE, run_before=before)


def test_help_over_the_variants_screen(snap_compare: Any, make_app: Any, resumable: Path) -> None:
    async def before(pilot: Any) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ResumeModal", 10, "the resume offer")
        await pilot.press("r")
        variants = app.get_screen("variants")
        await wait_for(pilot, lambda: variants.phase == "ready", 30, "the resumed variants")
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(still(make_app, offer_resume=True), terminal_size=SIZE, run_before=before)


def test_permissions_denied_with_the_proposed_policy(
    snap_compare: Any, make_app: Any, resumable: Path, sandbox: Any
) -> None:
    sandbox.reset("missing-permissions")

    async def before(pilot: Any) -> None:
        app = pilot.app
        await resume_and_compile(pilot, force=())
        app.screen.query_one("#primary").focus()
        await pilot.press("enter")
        settings = app.get_screen("settings")
        await pilot.press("enter")
        await wait_for(pilot, lambda: settings.state == "ok", 60, "the settings check")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmModal", 60, "the attach question")
        await pilot.press("escape")  # refuse: the denies and the proposed policy stay on screen
        permissions = app.get_screen("permissions")
        await wait_for(pilot, lambda: permissions.state not in ("idle", "checking"), 30, "the refusal")
        await pilot.pause()

    assert snap_compare(still(make_app, offer_resume=True), terminal_size=SIZE, run_before=before)
