"""The CodeBuild project and builds against the sandbox's CodeBuild, which really runs the buildspec."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import pytest

from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.codebuild import (
    DEFAULT_IMAGE,
    SEED_IMAGE,
    BuildCancelled,
    BuildFailed,
    FieldChange,
    ProjectRefused,
    ProjectSpec,
    SourceSpec,
    ensure_project,
    image_advice,
    start_build,
    upload_source,
    watch_build,
)
from ncf_tui.engine.errors import BadInputError, ExitCode
from ncf_tui.engine.events import BuildEvent, Event, LogEvent, SettingEvent
from ncf_tui.engine.logs import LogPosition
from ncf_tui.sandbox.server import Sandbox
from tests.sandbox.cb_kit import neo_base_image
from tests.waits import wait_for

SHA = "12" * 32
OK_SPEC = f"""version: 0.2
phases:
  install:
    commands:
      - echo "installing for $IMAGE_REPO_NAME:$IMAGE_TAG"
  build:
    commands:
      - for i in $(seq 1 30); do echo "step $i"; done
      - 'echo "NCF-TUI: model-sha256 {SHA} model.pth"'
  post_build:
    commands:
      - echo "privileged=$NCF_SANDBOX_PRIVILEGED"
"""
FAIL_SPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "about to fail"
      - 'echo "NCF-TUI: error model-not-found nothing under s3://bucket/prefix/"'
      - sh -c 'echo "the cause is here"; exit 3'
      - echo "never printed"
  post_build:
    commands:
      - echo "post build ran"
"""
VARIABLES = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID": "123456789012",
    "IMAGE_REPO_NAME": "ncf-recommender",
    "IMAGE_TAG": "v1",
    "NEO_MODEL_S3_URI": "ncf-tui-sandbox-models/recommender-demo/compilation-output/ncf-full-manual-norm",
}


def make_aws(sb: Sandbox) -> Aws:
    return _aws(sb.region, sb.endpoint_url, tuple(sorted(sb.credentials.items())))


@functools.cache
def _aws(region: str, endpoint_url: str, credentials: tuple[tuple[str, str], ...]) -> Aws:
    """One boto3 session per sandbox server (its credentials outlive resets): sessions are slow to make."""
    return Aws(AwsTarget(region=region, endpoint_url=endpoint_url, credentials=dict(credentials)))


def spec_for(sb: Sandbox, buildspec: str = OK_SPEC, **changes: object) -> ProjectSpec:
    base = ProjectSpec(
        name=sb.names.codebuild_project,
        service_role_arn=sb.names.codebuild_role_arn,
        source=SourceSpec("NO_SOURCE", buildspec=buildspec),
        environment_variables=dict(VARIABLES),
    )
    return ProjectSpec(**{**base.__dict__, **changes})


def yes(_changes: list[FieldChange]) -> bool:
    return True


def test_a_missing_project_is_created_with_what_the_build_needs(sandbox: Sandbox) -> None:
    events: list[Event] = []
    change = ensure_project(make_aws(sandbox), spec_for(sandbox), events.append, yes)
    assert change.action == "created" and change.changes == ()
    project = sandbox.client("codebuild").batch_get_projects(names=[change.name])["projects"][0]
    env = project["environment"]
    assert env["image"] == DEFAULT_IMAGE and env["privilegedMode"] is True
    assert {v["name"]: (v["value"], v["type"]) for v in env["environmentVariables"]} == {
        k: (v, "PLAINTEXT") for k, v in VARIABLES.items()
    }
    assert project["serviceRole"] == sandbox.names.codebuild_role_arn
    assert project["artifacts"]["type"] == "NO_ARTIFACTS"
    image_events = [e for e in events if isinstance(e, SettingEvent) and e.name == "codebuild.environment.image"]
    assert image_events and image_events[0].ok
    again = ensure_project(make_aws(sandbox), spec_for(sandbox), events.append, yes)
    assert again.action == "unchanged"


