"""Regenerate the README's screenshots: ``python -m tests.tui.screenshots`` (writes docs/screenshots/*.svg).

Drives the wizard on a fresh sandbox with Pilot, as the tests do: the compile screen with a forced variant that
Neo refuses, and the build screen with the image and its deploy commands.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
SIZE = (120, 35)


async def shoot(sandbox: Any, tmp: Path) -> list[Path]:
    from ncf_tui.tui.app import create_app
    from ncf_tui.tui.config import frozen_clock
    from ncf_tui.tui.messages import CheckpointDescribed, Connected
    from tests.tui.conftest import Seen

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
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await seen.message(pilot, Connected)
        await pilot.press("enter")
        await seen.message(pilot, CheckpointDescribed)
        await pilot.press("enter")
        await seen.run(pilot, "variants")
        app.screen.query_one("#row-original").focus()
        await pilot.press("f")
        await pilot.press("enter")
        await seen.run(pilot, "compile")
        app.screen.query_one("#primary").focus()
        await pilot.pause()
        written.append(Path(app.save_screenshot("compile.svg", str(OUT))))
        await pilot.press("enter")
        await pilot.press("enter")
        await seen.run(pilot, "settings")
        await pilot.press("enter")
        await seen.run(pilot, "permissions")
        await pilot.press("enter")
        await seen.run(pilot, "verify", timeout=600)
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
