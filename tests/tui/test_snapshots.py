"""SVG snapshots of the main screens at 100x30, with a fixed run id, a frozen clock and still spinners.

Every frame is taken once what it shows has happened: the workers that produce it have ended and the app has
handled how (``settle``), never after a while. Update after an intended change with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the report before committing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ncf_tui.tui.config import frozen_clock
from tests.tui.conftest import settle, until_screen, until_set

SIZE = (100, 30)
ASSETS = Path(__file__).resolve().parents[2] / "assets"


def still(make_app: Any, **overrides: Any) -> Any:
    return make_app(clock=frozen_clock(), animate=False, start_dir=ASSETS, **overrides)


async def resume(pilot: Any) -> None:
    """Take the offer to resume the prepared run; its variants are filled in from the saved run."""
    await until_screen(pilot, "ResumeModal")
    await pilot.press("r")
    await settle(pilot)
    assert pilot.app.get_screen("variants").phase == "ready"


async def resume_and_compile(pilot: Any, force: tuple[str, ...] = ("original",)) -> None:
    app = pilot.app
    await resume(pilot)
    for name in force:
        app.screen.query_one(f"#row-{name}").focus()
        await pilot.press("f")
    await pilot.press("enter")
    await settle(pilot)
    assert app.get_screen("variants").phase == "compiled"
    app.screen.query_one("#row-original").focus()
    await pilot.pause()


def test_checkpoint_screen(snap_compare: Any, make_app: Any) -> None:
    async def before(pilot: Any) -> None:
        app = pilot.app
        await until_set(pilot, app.get_screen("connection"), "preflight")  # connected, the account checked
        await pilot.press("enter")
        await until_set(pilot, app.get_screen("checkpoint"), "summary")  # the checkpoint read
        await settle(pilot)  # and the file tree listed

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
        await resume(pilot)
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
        await settle(pilot)
        assert settings.state == "ok"
        await pilot.press("enter")
        permissions = app.get_screen("permissions")
        # the check's worker waits on the attach question: refuse it, then the frame once the run has ended
        await until_screen(pilot, "ConfirmModal")
        await pilot.press("escape")  # refuse: the denies and the proposed policy stay on screen
        await settle(pilot)
        assert permissions.state not in ("idle", "checking")

    assert snap_compare(still(make_app, offer_resume=True), terminal_size=SIZE, run_before=before)


def test_connection_preflight_on_an_empty_account(snap_compare: Any, make_app: Any, sandbox: Any) -> None:
    """The list of what the run needs, every input "will be created" on a newcomer's account."""
    sandbox.reset("empty-account")

    async def before(pilot: Any) -> None:
        screen = pilot.app.get_screen("connection")
        await until_set(pilot, screen, "preflight")  # the PreflightDone handler fills it
        await settle(pilot)
        # the shared sandbox's port and this test's folder differ per run: fixed, as the clock is
        screen.connection = replace(
            screen.connection, endpoint_url="http://127.0.0.1:PORT", saved_answers="none yet (TMP/config.toml)"
        )
        await pilot.pause()

    assert snap_compare(still(make_app), terminal_size=SIZE, run_before=before)


def test_deploy_screen_in_service_with_a_scored_user(snap_compare: Any, make_app: Any, resumable: Path) -> None:
    """``--deploy`` (no question), the endpoint InService, user 17 scored. Measured milliseconds are shown as
    ``--`` (``timings=False``): they differ on every run; everything else on the screen is the run's own."""

    async def before(pilot: Any) -> None:
        app = pilot.app
        await resume_and_compile(pilot, force=())
        app.screen.query_one("#primary").focus()
        await pilot.press("enter")  # the settings
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")  # the permissions
        await settle(pilot)
        assert app.get_screen("permissions").state == "ok"
        await pilot.press("enter")  # the build
        await settle(pilot)
        assert app.get_screen("build").state == "ok"
        await pilot.press("enter")  # the Deploy screen: --deploy has said yes
        await settle(pilot)
        deploy = app.get_screen("deploy")
        assert app.screen is deploy and deploy.state == "ok", deploy.message
        box = deploy.query_one("#user")
        box.focus()
        box.value = ""
        await pilot.press(*"17", "enter")
        await settle(pilot)
        assert deploy.scored is not None and len(deploy.scored.items) == 10, deploy.scored

    app = still(make_app, offer_resume=True, deploy=True, timings=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=before)
