"""The AWS half of the wizard on the sandbox: settings, permissions (a deny fixed in the UI), the build, the image."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.tui.messages import ChecklistFinished
from tests.tui.conftest import Seen, until_screen

pytestmark = pytest.mark.asyncio
REPO_ROOT = Path(__file__).resolve().parents[2]

SIZE = (100, 30)


def modal_name(app: Any) -> str:
    return str(type(app.screen).__name__)


async def resumed_to_settings(pilot: Any, seen: Seen) -> Any:
    """Resume the prepared run, compile, continue to the settings and check them."""
    app = pilot.app
    await until_screen(pilot, "ResumeModal")
    await pilot.press("r")
    variants = app.get_screen("variants")
    await seen.run(pilot, "variants")
    await pilot.press("enter")
    await seen.run(pilot, "compile")
    assert variants.phase == "compiled", variants.message
    await pilot.press("enter")
    settings = app.get_screen("settings")
    assert app.screen is settings
    await pilot.press("enter")
    await seen.run(pilot, "settings")
    assert settings.state == "ok", settings.message
    await pilot.press("enter")
    return app.get_screen("permissions")


async def test_healthy_account_builds_the_image(make_app: Any, resumable: Any, sandbox: Any, seen: Seen) -> None:
    app = make_app(offer_resume=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        permissions = await resumed_to_settings(pilot, seen)
        await seen.run(pilot, "permissions")
        assert permissions.state == "ok", permissions.message
        assert all(p.decision == "allowed" for p in permissions.perms.values())
        assert ("ecr:PutImage", f"arn:aws:ecr:us-east-1:{sandbox.names.account_id}:repository/ncf-recommender") in (
            permissions.perms
        )
        await pilot.press("enter")
        build = app.get_screen("build")
        assert app.screen is build
        await seen.run(pilot, "verify")
        assert build.state == "ok", build.message
        assert build.phases["BUILD"].status == "SUCCEEDED"
        assert build.image is not None and build.image.uri.endswith("/ncf-recommender:latest")
        assert build.image.digest.startswith("sha256:")
        tags = sandbox.client("ecr").describe_images(repositoryName="ncf-recommender")["imageDetails"]
        assert any(build.image.digest == t["imageDigest"] for t in tags)
        assert any("create-endpoint" in c for c in build.deploy)
        shown = str(build.query_one("#image").render())
        assert build.image.uri in shown and "create-model" in shown
        # which docker built it, and the smoke run (the tests' sandbox uses the fallback: nothing runs images)
        assert build.docker_server == "ncf-tui-sandbox-builder"
        assert "Built  the sandbox's fallback builder (no Docker Engine" in shown
        assert "Smoke  not run" in shown
        # what a real engine's build reports (the events a sandbox with Docker sends), as the screen shows it
        from ncf_tui.engine.events import LogEvent, SmokeEvent
        from ncf_tui.tui.messages import EngineEvent

        app.post_message(EngineEvent(LogEvent(line="NCF-TUI: docker-server 20.10.24+dfsg1", timestamp=0)))
        smoke = SmokeEvent(image=build.image.uri, ok=True, ping_seconds=2.5, pair=[471, 840], score=0.25,
                           message="/ping 200 after 2.5 s; /invocations (471, 840) -> 200")  # fmt: skip
        app.post_message(EngineEvent(smoke))
        await seen.message(pilot, EngineEvent, lambda m: m.event is smoke)
        assert build.smoke is smoke
        shown = str(build.query_one("#image").render())
        assert "Built  Docker Engine 20.10.24+dfsg1" in shown
        assert (
            "Smoke  ✔ docker run IMAGE serve: /ping 200 after 2.5 s; /invocations (471, 840) -> 200, score 0.2500"
            in shown
        )
        # the log streamed; search finds the image line the build printed
        assert build.query_one("#log").line_count > 20
        await pilot.press("slash")
        await pilot.press(*"image-uri")
        await pilot.press("enter")
        assert build.match_line >= 0
        assert "image-uri" in build.query_one("#log").lines[build.match_line]
        await pilot.press("y")
        assert app.clipboard == build.image.uri
        assert str(build.query_one("#primary").label) == "Deploy ▸"  # the next step; F3 is the checklist
        await pilot.press("f3")
        checklist = app.get_screen("checklist")
        assert app.screen is checklist
        # after a healthy run every check that can judge it passes: the build, the image, the model
        await seen.message(pilot, ChecklistFinished)
        assert "checks:" in checklist.status
        for check_id in ("neo-model", "build", "image", "service-role", "project", "ecr-repository"):
            assert checklist.checks[check_id].status == "pass", (check_id, checklist.checks[check_id].evidence)


async def test_a_denied_permission_is_fixed_in_the_ui(make_app: Any, resumable: Any, sandbox: Any, seen: Seen) -> None:
    sandbox.reset("missing-permissions")
    app = make_app(offer_resume=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        permissions = await resumed_to_settings(pilot, seen)
        await until_screen(pilot, "ConfirmModal")
        assert "ecr:PutImage" in app.screen.body
        await pilot.press("escape")  # not now: the denies stay, with the proposed policy shown
        await seen.run(pilot, "permissions")
        denied = {p.action for p in permissions.perms.values() if p.decision != "allowed"}
        assert {"ecr:PutImage", "s3:ListBucket"} <= denied
        assert permissions.query_one("#policy").display
        assert "✘" in str(app.screen.query_one("#status").render())
        await pilot.press("a")  # attach and re-check, behind the confirmation
        await until_screen(pilot, "ConfirmModal")
        await pilot.press("y")
        await seen.run(pilot, "permissions")
        assert permissions.state == "ok", permissions.message
        assert permissions.attached
        assert all(p.decision == "allowed" for p in permissions.perms.values())
        assert not permissions.query_one("#policy").display


async def test_a_boundary_denial_is_explained_and_nothing_is_offered(
    make_app: Any, resumable: Any, sandbox: Any, seen: Seen
) -> None:
    sandbox.reset("boundary-denied")
    app = make_app(offer_resume=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        permissions = await resumed_to_settings(pilot, seen)
        await seen.run(pilot, "permissions")
        assert modal_name(app) != "ConfirmModal", "an attach was offered for what no inline policy can fix"
        capped = [p for p in permissions.perms.values() if p.blocked_by]
        assert [(p.action, p.blocked_by) for p in capped] == [("ecr:PutImage", "permissions boundary")]
        panel = permissions.query_one("#policy")
        assert panel.display and panel.border_title == "Cannot be fixed here"
        assert "no inline policy" in str(panel.render())
        assert "Not simulated: resource-based policies" in str(permissions.query_one("#intro").render())
        status = str(app.screen.query_one("#status").render())
        assert "✘" in status and "a attaches" not in status  # no key offers a fix that cannot work


async def test_a_failed_build_shows_the_failed_phase_and_the_log(
    make_app: Any, resumable: Any, sandbox: Any, tmp_path: Path, seen: Seen
) -> None:
    """A source whose Dockerfile copies a file that is not there: the BUILD phase fails, the log says why."""
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT / "container", source / "container", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "buildspec.yml", source / "buildspec.yml")
    dockerfile = source / "container" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY serve.py ", "COPY no-such-file.py "))
    sandbox.source_dir = source  # the sandbox's CodeBuild takes its source from here (the fixture restores it)
    app = make_app(offer_resume=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await resumed_to_settings(pilot, seen)
        await seen.run(pilot, "permissions")
        await pilot.press("enter")
        build = app.get_screen("build")
        await seen.run(pilot, "verify")
        assert build.state == "failed"
        assert build.phases["BUILD"].status == "FAILED"
        assert "✘" in str(build.query_one("#phases").get_row_at(list(build.phases).index("BUILD"))[0])
        assert "no-such-file.py" in "\n".join(build.query_one("#log").lines)
        assert "✘ build failed" in str(app.screen.query_one("#status").render())
        assert build.image is None and not build.query_one("#image-pane").display
