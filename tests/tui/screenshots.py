"""Regenerate the README's screenshots: ``python -m tests.tui.screenshots`` (writes docs/screenshots/*.svg).

Drives the wizard on a fresh sandbox with Pilot, as the tests do: the compile screen with a forced variant that
Neo refuses, and the build screen with the image and its deploy commands.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
SIZE = (120, 35)


async def until(pilot: Any, predicate: Callable[[], Any], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out; the screen is {pilot.app.screen!r}")
        await pilot.pause(0.1)


async def shoot(sandbox: Any, tmp: Path) -> list[Path]:
    from ncf_tui.tui.app import create_app
    from ncf_tui.tui.config import frozen_clock

    app = create_app(
        sandbox=True,
        sandbox_instance=sandbox,
        state_dir=tmp / "state",
        output_dir=tmp / "out",
        saved_dir=tmp / "config",
        run_id="20261130-120000-demo",
        offer_resume=False,
        clock=frozen_clock(),
        animate=False,
    )
    written = []
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.connection is not None)
        await pilot.press("enter")
        await until(pilot, lambda: app.get_screen("checkpoint").summary is not None)
        await pilot.press("enter")
        variants = app.get_screen("variants")
        await until(pilot, lambda: variants.phase == "ready")
        app.screen.query_one("#row-original").focus()
        await pilot.press("f")
        await pilot.press("enter")
        await until(pilot, lambda: variants.phase == "compiled")
        app.screen.query_one("#primary").focus()
        await pilot.pause(0.3)
        written.append(Path(app.save_screenshot("compile.svg", str(OUT))))
        await pilot.press("enter")
        settings = app.get_screen("settings")
        await pilot.press("enter")
        await until(pilot, lambda: settings.state == "ok")
        await pilot.press("enter")
        permissions = app.get_screen("permissions")
        await until(pilot, lambda: permissions.state == "ok")
        await pilot.press("enter")
        build = app.get_screen("build")
        await until(pilot, lambda: build.state != "building", 300)
        await pilot.pause(0.5)
        written.append(Path(app.save_screenshot("build.svg", str(OUT))))
    return written


def main() -> int:
    from ncf_tui.sandbox.server import Sandbox

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, Sandbox(neo_seconds=1.0) as sandbox:
        for path in asyncio.run(shoot(sandbox, Path(tmp))):
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
