"""The deploy step against the sandbox: a real run makes the image, the step serves it from an endpoint.

Everything is real: the sandbox over HTTP on 127.0.0.1, boto3 clients, the sagemaker SDK's resource classes,
and the image's own server (``container/serve.py``) answering InvokeEndpoint, natively here (the suite's
builds use the fallback builder); ``tests/sandbox/test_real_docker.py`` deploys its real image with `docker run`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.context import RunContext, sandbox_saved_dir
from ncf_tui.engine.deploy import DeployError, EndpointNames
from ncf_tui.engine.errors import Cancelled, ExitCode
from ncf_tui.engine.events import EndpointEvent, InvocationEvent
from ncf_tui.engine.pipeline import Pipeline, RunOptions, agree, refuse
from ncf_tui.engine.steps.base import StepContext
from ncf_tui.engine.steps.deploy import DeployResult, DeployStep

from .engine.aws_kit import Recorder, aws_for

pytestmark = [pytest.mark.slow]


def _verified_run(sandbox: Any, tmp_path: Path) -> tuple[Pipeline, Recorder]:
    """A real run through verify on the sandbox: the image the deploy step serves."""
    from ncf_tui.engine.sample import sample_checkpoint_path

    saved = sandbox_saved_dir(sandbox)
    options = RunOptions(
        checkpoint=sample_checkpoint_path(),
        output_dir=tmp_path / "out",
        mode="sandbox",
        env={},
        saved_dir=saved,
        save_answers=False,
        source_root=sandbox.source_dir,
        ask=refuse,
    )
    rec = Recorder()
    p = Pipeline.new(
        options,
        rec,
        state_dir=tmp_path / "state",
        aws=lambda: aws_for(sandbox),
        compile_config=RunContext(env={}, saved_dir=saved).compile_config,
    )
    p.run("verify")
    return p, rec


def _ctx(p: Pipeline, rec: Recorder, *, delete: bool = False, yes: bool = False, **extras: Any) -> StepContext:
    """The deploy step's context on a verified run: ``delete`` is --delete-endpoint, ``yes`` agrees to attach."""
    options = replace(p.options, delete_endpoint=delete, ask=agree if yes else refuse)
    return StepContext(
        options=options, emit=rec, state=p.state, save=p.save, aws=p.aws, cancel=threading.Event(), extras=extras
    )


def _left(sandbox: Any, names: EndpointNames) -> list[str]:
    sm = sandbox.client("sagemaker")
    left = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"] == names.endpoint]
    left += [
        c["EndpointConfigName"]
        for c in sm.list_endpoint_configs()["EndpointConfigs"]
        if c["EndpointConfigName"] == names.config
    ]
    left += [m["ModelName"] for m in sm.list_models()["Models"] if m["ModelName"] == names.model]
    return left


