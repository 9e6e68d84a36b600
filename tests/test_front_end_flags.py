"""Each front end honours the flags it can and refuses the others in one line, exit 2 (``ncf_tui.context``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.cli import build_parser, main
from ncf_tui.context import REFUSED, compose
from ncf_tui.engine.errors import BadInputError, ExitCode


def _args(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--checklist", "--headless", "--until", "build"], "--until does not apply to --checklist"),
        (["--checklist", "--headless", "--leave-running"], "--leave-running does not apply to --checklist"),
        (["--checklist", "--headless", "--resume"], "--resume does not apply to --checklist"),
        (["--checklist", "--headless", "--force", "basic"], "--force does not apply to --checklist"),
        (["--headless", "--fix"], "--fix does not apply to --headless"),
    ],
)
def test_a_flag_the_mode_cannot_honour_is_one_line_and_exit_2(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == int(ExitCode.BAD_INPUT)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines and said in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


@pytest.mark.parametrize("flag", ["--leave-running", "--fix"])
def test_the_wizard_refuses_what_it_cannot_honour(flag: str) -> None:
    from ncf_tui.tui.config import AppConfig

    with pytest.raises(BadInputError, match=f"^{flag} does not apply to the wizard: ") as caught:
        AppConfig.from_args(_args(flag))
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_the_wizard_refuses_json_too() -> None:
    with pytest.raises(BadInputError, match="^--json does not apply to the wizard"):
        compose(_args("--headless", "--json"), "wizard")


def test_every_refused_flag_is_a_real_flag() -> None:
    dests = {a.dest for a in build_parser()._actions}
    for front_end, refused in REFUSED.items():
        assert set(refused) <= dests, front_end


def test_the_wizard_resume_without_a_run_is_refused_before_it_opens(tmp_path: Path) -> None:
    from ncf_tui.tui.config import AppConfig

    with pytest.raises(BadInputError, match="no unfinished aws run to resume"):
        AppConfig.from_args(_args("--resume", "--state", str(tmp_path / "none.json")))


def test_the_wizard_takes_config_set_until_and_yes(tmp_path: Path) -> None:
    from ncf_tui.tui.config import AppConfig

    config = tmp_path / "answers.toml"
    config.write_text('IMAGE_TAG = "from-config"\nbucket = "from-config"\n', encoding="utf-8")
    cfg = AppConfig.from_args(_args("--config", str(config), "--set", "bucket=from-set", "--until", "compile", "-y"))
    assert cfg.context is not None
    settings = cfg.context.settings()
    assert (settings.image_tag, settings.bucket) == ("from-config", "from-set")
    assert settings.source("bucket") == "flag" and settings.source("IMAGE_TAG") == f"config:{config}"
    assert cfg.last_screen == "variants"
    assert cfg.clamp("build") == "compile" and cfg.clamp("variants") == "variants"
    assert cfg.yes


def test_the_wizard_stops_at_until(sandbox: Any, tmp_path: Path) -> None:
    """``--until variants``: the wizard will not start the compile, nor move past the variants screen."""
    from ncf_tui.tui.app import create_app
    from ncf_tui.tui.config import AppConfig

    app = create_app(
        AppConfig(sandbox=True, sandbox_instance=sandbox, until="variants", offer_resume=False, env={}),
        saved_dir=tmp_path / "config",
        state_dir=tmp_path / "state",
    )
    seen: dict[str, Any] = {}

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            seen["compile"] = app.start_run("compile", app)
            app.push_screen("checkpoint")
            app.push_screen("variants")
            await pilot.pause()
            depth = len(app.screen_stack)
            app.goto_next("variants")
            await pilot.pause()
            seen["moved"] = len(app.screen_stack) != depth
            seen["notes"] = [n.message for n in app._notifications]

    asyncio.run(drive())
    assert seen["compile"] is False and seen["moved"] is False
    assert any("--until variants" in note for note in seen["notes"]), seen["notes"]