def test_a_differing_project_is_updated_after_showing_the_diff(sandbox: Sandbox) -> None:
    aws = make_aws(sandbox)
    ensure_project(aws, spec_for(sandbox, image=SEED_IMAGE, privileged_mode=False), lambda e: None, yes)
    shown: list[list[FieldChange]] = []

    def confirm(changes: list[FieldChange]) -> bool:
        shown.append(changes)
        return True

    wanted = spec_for(sandbox, environment_variables={**VARIABLES, "IMAGE_TAG": "v2"})
    change = ensure_project(aws, wanted, lambda e: None, confirm)
    assert change.action == "updated"
    diff = change.diff().splitlines()
    assert diff == [str(c) for c in shown[0]]
    assert f"environment.image: {SEED_IMAGE} -> {DEFAULT_IMAGE}" in diff
    assert "environment.privilegedMode: false -> true" in diff
    assert "environment.variables.IMAGE_TAG: v1 -> v2" in diff
    assert len(diff) == 3
    project = sandbox.client("codebuild").batch_get_projects(names=[change.name])["projects"][0]
    assert project["environment"]["privilegedMode"] is True
    assert project["environment"]["image"] == DEFAULT_IMAGE


def test_a_project_with_cloudwatch_logs_off_is_turned_on_and_the_build_log_then_streams(sandbox: Sandbox) -> None:
    # An existing project made by hand with CloudWatch Logs off (CodeBuild API, LogsConfig): its builds write no
    # log events, so the follower would read nothing. The project diff shows it and the update turns them on.
    aws = make_aws(sandbox)
    request = spec_for(sandbox).request()
    request["logsConfig"] = {"cloudWatchLogs": {"status": "DISABLED"}}
    sandbox.client("codebuild").create_project(**request)
    events: list[Event] = []
    off = start_build(aws, sandbox.names.codebuild_project, events.append)
    assert off.succeeded and not [e for e in events if isinstance(e, LogEvent)]
    record = sandbox.client("codebuild").batch_get_builds(ids=[off.build_id])["builds"][0]
    assert record["logs"]["cloudWatchLogs"]["status"] == "DISABLED" and "groupName" not in record["logs"]
    shown: list[list[FieldChange]] = []

    def confirm(changes: list[FieldChange]) -> bool:
        shown.append(changes)
        return True

    change = ensure_project(aws, spec_for(sandbox), lambda e: None, confirm)
    assert change.action == "updated"
    assert [str(c) for c in shown[0]] == ["logsConfig.cloudWatchLogs.status: DISABLED -> ENABLED"]
    project = sandbox.client("codebuild").batch_get_projects(names=[change.name])["projects"][0]
    assert project["logsConfig"]["cloudWatchLogs"]["status"] == "ENABLED"
    events.clear()
    on = start_build(aws, sandbox.names.codebuild_project, events.append)
    lines = [e.line for e in events if isinstance(e, LogEvent)]
    assert on.succeeded and [line for line in lines if line.startswith("step ")] == [f"step {i}" for i in range(1, 31)]


def test_a_refused_update_names_what_differs_and_leaves_the_project(sandbox: Sandbox) -> None:
    aws = make_aws(sandbox)
    ensure_project(aws, spec_for(sandbox, privileged_mode=False), lambda e: None, yes)
    with pytest.raises(ProjectRefused) as err:
        ensure_project(aws, spec_for(sandbox), lambda e: None, lambda changes: False)
    assert err.value.exit_code == ExitCode.BUILD_FAILED
    assert "environment.privilegedMode: false -> true" in err.value.message
    project = sandbox.client("codebuild").batch_get_projects(names=[sandbox.names.codebuild_project])["projects"][0]
    assert project["environment"]["privilegedMode"] is False


def test_bad_project_input_is_a_clear_error(sandbox: Sandbox) -> None:
    with pytest.raises(BadInputError, match="role ARN"):
        ensure_project(make_aws(sandbox), spec_for(sandbox, service_role_arn="my-role"), lambda e: None, yes)
    with pytest.raises(BadInputError, match="inline buildspec"):
        ensure_project(make_aws(sandbox), spec_for(sandbox, buildspec="buildspec.yml"), lambda e: None, yes)


def test_the_seed_image_is_replaced_with_a_reason() -> None:
    reason = image_advice(SEED_IMAGE)
    assert reason is not None and "deprecated" in reason and DEFAULT_IMAGE in reason
    assert image_advice(DEFAULT_IMAGE) is None