def test_deploy_serves_the_image_then_resume_reattaches_and_delete_leaves_nothing(sandbox: Any, tmp_path: Path) -> None:
    p, rec = _verified_run(sandbox, tmp_path)
    ctx = _ctx(p, rec, latency_calls=24)
    result = DeployStep().run(ctx)

    # The endpoint went Creating -> InService, as DescribeEndpoint reports it.
    statuses = [e.status for e in rec.of("endpoint") if e.name == result.endpoint]
    assert statuses[:2] == ["created", "Creating"] and statuses[-1] == "InService"
    assert result.status == "InService" and result.instance_type == "ml.c5.xlarge"
    described = sandbox.client("sagemaker").describe_endpoint(EndpointName=result.endpoint)
    assert described["EndpointStatus"] == "InService"
    model = sandbox.client("sagemaker").describe_model(ModelName=result.model)
    assert model["PrimaryContainer"]["Image"] == p.state.steps["verify"]["image_uri"]

    # Invocations through sagemaker-runtime, answered by the image's server: scores in [0, 1].
    calls: list[InvocationEvent] = rec.of("invocation")
    assert [c.request for c in calls] == ["pair", "batch", "top_k", "latency"]
    assert all(0.0 <= s <= 1.0 for c in calls for s in c.scores)
    assert len(calls[1].scores) == len(calls[1].body["instances"])
    ranked = [i["score"] for i in calls[2].items]
    assert len(ranked) == 10 and ranked == sorted(ranked, reverse=True)
    assert calls[3].calls == 24 and 0 < calls[3].p50_ms <= calls[3].p95_ms  # type: ignore[operator]
    # The same pair straight through boto3 gives the score the step saw.
    answer = sandbox.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=result.endpoint, ContentType="application/json", Body=json.dumps(calls[0].body)
    )
    assert json.loads(answer["Body"].read())["score"] == pytest.approx(calls[0].scores[0])
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    # An id outside the sidecar's range: the container answers 400, SageMaker's ModelError (424) carries it,
    # and the engine's invocation turns it into exit 6.
    from botocore.exceptions import ClientError

    from ncf_tui.engine.deploy import invoke

    bad = {"user_id": 10**9, "item_id": 0}
    with pytest.raises(ClientError) as refused:
        sandbox.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=result.endpoint, ContentType="application/json", Body=json.dumps(bad)
        )
    error = refused.value.response
    assert error["Error"]["Code"] == "ModelError" and error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400 and "user_id" in error["OriginalMessage"]
    with pytest.raises(DeployError) as failed:
        invoke(aws_for(sandbox), result.endpoint, bad)
    assert failed.value.exit_code == 6 and "ModelError" in failed.value.message

    # ECS and self-hosted: the docker run line and the task definition, from the run's values.
    run_line = Path(result.elsewhere["docker_run_file"]).read_text()
    assert result.elsewhere["docker_run"] in run_line and "-p 8080:8080" in run_line
    task = json.loads(Path(result.elsewhere["ecs_task_definition_file"]).read_text())
    container = task["containerDefinitions"][0]
    assert container["image"] == result.image_uri and container["portMappings"][0]["containerPort"] == 8080

    # The result survives the state file, and the checklist's endpoint check finds it InService, answering.
    assert DeployResult.from_state(json.loads(json.dumps(result.to_state()))) == result
    assert result.to_state()["status"] == "done" and result.to_state()["endpoint_status"] == "InService"
    from ncf_tui.engine.checks.base import ChecklistContext
    from ncf_tui.engine.checks.endpoint import check_endpoint
    from ncf_tui.engine.settings import Settings

    p.state.steps["deploy"] = result.to_state()
    verdict = check_endpoint(ChecklistContext(aws=aws_for(sandbox), settings=Settings(), state=p.state))
    assert verdict.status == "pass" and result.endpoint in verdict.evidence, verdict.evidence

    # A resumed run (the deploy saved as partial progress) re-attaches by name instead of creating another.
    p.state.steps["deploy"] = {
        "status": "running",
        "endpoint": result.endpoint,
        "config": result.config,
        "model": result.model,
    }
    rec2 = Recorder()
    again = DeployStep().run(_ctx(p, rec2, latency_calls=4, delete=True))
    assert again.reattached and again.endpoint == result.endpoint
    assert next(e.status for e in rec2.of("endpoint")) == "attached"
    assert not any(e.status == "created" for e in rec2.of("endpoint"))

    # --delete-endpoint: the endpoint, its config and its model are gone.
    assert again.status == "Deleted" and len(again.deleted) == 3
    names = EndpointNames(model=result.model, config=result.config, endpoint=result.endpoint)
    assert _left(sandbox, names) == []


def test_an_interrupted_deploy_resumes_onto_the_same_endpoint(sandbox: Any, tmp_path: Path) -> None:
    p, rec = _verified_run(sandbox, tmp_path)

    def stop_when_creating(event: Any) -> None:
        rec(event)
        if isinstance(event, EndpointEvent) and event.status == "Creating":
            p.cancel.set()

    p.emit = stop_when_creating
    p.extras["latency_calls"] = 4
    p.options.also = frozenset({"deploy"})
    with pytest.raises(Cancelled):
        p.run("deploy")
    saved = p.store.load()
    assert saved is not None and not saved.finished and saved.steps["deploy"]["status"] == "running"

    rec2 = Recorder()
    p.options.delete_endpoint = True
    resumed = Pipeline.resume(
        p.store, p.options, rec2, aws=lambda: aws_for(sandbox), compile_config=p.extras["compile_config"]
    )
    resumed.extras["latency_calls"] = 4
    result = resumed.run("deploy").result("deploy")
    assert result.reattached and result.endpoint == saved.steps["deploy"]["endpoint"]
    assert result.invocations["pair"]["scores"] and result.status == "Deleted"
    assert resumed.store.load().finished  # type: ignore[union-attr]


