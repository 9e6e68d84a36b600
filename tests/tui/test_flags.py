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


def test_deploy_flag_answers_the_deploy_question_and_delete_endpoint_is_refused() -> None:
    """``--deploy`` reaches the wizard (its Deploy screen creates the endpoint without asking); the wizard's
    delete is its own key after the user has used the endpoint, so ``--delete-endpoint`` is refused there."""
    import pytest

    from ncf_tui.cli import build_parser
    from ncf_tui.engine.errors import BadInputError, ExitCode
    from ncf_tui.tui.config import AppConfig

    parser = build_parser()
    assert AppConfig.from_args(parser.parse_args(["--deploy"])).deploy
    assert not AppConfig.from_args(parser.parse_args([])).deploy
    assert AppConfig(deploy=True).make_context().deploy  # a test's config composes the same context
    with pytest.raises(BadInputError, match="^--delete-endpoint does not apply to the wizard: ") as caught:
        AppConfig.from_args(parser.parse_args(["--deploy", "--delete-endpoint"]))
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_the_attach_question_names_the_role_of_the_step_that_asks() -> None:
    """The deploy step attaches its hosting policy to the SageMaker execution role, the build's to CodeBuild's."""
    from ncf_tui.tui.screens.modals import ConfirmModal

    policy = {"Version": "2012-10-17", "Statement": []}
    assert "SageMaker execution role" in ConfirmModal.for_topic("attach-policy", policy, "deploy").title_text
    assert "CodeBuild role" in ConfirmModal.for_topic("attach-policy", policy, "permissions").title_text
