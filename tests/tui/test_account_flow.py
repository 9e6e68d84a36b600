"""Issue 16 in the wizard: from an empty account, the preflight on the connection screen, one confirmation
that shows every resource with its policy documents, the resources made, and on to the image in ECR."""

from __future__ import annotations

from typing import Any

import pytest

from ncf_tui.engine.account import CREATE, MANAGED_BY, RUN_TAG
from ncf_tui.engine.events import ResourceEvent
from ncf_tui.tui.messages import CheckpointDescribed, Connected, EngineEvent, PreflightDone
from tests.tui.conftest import RUN_ID, Seen, until_screen

pytestmark = pytest.mark.asyncio
SIZE = (100, 30)


def ours(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_BY[0]) == MANAGED_BY[1] and tags.get(RUN_TAG) == RUN_ID


def record_dialogs(app: Any) -> list[str]:
    """The title of every confirmation put up from now on (the app's ``screen_change_signal``)."""
    asked: list[str] = []

    def changed(screen: Any) -> None:
        if type(screen).__name__ == "ConfirmModal":
            asked.append(screen.title_text)

    app.screen_change_signal.subscribe(app.screen, changed)  # the connection screen: mounted throughout
    return asked


@pytest.mark.slow
async def test_the_wizard_walks_an_empty_account_to_the_image(make_app: Any, sandbox: Any, seen: Seen) -> None:
    sandbox.reset("empty-account")
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        asked = record_dialogs(app)
        await seen.message(pilot, Connected)
        pre = (await seen.message(pilot, PreflightDone)).preflight
        connection = app.get_screen("connection")
        assert app.screen is connection
        assert [i.name for i in pre.inputs] == ["bucket", "sagemaker_role", "service_role", "IMAGE_REPO_NAME"]
        assert all(i.status == CREATE for i in pre.inputs), [i.line() for i in pre.inputs]
        shown = str(connection.query_one("#preflight").render())
        assert pre.caller_arn in shown and pre.region in shown
        for i in pre.inputs:
            line = next(x for x in shown.splitlines() if x.lstrip("+ ").startswith(i.name))
            assert i.resource_name in line and CREATE in line, line
        assert "Create and continue" in str(connection.query_one("#primary").label)

        await pilot.press("enter")  # the account step: it asks once, with the plan
        await until_screen(pilot, "ConfirmModal")
        plan = app.screen.body
        for needle in (
            *(f"+ {i.kind} {i.resource_name} (" for i in pre.inputs),
            "PublicAccessBlockConfiguration",
            "ServerSideEncryptionConfiguration",
            '"Service": "sagemaker.amazonaws.com"',
            '"Service": "codebuild.amazonaws.com"',
            "ncf-tui-sagemaker-execution:",
            "ncf-tui-build-permissions:",
            '"scanOnPush": true',
        ):
            assert needle in plan, needle
        await pilot.press("y")
        finished = await seen.run(pilot, "account")
        assert finished.status == "ok", (finished.message, finished.hint)
        created = [
            m.event
            for m in seen.messages
            if isinstance(m, EngineEvent) and isinstance(m.event, ResourceEvent) and m.event.status == "created"
        ]
        assert sorted(e.setting for e in created) == sorted(i.name for i in pre.inputs)
        assert set(connection.statuses.values()) == {"created"}
        assert str(connection.query_one("#preflight").render()).count("created") == 4

        await until_screen(pilot, "CheckpointScreen")  # the account made, the wizard goes on by itself
        await seen.message(pilot, CheckpointDescribed)
        await pilot.press("enter")
        variants = app.get_screen("variants")
        await seen.run(pilot, "variants")
        await pilot.press("enter")
        await seen.run(pilot, "compile")
        assert variants.phase == "compiled", variants.message
        await pilot.press("enter")
        settings = app.get_screen("settings")
        assert app.screen is settings
        values = settings.values()
        account = app.session.result("account")
        for name, value in account.values.items():  # the form starts from what the account step made
            assert values[name] == value, name
        await pilot.press("enter")
        await seen.run(pilot, "settings")
        assert settings.state == "ok", settings.message
        await pilot.press("enter")
        permissions = app.get_screen("permissions")
        await seen.run(pilot, "permissions")
        assert permissions.state == "ok", permissions.message
        assert all(p.decision == "allowed" for p in permissions.perms.values()), "the created role lacks a right"
        await pilot.press("enter")
        build = app.get_screen("build")
        await seen.run(pilot, "verify")
        assert build.state == "ok", build.message
        image = build.image

    assert len(asked) == 1 and asked[0].startswith("Create 4 resource(s)"), asked
    names = {c["setting"]: c["name"] for c in account.created}
    s3, iam, ecr = sandbox.client("s3"), sandbox.client("iam"), sandbox.client("ecr")
    assert ours({t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=names["bucket"])["TagSet"]})
    for setting in ("sagemaker_role", "service_role"):
        role_tags = iam.list_role_tags(RoleName=names[setting])["Tags"]
        assert ours({t["Key"]: t["Value"] for t in role_tags}), setting
    repo = ecr.describe_repositories(repositoryNames=[names["IMAGE_REPO_NAME"]])["repositories"][0]
    repo_tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    assert ours({t["Key"]: t["Value"] for t in repo_tags})
    assert image is not None and image.uri.startswith(repo["repositoryUri"] + ":")
    details = ecr.describe_images(repositoryName=names["IMAGE_REPO_NAME"])["imageDetails"]
    assert image.digest in {d["imageDigest"] for d in details}


async def test_refusing_the_plan_creates_nothing_and_names_each_flag(make_app: Any, sandbox: Any, seen: Seen) -> None:
    sandbox.reset("empty-account")
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        pre = (await seen.message(pilot, PreflightDone)).preflight
        await pilot.press("enter")
        await until_screen(pilot, "ConfirmModal")
        await pilot.press("escape")  # no
        finished = await seen.run(pilot, "account")
        connection = app.get_screen("connection")
        assert finished.status == "failed" and app.screen is connection
        status = str(connection.query_one("#status").render())
        for i in pre.inputs:
            assert i.flag in finished.message and i.flag.split("=")[0] in status, i.flag
        assert "Create and continue" in str(connection.query_one("#primary").label)
        assert set(connection.statuses.values()) == {CREATE}
    assert sandbox.client("s3").list_buckets()["Buckets"] == []
    assert sandbox.client("ecr").describe_repositories()["repositories"] == []


async def test_yes_creates_without_asking(make_app: Any, sandbox: Any, seen: Seen) -> None:
    """``--yes`` answers the plan as a headless run does: no dialog, the resources made, on to the checkpoint."""
    sandbox.reset("empty-account")
    app = make_app(yes=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        asked = record_dialogs(app)
        await seen.message(pilot, PreflightDone)
        await pilot.press("enter")
        finished = await seen.run(pilot, "account")
        assert finished.status == "ok", finished.message
        await until_screen(pilot, "CheckpointScreen")
        assert set(app.get_screen("connection").statuses.values()) == {"created"}
    assert asked == []
    made = {c["setting"] for c in app.session.result("account").created}
    assert made == {"bucket", "sagemaker_role", "service_role", "IMAGE_REPO_NAME"}