def test_an_endpoint_that_cannot_load_its_model_fails_with_exit_6_and_its_log(sandbox: Any, tmp_path: Path) -> None:
    sandbox.reset("endpoint-model-unloadable")  # only hosting differs: the run up to verify is the healthy one
    p, rec = _verified_run(sandbox, tmp_path)
    with pytest.raises(DeployError) as caught:
        DeployStep().run(_ctx(p, rec, latency_calls=4, delete=True))
    assert caught.value.exit_code == ExitCode.DEPLOY_FAILED and int(caught.value.exit_code) == 6
    message = caught.value.message
    assert "Failed" in message and "did not pass the ping health check" in message
    assert "/aws/sagemaker/Endpoints/" in message and "cannot serve" in message  # the container's own line
    failed = [e for e in rec.of("endpoint") if e.status == "Failed" and e.log_lines]
    assert failed and any("cannot serve" in line for line in failed[-1].log_lines)
    names = EndpointNames.for_run(p.run_id)
    assert _left(sandbox, names) == []  # asked to delete: nothing is left, failed or not


def test_deploy_permissions_are_checked_before_anything_is_created(sandbox: Any, tmp_path: Path) -> None:
    from ncf_tui.engine.iam import PermissionsError

    p, rec = _verified_run(sandbox, tmp_path)
    iam = sandbox.client("iam")
    role = p.state.steps["settings"]["values"]["sagemaker_role"].rsplit("/", 1)[-1]
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    with pytest.raises(PermissionsError) as caught:
        DeployStep().run(_ctx(p, rec))
    assert "ecr:BatchGetImage" in caught.value.message and caught.value.exit_code == 3
    assert _left(sandbox, EndpointNames.for_run(p.run_id)) == []
    # With a yes, the proposed least-privilege policy is attached, checked again, and the deploy goes on.
    result = DeployStep().run(_ctx(p, Recorder(), latency_calls=4, delete=True, yes=True))
    assert result.status == "Deleted" and result.invocations["top_k"]["items"]


def test_headless_deploy_json_ends_with_the_endpoint_in_service(tmp_path: Path) -> None:
    env = {**os.environ, "NCF_TUI_STATE_DIR": str(tmp_path / "s"), "NCF_SANDBOX_NEO_SECONDS": "0.5"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ncf_tui.cli",
            "--headless",
            "--sandbox",
            "--json",
            "--yes",
            "--deploy",
            "--delete-endpoint",
            "--output-dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    endpoint = [e for e in events if e["event"] == "endpoint"]
    assert "InService" in [e["status"] for e in endpoint] and endpoint[-1]["status"] == "Deleted"
    invocations = [e for e in events if e["event"] == "invocation"]
    assert invocations and all(0 <= s <= 1 for e in invocations for s in e["scores"])
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == 0


def test_headless_failing_endpoint_exits_6_with_the_endpoint_s_log(tmp_path: Path) -> None:
    env = {**os.environ, "NCF_TUI_STATE_DIR": str(tmp_path / "s"), "NCF_SANDBOX_NEO_SECONDS": "0.5"}
    proc = subprocess.run(
        [sys.executable, "-m", "ncf_tui.cli", "--headless", "--sandbox", "--json", "--yes", "--deploy",
         "--delete-endpoint", "--sandbox-scenario", "endpoint-model-unloadable", "--output-dir", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert proc.returncode == 6, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    done = events[-1]
    assert done["event"] == "done" and done["exit_code"] == 6
    assert "did not pass the ping health check" in done["message"] and "cannot serve" in done["message"]
    assert "/aws/sagemaker/Endpoints/" in done["message"]
    assert "Traceback" not in proc.stderr and proc.stderr.count("ncf-tui: error:") == 1
    assert [e["status"] for e in events if e["event"] == "endpoint"][-1] == "Deleted"


def test_delete_endpoint_goes_with_deploy() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ncf_tui.cli", "--headless", "--sandbox", "--delete-endpoint"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "--delete-endpoint goes with --deploy" in proc.stderr