def test_a_build_that_succeeds_reports_phases_logs_and_values(sandbox: Sandbox) -> None:
    aws = make_aws(sandbox)
    ensure_project(aws, spec_for(sandbox), lambda e: None, yes)
    events: list[Event] = []
    started: list[str] = []
    result = start_build(aws, sandbox.names.codebuild_project, events.append, on_started=started.append)
    assert result.succeeded and result.build_id == started[0]
    assert result.values.model_sha256 == SHA
    lines = [e.line for e in events if isinstance(e, LogEvent)]
    assert [line for line in lines if line.startswith("step ")] == [f"step {i}" for i in range(1, 31)]
    assert "installing for ncf-recommender:v1" in lines and "privileged=1" in lines
    assert result.log_lines == len(lines)
    builds = [e for e in events if isinstance(e, BuildEvent)]
    finals = [(e.phase, e.status) for e in builds if e.status != "IN_PROGRESS"]
    assert ("BUILD", "SUCCEEDED") in finals and finals[-1] == ("COMPLETED", "SUCCEEDED")
    assert all(e.duration is not None and e.duration >= 0 for e in builds if e.status == "SUCCEEDED")
    # every phase reported once per status, in CodeBuild's order
    assert len(finals) == len(set(finals))
    assert [p.name for p in result.phases][-1] == "COMPLETED"


def test_a_failing_build_names_the_phase_the_cause_and_the_last_lines(sandbox: Sandbox) -> None:
    aws = make_aws(sandbox)
    ensure_project(aws, spec_for(sandbox, FAIL_SPEC), lambda e: None, yes)
    events: list[Event] = []
    with pytest.raises(BuildFailed) as err:
        start_build(aws, sandbox.names.codebuild_project, events.append)
    failure = err.value
    assert failure.exit_code == ExitCode.BUILD_FAILED
    assert "FAILED in phase BUILD" in failure.message
    assert "COMMAND_EXECUTION_ERROR" in failure.message and "exit status 3" in failure.message
    assert "the cause is here" in failure.message and "never printed" not in failure.message
    assert failure.hint is not None and "model-not-found" in failure.hint
    assert failure.result.failed_phase == "BUILD"
    assert ("BUILD", "FAILED") in [(e.phase, e.status) for e in events if isinstance(e, BuildEvent)]
    assert "post build ran" in [e.line for e in events if isinstance(e, LogEvent)]


def test_cancel_stops_the_build(sandbox: Sandbox) -> None:
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo sleeping\n      - sleep 120\n"
    aws = make_aws(sandbox)
    ensure_project(aws, spec_for(sandbox, spec), lambda e: None, yes)
    cancel = threading.Event()
    events: list[Event] = []

    def watch(event: Event) -> None:
        events.append(event)
        if isinstance(event, LogEvent) and event.line == "sleeping":
            cancel.set()

    with pytest.raises(BuildCancelled) as err:
        start_build(aws, sandbox.names.codebuild_project, watch, cancel)
    assert err.value.exit_code == ExitCode.INTERRUPTED
    assert err.value.result.status == "STOPPED"
    assert ("BUILD", "STOPPED") in [(e.phase, e.status) for e in events if isinstance(e, BuildEvent)]


def test_watch_attaches_to_a_build_already_running(sandbox: Sandbox) -> None:
    aws = make_aws(sandbox)
    ensure_project(aws, spec_for(sandbox), lambda e: None, yes)
    cb = sandbox.client("codebuild")
    build_id = cb.start_build(projectName=sandbox.names.codebuild_project)["build"]["id"]
    # Attach once the build runs its commands (or is already over): its first lines are written before us.
    running = ("SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE")
    wait_for(
        lambda: (
            (b := cb.batch_get_builds(ids=[build_id])["builds"][0])["buildComplete"]
            or b.get("currentPhase") not in running
        ),
        "the build to reach its commands",
    )
    events: list[Event] = []
    result = watch_build(aws, build_id, events.append)
    assert result.succeeded and result.values.model_sha256 == SHA
    assert "step 30" in [e.line for e in events if isinstance(e, LogEvent)]


