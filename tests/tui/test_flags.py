"""Flags the wizard honours through the one way in (``ncf_tui.context``): ``--resume`` continues without asking."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

SIZE = (120, 40)


def test_resume_flag_continues_the_run_without_asking(make_app: Any, resumable: Path) -> None:
    app = make_app(resume=True)
    seen: dict[str, Any] = {}

    async def drive() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            seen["screens"] = [type(s).__name__ for s in app.screen_stack]
            seen["store"] = app.session.resume_store

    asyncio.run(drive())
    assert "ResumeModal" not in seen["screens"], seen["screens"]
    assert seen["screens"][-1] == "VariantsScreen", seen["screens"]
    assert seen["store"] is not None and seen["store"].path == resumable
