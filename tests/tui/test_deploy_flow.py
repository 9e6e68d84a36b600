"""The wizard's Deploy screen on the sandbox: asked first, the endpoint comes up, a user is scored, it is deleted.

The whole run is real: the build pushes the image, the deploy step creates the model, config and endpoint with
the sagemaker SDK, the sandbox serves the image's own server, and the form's call goes through
sagemaker-runtime InvokeEndpoint. Every wait is on a message (the run's end, the scored user, the delete).
"""

from __future__ import annotations

from typing import Any

import pytest

from ncf_tui.engine.events import EndpointEvent
from ncf_tui.tui.messages import EndpointDeleted, UserScored
from tests.tui.conftest import Seen, until_screen
from tests.tui.test_build_flow import SIZE, resumed_to_settings

pytestmark = pytest.mark.asyncio


def left_behind(sandbox: Any, endpoint: str, config: str, model: str) -> list[str]:
    """What the sandbox's SageMaker still lists of the run's endpoint, config and model."""
    sm = sandbox.client("sagemaker")
    names = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    names += [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    names += [m["ModelName"] for m in sm.list_models()["Models"]]
    return [n for n in names if n in (endpoint, config, model)]


async def built_to_deploy(pilot: Any, seen: Seen) -> Any:
    """Resume the prepared run, build the image, and continue to the Deploy screen."""
    app = pilot.app
    await resumed_to_settings(pilot, seen)
    await seen.run(pilot, "permissions")
    await pilot.press("enter")
    build = app.get_screen("build")
    await seen.run(pilot, "verify")
    assert build.state == "ok", build.message
    await pilot.press("enter")  # "Deploy ▸"
    return app.get_screen("deploy")


async def test_deploy_from_the_wizard_scores_a_user_then_deletes(
    make_app: Any, resumable: Any, sandbox: Any, seen: Seen
) -> None:
    app = make_app(offer_resume=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        deploy = await built_to_deploy(pilot, seen)
        # it asks before anything is created: an endpoint costs money on a real account
        await until_screen(pilot, "ConfirmModal")
        assert "SageMaker endpoint" in app.screen.title_text and "charged while the endpoint exists" in app.screen.body
        assert sandbox.client("sagemaker").list_endpoints()["Endpoints"] == []  # nothing before the yes
        await pilot.press("n")  # not now: nothing is created, and the primary button asks again
        await until_screen(pilot, "DeployScreen")
        assert deploy.state == "declined" and not app.run_active
        assert str(deploy.query_one("#primary").label) == "Deploy ▸"
        assert sandbox.client("sagemaker").list_models()["Models"] == []
        await pilot.press("enter")
        await until_screen(pilot, "ConfirmModal")
        await pilot.press("y")
        finished = await seen.run(pilot, "deploy")
        assert finished.status == "ok", finished.message
        assert app.screen is deploy and deploy.state == "ok", deploy.message
        # the status as the endpoint events said it, live: created, Creating, then InService
        assert deploy.statuses[:2] == ["created", "Creating"] and deploy.statuses[-1] == "InService"
        result = app.session.result("deploy")
        described = sandbox.client("sagemaker").describe_endpoint(EndpointName=result.endpoint)
        assert described["EndpointStatus"] == "InService"
        shown = str(deploy.query_one("#endpoint").render())
        assert "✔ InService" in shown and result.endpoint in shown and "ml.c5.xlarge" in shown
        # the step's test calls: pair, batch, top-10, latency
        assert list(deploy.calls) == ["pair", "batch", "top_k", "latency"]
        calls = str(deploy.query_one("#calls").render())
        assert "Pair" in calls and "Batch" in calls and "Top-10" in calls and "p50" in calls and "p95" in calls
        low, high = result.user_range
        assert high > low

        # the form: a user outside the sidecar's range is refused by the validator, nothing is called
        box = deploy.query_one("#user")
        box.focus()
        box.value = ""
        await pilot.press(*str(high + 1), "enter")
        await pilot.pause()
        assert deploy.scored is not None and f"{low}..{high}" in deploy.scored.error
        # one inside it: its top-10 from the endpoint, with scores
        user = low + 17
        box.value = ""
        await pilot.press(*str(user), "enter")
        scored = await seen.message(pilot, UserScored)
        assert not scored.error, scored.error
        assert scored.user == user and len(scored.items) == 10
        scores = [i["score"] for i in scored.items]
        assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
        assert scored.latency_ms is not None and scored.latency_ms > 0
        table = deploy.query_one("#top")
        assert table.row_count == 10
        assert str(table.get_row_at(0)[1]) == str(scored.items[0]["item_id"])
        assert f"user {user}: 10 items in" in str(deploy.query_one("#score-status").render())

        # quitting now would leave a billed endpoint: it asks, says how to delete it, and n stays
        app.set_focus(None)  # off the input: d and ctrl+q are the screen's and the app's keys
        await pilot.press("ctrl+q")
        await until_screen(pilot, "EndpointQuitModal")
        body = app.screen.body
        assert result.endpoint in body and "charges for it until it is deleted" in body and "press d" in body
        region = app.session.target.region
        assert f"delete-endpoint --region {region} --endpoint-name {result.endpoint}" in body and result.model in body
        assert "In the sandbox it costs nothing" in body
        await pilot.press("n")
        await until_screen(pilot, "DeployScreen")
        assert app.is_running and app.return_code is None

        # delete, behind a confirmation that names the three things
        await pilot.press("d")
        await until_screen(pilot, "ConfirmModal")
        assert result.endpoint in app.screen.body and result.config in app.screen.body
        assert result.model in app.screen.body
        await pilot.press("y")
        deleted = await seen.message(pilot, EndpointDeleted)
        assert not deleted.error, deleted.error
        assert deploy.state == "deleted"
        assert isinstance(deploy.endpoint, EndpointEvent) and deploy.endpoint.status == "Deleted"
        assert left_behind(sandbox, result.endpoint, result.config, result.model) == []
        # the run state says so: a resumed run does not re-attach to an endpoint that is gone
        assert app.session.result("deploy").status == "Deleted"
        # nothing billed is left: ctrl+q quits at once
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


async def test_an_endpoint_that_fails_shows_the_reason_and_its_log_then_is_deleted(
    make_app: Any, resumable: Any, sandbox: Any, seen: Seen
) -> None:
    """The image cannot load its model on the endpoint: Failed, FailureReason and the CloudWatch lines shown."""
    sandbox.reset("endpoint-model-unloadable")  # only hosting differs: the run up to verify is the healthy one
    app = make_app(offer_resume=True, deploy=True)  # --deploy: no question
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        deploy = await built_to_deploy(pilot, seen)
        finished = await seen.run(pilot, "deploy")
        assert finished.status == "failed"
        assert deploy.state == "failed" and "Failed" in deploy.message
        assert deploy.statuses[-1] == "Failed" and deploy.failure is not None
        assert deploy.failure.failure_reason and deploy.failure.log_lines
        shown = str(deploy.query_one("#endpoint").render())
        assert "✘ Failed" in shown and deploy.failure.failure_reason[:40] in shown
        assert "CloudWatch /aws/sagemaker/Endpoints/" in shown and deploy.failure.log_lines[-1][:40] in shown
        assert deploy.query_one("#user").disabled  # nothing to score
        assert "✘ deploy failed" in str(deploy.query_one("#status").render())
        # a failed endpoint still holds its names: d deletes what the step created
        app.set_focus(None)
        await pilot.press("d")
        await until_screen(pilot, "ConfirmModal")
        await pilot.press("y")
        deleted = await seen.message(pilot, EndpointDeleted)
        assert not deleted.error, deleted.error
        name = deploy.failure.name
        assert left_behind(sandbox, name, deploy.failure.config, deploy.failure.model) == []
        assert "deploy" not in app.session.pipeline.state.steps