def test_the_repository_buildspec_runs_from_an_s3_source(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "container").mkdir()
    (tmp_path / "container" / "hello.txt").write_text("from the repository\n")
    (tmp_path / "buildspec.yml").write_text(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat container/hello.txt\n"
    )
    sandbox.source_dir = tmp_path
    aws = make_aws(sandbox)
    source = upload_source(aws, sandbox.names.bucket, "ncf-tui/source.zip", tmp_path)
    assert source.type == "S3" and source.location == f"{sandbox.names.bucket}/ncf-tui/source.zip"
    ensure_project(aws, spec_for(sandbox, source=source), lambda e: None, yes)
    events: list[Event] = []
    result = start_build(aws, sandbox.names.codebuild_project, events.append)
    assert result.succeeded
    assert "from the repository" in [e.line for e in events if isinstance(e, LogEvent)]


def test_a_build_under_throttling_still_reports_every_phase_and_line(sandbox: Sandbox) -> None:
    sandbox.reset("throttling")
    aws = make_aws(sandbox)
    ensure_project(aws, spec_for(sandbox), lambda e: None, yes)
    events: list[Event] = []
    result = start_build(aws, sandbox.names.codebuild_project, events.append)
    assert result.succeeded
    lines = [e.line for e in events if isinstance(e, LogEvent)]
    assert [line for line in lines if line.startswith("step ")] == [f"step {i}" for i in range(1, 31)]
    assert sandbox.fault_counts["throttled"] > 0


def test_a_build_left_running_is_resumed_with_its_log_position(sandbox: Sandbox) -> None:
    spec = (
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo first\n      - sleep 1.5\n      - echo second\n"
    )
    aws = make_aws(sandbox)
    ensure_project(aws, spec_for(sandbox, spec), lambda e: None, yes)
    cancel = threading.Event()
    started: list[str] = []
    saved: list[dict[str, object]] = []
    before: list[str] = []

    def first_run(event: Event) -> None:
        if isinstance(event, LogEvent):
            before.append(event.line)
            if event.line == "first":
                cancel.set()

    with pytest.raises(BuildCancelled, match="left running"):
        start_build(
            aws,
            sandbox.names.codebuild_project,
            first_run,
            cancel,
            stop_on_cancel=False,
            on_started=started.append,
            on_log_position=lambda position: saved.append(position.to_dict()),
        )
    assert "first" in before and "second" not in before
    after: list[str] = []
    result = watch_build(
        aws,
        started[0],
        lambda e: after.append(e.line) if isinstance(e, LogEvent) else None,
        log_position=LogPosition.from_dict(saved[-1]),
    )
    assert result.succeeded
    assert "second" in after and "first" not in after
    assert not set(before) & set(after) - {""}


@pytest.mark.slow
def test_the_repository_buildspec_builds_an_image_that_passes_the_image_check(sandbox: Sandbox, tmp_path: Path) -> None:
    """End to end with the real buildspec.yml and the sandbox's docker builder: S3 model -> image in ECR."""
    from ncf_tui.engine.ecr import verify_image
    from ncf_tui.engine.variants import export_variants

    from ..neo_kit import put_neo_output

    archive = export_variants(None, out_dir=tmp_path, names=("mlp",))["mlp"]
    settings = {**sandbox.suggested_settings(), "NEO_BASE_IMAGE": neo_base_image(sandbox.region)}
    bucket = settings["NEO_MODEL_S3_URI"].partition("/")[0]
    _key, model_sha = put_neo_output(sandbox, settings["NEO_MODEL_S3_URI"], archive)
    aws = make_aws(sandbox)
    source = upload_source(aws, bucket, "ncf-tui/source.zip", sandbox.source_dir)
    spec = ProjectSpec(
        name=sandbox.names.codebuild_project,
        service_role_arn=sandbox.names.codebuild_role_arn,
        source=source,
        environment_variables=settings,
    )
    ensure_project(aws, spec, lambda e: None, yes)
    events: list[Event] = []
    result = start_build(aws, spec.name, events.append)
    assert result.values.model_sha256 == model_sha
    assert result.values.image_uri == sandbox.names.image_uri
    info = verify_image(
        aws,
        settings["IMAGE_REPO_NAME"],
        settings["IMAGE_TAG"],
        events.append,
        expected_model_sha256=model_sha,
        build_values=result.values,
    )
    assert info.digest == result.values.image_digest and info.uri == sandbox.names.image_uri
    assert [e.kind for e in events].count("image") == 1
