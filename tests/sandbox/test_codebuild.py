"""CodeBuild builds that really run their buildspec, with the service role's rights and live logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ncf_tui.sandbox.server import Sandbox
from tests.waits import wait_for

from .cb_kit import Builds

OK_SPEC = """version: 0.2
env:
  variables:
    FROM_SPEC: spec
    OVERRIDDEN: by-spec
phases:
  install:
    commands:
      - echo "install $FROM_SPEC $OVERRIDDEN"
      - export CARRIED=yes
      - mkdir -p work && cd work
  pre_build:
    commands:
      - echo "carried=$CARRIED dir=$(basename "$PWD")"
      - aws sts get-caller-identity --query Arn --output text
  build:
    commands:
      - for i in 1 2 3; do echo "line $i"; done
    finally:
      - echo "finally ran"
  post_build:
    commands:
      - echo "post succeeding=$CODEBUILD_BUILD_SUCCEEDING"
"""

ALL_PHASES = [
    ("SUBMITTED", "SUCCEEDED"),
    ("QUEUED", "SUCCEEDED"),
    ("PROVISIONING", "SUCCEEDED"),
    ("DOWNLOAD_SOURCE", "SUCCEEDED"),
    ("INSTALL", "SUCCEEDED"),
    ("PRE_BUILD", "SUCCEEDED"),
    ("BUILD", "SUCCEEDED"),
    ("POST_BUILD", "SUCCEEDED"),
    ("UPLOAD_ARTIFACTS", "SUCCEEDED"),
    ("FINALIZING", "SUCCEEDED"),
    ("COMPLETED", None),
]


def _spec(phase: str, *commands: str) -> str:
    """A one-phase buildspec."""
    return f"version: 0.2\nphases:\n  {phase}:\n    commands:\n" + "".join(f"      - {c}\n" for c in commands)


@pytest.fixture
def builds(sandbox: Sandbox) -> Builds:
    return Builds(sandbox)


def test_an_inline_buildspec_runs_phase_by_phase_and_logs_every_line(builds: Builds) -> None:
    builds.project(OK_SPEC, variables={"OVERRIDDEN": "by-project"})
    build, log = builds.run()
    assert build["buildStatus"] == "SUCCEEDED"
    assert build["currentPhase"] == "COMPLETED"
    assert builds.phases(build) == ALL_PHASES
    build_uuid = build["id"].split(":", 1)[1]
    assert build["logs"]["groupName"] == "/aws/codebuild/ncf-recommender-build"
    assert build["logs"]["streamName"] == build_uuid
    assert "install spec by-project" in log
    assert "carried=yes dir=work" in log
    role = builds.sb.names.codebuild_role_name
    assert any(line.startswith(f"arn:aws:sts::123456789012:assumed-role/{role}/") for line in log)
    assert log.index("line 1") < log.index("line 2") < log.index("line 3") < log.index("finally ran")
    assert "post succeeding=1" in log
    assert any(line.endswith('Running command for i in 1 2 3; do echo "line $i"; done') for line in log)
    for phase in build["phases"][:-1]:
        assert phase["startTime"] <= phase["endTime"]
        assert phase["durationInSeconds"] >= 0


def test_the_build_record_is_stable_across_calls(builds: Builds) -> None:
    builds.project(OK_SPEC)
    build = builds.wait(builds.start())
    again = builds.get(build["id"])
    assert again == build
    assert builds.cb.list_builds_for_project(projectName=builds.sb.names.codebuild_project)["ids"] == [build["id"]]


def test_a_failing_build_command_fails_the_phase_and_post_build_still_runs(builds: Builds) -> None:
    spec = OK_SPEC.replace('for i in 1 2 3; do echo "line $i"; done', "false | cat")
    builds.project(spec)
    build, log = builds.run()
    assert build["buildStatus"] == "FAILED"
    phases = dict(builds.phases(build))
    assert phases["BUILD"] == "FAILED" and phases["POST_BUILD"] == "SUCCEEDED"
    context = next(p for p in build["phases"] if p["phaseType"] == "BUILD")["contexts"][0]
    assert context == {
        "statusCode": "COMMAND_EXECUTION_ERROR",
        "message": "Error while executing command: false | cat. Reason: exit status 1",
    }
    assert "finally ran" in log
    assert "post succeeding=0" in log
    # "The UPLOAD_ARTIFACTS phase is always attempted, even if the BUILD phase fails" (Build phase transitions)
    assert phases["UPLOAD_ARTIFACTS"] == "SUCCEEDED"


def test_on_failure_continue_lets_the_next_phase_run(builds: Builds) -> None:
    # Buildspec reference: phases/<phase>/on-failure: ABORT | CONTINUE
    spec = (
        "version: 0.2\nphases:\n  pre_build:\n    on-failure: CONTINUE\n    commands:\n      - exit 4\n"
        "  build:\n    commands:\n      - echo build ran\n"
    )
    builds.project(spec)
    build, log = builds.run()
    phases = dict(builds.phases(build))
    assert phases["PRE_BUILD"] == "FAILED" and phases["BUILD"] == "SUCCEEDED"
    assert "build ran" in log


def test_a_failing_pre_build_skips_build_and_post_build(builds: Builds) -> None:
    builds.project(OK_SPEC.replace("aws sts get-caller-identity --query Arn --output text", "exit 3"))
    build, log = builds.run()
    assert build["buildStatus"] == "FAILED"
    types = [t for t, _ in builds.phases(build)]
    assert "BUILD" not in types and "POST_BUILD" not in types
    assert types[-2:] == ["FINALIZING", "COMPLETED"]
    assert any("Command did not exit successfully exit 3 exit status 3" in line for line in log)


def test_a_missing_permission_really_fails_the_build(builds: Builds) -> None:
    builds.sb.reset("missing-permissions")
    spec = "version: 0.2\nphases:\n  pre_build:\n    commands:\n      - aws s3 ls s3://$MODEL_BUCKET/\n"
    builds.project(spec, variables={"MODEL_BUCKET": builds.sb.names.bucket})
    build, log = builds.run()
    assert build["buildStatus"] == "FAILED"
    assert any("AccessDenied" in line and "ListObjectsV2" in line for line in log)
    pre_build = next(p for p in build["phases"] if p["phaseType"] == "PRE_BUILD")
    assert "aws s3 ls s3://$MODEL_BUCKET/" in pre_build["contexts"][0]["message"]


def test_the_wrong_model_uri_fails_the_download(builds: Builds) -> None:
    builds.sb.reset("wrong-model-uri")
    settings = builds.sb.suggested_settings()
    spec = _spec("pre_build", "aws s3 cp s3://${NEO_MODEL_S3_URI}/model.tar.gz model.tar.gz")
    builds.project(spec, variables=settings)
    build, log = builds.run()
    assert build["buildStatus"] == "FAILED"
    assert any("404" in line or "Not Found" in line for line in log), log


def test_without_privileged_mode_docker_cannot_reach_a_daemon(builds: Builds) -> None:
    builds.sb.reset("no-privileged-mode")
    privileged = builds.sb.project_defaults()["privilegedMode"]
    assert privileged is False
    spec = _spec("build", "echo before", "docker build -t x .", "echo never")
    builds.project(spec, privileged=privileged)
    build, log = builds.run()
    assert build["buildStatus"] == "FAILED"
    assert any(
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" in line
        for line in log
    ), log
    assert "before" in log and "never" not in log


def test_stop_build_kills_the_running_phase(builds: Builds) -> None:
    builds.project("version: 0.2\nphases:\n  build:\n    commands:\n      - echo sleeping\n      - sleep 120\n")
    build_id = builds.start()
    wait_for(lambda: builds.get(build_id)["currentPhase"] == "BUILD", "the build to enter BUILD")
    stopped = builds.cb.stop_build(id=build_id)["build"]
    assert stopped["buildStatus"] == "STOPPED"
    build = builds.wait(build_id)
    assert build["buildStatus"] == "STOPPED"
    assert dict(builds.phases(build))["BUILD"] == "STOPPED"


def test_update_project_and_start_overrides_reach_the_build(builds: Builds) -> None:
    spec = _spec("build", 'echo "tag=$IMAGE_TAG extra=$EXTRA priv=$NCF_SANDBOX_PRIVILEGED"')
    builds.project(spec, variables={"IMAGE_TAG": "one"})
    project = builds.cb.batch_get_projects(names=[builds.sb.names.codebuild_project])["projects"][0]
    env = dict(project["environment"])
    env["environmentVariables"] = [{"name": "IMAGE_TAG", "value": "two", "type": "PLAINTEXT"}]
    env["privilegedMode"] = False
    updated = builds.cb.update_project(name=builds.sb.names.codebuild_project, environment=env)["project"]
    assert updated["environment"]["privilegedMode"] is False
    _, log = builds.run(environmentVariablesOverride=[{"name": "EXTRA", "value": "x", "type": "PLAINTEXT"}])
    assert "tag=two extra=x priv=0" in log


def test_the_repository_buildspec_is_used_when_the_project_names_a_file(builds: Builds, tmp_path: Path) -> None:
    (tmp_path / "container").mkdir()
    (tmp_path / "container" / "hello.txt").write_text("from the source\n")
    (tmp_path / "buildspec.yml").write_text(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat container/hello.txt\n"
    )
    builds.sb.source_dir = tmp_path
    builds.project("buildspec.yml", source_type="GITHUB")
    build, log = builds.run()
    assert build["buildStatus"] == "SUCCEEDED"
    assert "from the source" in log
    (tmp_path / "buildspec.yml").unlink()
    build, log = builds.run()
    assert build["buildStatus"] == "FAILED"
    source = next(p for p in build["phases"] if p["phaseType"] == "DOWNLOAD_SOURCE")
    assert source["phaseStatus"] == "FAILED" and source["contexts"][0]["statusCode"] == "YAML_FILE_ERROR"


def test_unknown_projects_and_builds_are_aws_errors(builds: Builds) -> None:
    with pytest.raises(ClientError) as err:
        builds.cb.start_build(projectName="ghost")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    out = builds.cb.batch_get_builds(ids=["ghost:123"])
    assert out["builds"] == [] and out["buildsNotFound"] == ["ghost:123"]
    with pytest.raises(ClientError) as err:
        builds.cb.stop_build(id="ghost:123")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        builds.cb.update_project(name="ghost")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_role_that_cannot_write_logs_fails_in_provisioning(builds: Builds) -> None:
    deny = '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "logs:*", "Resource": "*"}]}'
    builds.sb.client("iam").put_role_policy(
        RoleName=builds.sb.names.codebuild_role_name, PolicyName="no-logs", PolicyDocument=deny
    )
    builds.project(_spec("build", "echo never"))
    build = builds.wait(builds.start())
    assert build["buildStatus"] == "FAILED"
    provisioning = next(p for p in build["phases"] if p["phaseType"] == "PROVISIONING")
    assert provisioning["phaseStatus"] == "FAILED"
    assert provisioning["contexts"][0]["statusCode"] == "ACCESS_DENIED"
    assert "CloudWatch Logs" in provisioning["contexts"][0]["message"]
    assert "BUILD" not in [t for t, _ in builds.phases(build)]
    # CodeBuild's wording, as public reports quote it (aws/aws-cdk#12179): the role, the build, IAM's message
    message = provisioning["contexts"][0]["message"]
    assert message.startswith(f"Service role {builds.sb.names.codebuild_role_arn} does not allow AWS CodeBuild")
    assert f"log streams for build {build['arn']}. Error message: " in message
    assert f"AWSCodeBuild-{build['id'].split(':', 1)[1]}" in message  # the session is named after the build
