"""The troubleshooting checklist against the sandbox over real HTTP, with builds of the real buildspec.yml.

One healthy run (variants traced, compiled by the sandbox's Neo worker, project created, a full build that
pushes the image) is shared by the first tests of this module. Every scenario test then resets the account
itself, makes its fault real with a real (failing) build, checks that the right check fails with the right
evidence and fix, applies the fix and sees the check pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.checklist import (
    CHECK_IDS,
    ChecklistContext,
    apply_fixes,
    build_context,
    latest_run,
    run_check,
    run_checklist,
)
from ncf_tui.engine.checks.base import update_project
from ncf_tui.engine.checks.build import classify, first_error_lines, output_lines
from ncf_tui.engine.codebuild import BuildFailed, ProjectSpec, SourceSpec, ensure_project, start_build
from ncf_tui.engine.events import CheckEvent, Event, discard
from ncf_tui.engine.neo import Candidate, CompileConfig, Job, NoVariantCompiled, compile_step
from ncf_tui.engine.pipeline import Pipeline, RunOptions
from ncf_tui.engine.sample import sample_checkpoint_path
from ncf_tui.engine.settings import resolve_settings
from ncf_tui.engine.state import RunState, StateStore
from ncf_tui.sandbox.server import Sandbox
from tests.waits import wait_for

from ..neo_kit import engine_sidecar
from ..sandbox.cb_kit import neo_base_image

# One worker runs the whole module, in order: the healthy run (a compile and a build, a minute on a busy
# machine) is made once, not once per xdist worker, before any test resets the sandbox it was made on.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("engine-checklist-healthy-run")]

NEO_JOB = "ncf-checklist-basic"


def aws_for(sb: Sandbox) -> Aws:
    return Aws(AwsTarget(region=sb.region, endpoint_url=sb.endpoint_url, credentials=sb.credentials))


def compile_config(sb: Sandbox) -> CompileConfig:
    d = sb.project_defaults()
    return CompileConfig(bucket=d["bucket"], prefix=d["prefix"], role_arn=d["sagemakerRoleArn"], poll_min=0.2)


def context(sb: Sandbox, tmp: Path, state: Path | None = None, **env: str) -> ChecklistContext:
    """The checklist's context as the CLI makes it: no saved config, the sandbox's defaults derived."""
    d = sb.project_defaults()
    loaded = StateStore(state).load() if state is not None else None
    derived = {**sb.suggested_settings(), "service_role": d["serviceRole"], "bucket": d["bucket"]}
    return build_context(
        aws_for(sb),
        state=loaded,
        state_path=state,
        env=env,
        saved_dir=tmp / "no-config",
        derived=derived,
        cli_args=("--sandbox",),
    )


def make_project(sb: Sandbox, model_uri: str, *, privileged: bool = True) -> None:
    variables = {**sb.suggested_settings(), "NEO_MODEL_S3_URI": model_uri, "NEO_BASE_IMAGE": neo_base_image(sb.region)}
    spec = ProjectSpec(
        name=sb.names.codebuild_project,
        service_role_arn=sb.names.codebuild_role_arn,
        source=SourceSpec("GITHUB", location="https://github.com/example/ncf-tui"),
        environment_variables=variables,
        privileged_mode=privileged,
    )
    ensure_project(aws_for(sb), spec, discard, lambda _changes: True)


def build(sb: Sandbox) -> bool:
    """Run the project's build to its end; True when it succeeded."""
    try:
        start_build(aws_for(sb), sb.names.codebuild_project, discard)
    except BuildFailed:
        return False
    return True


def neo_job(sb: Sandbox, archive: Path) -> str:
    """A COMPLETED Neo job of the sandbox's worker on ``archive``; returns its output (bucket/prefix)."""

    key = f"{sb.names.model_input_prefix}/{NEO_JOB}/model.tar.gz"
    sb.client("s3").put_object(Bucket=sb.names.bucket, Key=key, Body=archive.read_bytes())
    sm = sb.client("sagemaker")
    sm.create_compilation_job(
        CompilationJobName=NEO_JOB,
        RoleArn=sb.names.sagemaker_role_arn,
        InputConfig={"S3Uri": f"s3://{sb.names.bucket}/{key}", "DataInputConfig": '{"input0": [1, 2]}',
                     "Framework": "PYTORCH"},
        OutputConfig={"S3OutputLocation": f"s3://{sb.names.compilation_output(NEO_JOB)}", "TargetDevice": "ml_c5"},
        StoppingCondition={"MaxRuntimeInSeconds": 900},
    )  # fmt: skip
    wait_for(
        lambda: sm.describe_compilation_job(CompilationJobName=NEO_JOB)["CompilationJobStatus"] == "COMPLETED",
        "the Neo job to complete",
        every=0.1,
    )
    engine_sidecar(sb, NEO_JOB, "basic", archive)  # as the engine's compile step does once a job completes
    return sb.names.compilation_output(NEO_JOB)


def put_model(sb: Sandbox, uri: str, data: bytes, sidecar: bytes = b"{}") -> str:
    """Put a Neo archive at ``uri``/model-ml_c5.tar.gz (bucket/prefix) and a sidecar beside it: a compile
    output without waiting for Neo."""
    bucket, _, prefix = uri.partition("/")
    sb.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/model-ml_c5.tar.gz", Body=data)
    sb.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/ncf-model.json", Body=sidecar)
    return uri


@dataclass
class HealthyRun:
    state_path: Path
    state: RunState
    archives: dict[str, Path]
    model_uri: str
    compiled: bytes
    tmp: Path
    sidecar: bytes = b"{}"


@pytest.fixture(scope="module")
def healthy(sandbox_server: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HealthyRun]:
    """A completed run: variants, Neo compile, the project, and a build that pushed the image."""
    sb = sandbox_server
    sb.reset("healthy")
    tmp = tmp_path_factory.mktemp("checklist")
    aws = aws_for(sb)
    options = RunOptions(checkpoint=sample_checkpoint_path(), output_dir=tmp / "out", until="compile", mode="sandbox")
    pipeline = Pipeline.new(
        options, discard, state_dir=tmp / "state", aws=lambda: aws, compile_config=lambda _a: compile_config(sb)
    )
    outcome = pipeline.run("compile")
    assert outcome.neo_model_s3_uri and outcome.state_path is not None
    make_project(sb, outcome.neo_model_s3_uri)
    assert build(sb), "the healthy build failed"
    state = StateStore(outcome.state_path).load()
    assert state is not None
    archives = {c["name"]: Path(c["archive"]) for c in state.steps["variants"]["candidates"]}
    chosen = state.steps["compile"]["jobs"][state.steps["compile"]["chosen"]]
    bucket, _, key = chosen["artifact_uri"].removeprefix("s3://").partition("/")
    compiled = sb.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    side_bucket, _, side_key = chosen["sidecar_uri"].removeprefix("s3://").partition("/")
    sidecar = sb.client("s3").get_object(Bucket=side_bucket, Key=side_key)["Body"].read()
    yield HealthyRun(outcome.state_path, state, archives, outcome.neo_model_s3_uri, compiled, tmp, sidecar)


# ------------------------------------------------------------------------------------- the healthy run


def test_a_healthy_completed_run_passes_every_check(sandbox_server: Sandbox, healthy: HealthyRun) -> None:
    events: list[Event] = []
    report = run_checklist(context(sandbox_server, healthy.tmp, healthy.state_path), events.append)
    statuses = {r.id: r.status for r in report.results}
    # A run without --deploy has no endpoint to check (tests/test_deploy.py checks one that has).
    expected = {**dict.fromkeys(CHECK_IDS, "pass"), "endpoint": "skip"}
    assert statuses == expected, "\n".join(f"{r.id}: {r.evidence}" for r in report.results)
    assert report.exit_code == 0 and report.fixable == []
    checks = [e for e in events if isinstance(e, CheckEvent)]
    assert sorted(e.id for e in checks) == sorted(CHECK_IDS)  # one event per check
    assert [r.id for r in report.results] == list(CHECK_IDS)  # results in the report's order
    image = report.get("image").evidence
    assert "model/ copied into the image" in image and "matches" in image and healthy.model_uri in image
    assert "SUCCEEDED" in report.get("build").evidence
    compiled = report.get("neo-compile").evidence
    assert "full_manual_norm COMPLETED" in compiled and "chosen full_manual_norm" in compiled


def test_the_newest_run_state_of_a_mode_is_found(healthy: HealthyRun) -> None:
    found = latest_run("sandbox", healthy.state_path.parent)
    assert found is not None and found.path == healthy.state_path
    assert latest_run("aws", healthy.state_path.parent) is None


def test_credentials_of_another_account_fail_and_everything_else_is_skipped(
    sandbox_server: Sandbox, healthy: HealthyRun
) -> None:
    ctx = context(sandbox_server, healthy.tmp, AWS_ACCOUNT_ID="999999999999")
    report = run_checklist(ctx)
    cred = report.get("credentials")
    assert cred.status == "fail" and report.exit_code == 3
    assert "999999999999" in cred.evidence and sandbox_server.names.account_id in cred.evidence
    assert f"AWS_ACCOUNT_ID={sandbox_server.names.account_id}" in cred.fix
    others = [r for r in report.results if r.id != "credentials"]
    assert all(r.status == "skip" and "credentials check failed" in r.evidence for r in others)


def test_a_tag_moved_to_another_model_fails_the_image_check(sandbox_server: Sandbox, healthy: HealthyRun) -> None:
    """The pushed tag must hold the chosen artifact's model.pth: point NEO_MODEL_S3_URI elsewhere and it does not."""
    other = put_model(
        sandbox_server, f"{sandbox_server.names.bucket}/elsewhere", healthy.archives["basic"].read_bytes()
    )
    ctx = context(sandbox_server, healthy.tmp, healthy.state_path)
    update_project(ctx, variables={"NEO_MODEL_S3_URI": other})
    result = run_check(ctx.fresh(), "image")
    assert result.status == "fail", result.evidence
    assert "not the compiled model in the Neo archive" in result.evidence and "NEO_MODEL_S3_URI" in result.fix


# ------------------------------------------------------------------------------------------ scenarios


def test_wrong_model_uri_fails_neo_model_with_the_newest_compile_output_as_fix(
    sandbox: Sandbox, healthy: HealthyRun, tmp_path: Path
) -> None:
    sandbox.reset("wrong-model-uri")
    output = neo_job(sandbox, healthy.archives["basic"])
    wrong = sandbox.suggested_settings()["NEO_MODEL_S3_URI"]
    make_project(sandbox, wrong)
    assert not build(sandbox)
    ctx = context(sandbox, tmp_path)
    report = run_checklist(ctx)
    model = report.get("neo-model")
    assert model.status == "fail" and wrong in model.evidence and "no model archive found" in model.evidence
    # the folder of the job's S3ModelArtifacts: NEO_MODEL_S3_URI as the seed means it (bucket/prefix)
    assert f"NEO_MODEL_S3_URI={output} " in model.fix and NEO_JOB in model.fix and model.fixable
    failed_build = report.get("build")
    assert failed_build.status == "fail" and "PRE_BUILD" in failed_build.evidence
    assert "NCF-TUI: error model-not-found" in failed_build.evidence and failed_build.related == "neo-model"
    assert report.get("image").status == "skip"
    fixed, _ctx = apply_fixes(ctx, report, confirm=lambda r: r.id == "neo-model")
    assert [a.id for a in fixed.applied] == ["neo-model"] and fixed.applied[0].ok
    assert fixed.get("neo-model").status == "pass", fixed.get("neo-model").evidence
    assert fixed.get("build").status == "warn" and "fixed since" in fixed.get("build").evidence
    project = sandbox.client("codebuild").batch_get_projects(names=[sandbox.names.codebuild_project])["projects"][0]
    variables = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
    assert variables["NEO_MODEL_S3_URI"] == output


def test_missing_permissions_fail_the_role_check_and_the_build_names_the_action(
    sandbox: Sandbox, healthy: HealthyRun, tmp_path: Path
) -> None:
    sandbox.reset("missing-permissions")
    folder = f"{sandbox.names.bucket}/{sandbox.names.prefix}/compilation-output/x"
    output = put_model(sandbox, folder, healthy.compiled, healthy.sidecar)
    make_project(sandbox, output)
    assert not build(sandbox)
    ctx = context(sandbox, tmp_path)
    report = run_checklist(ctx)
    role = report.get("service-role")
    assert role.status == "fail" and role.fixable
    assert f"ecr:PutImage on {sandbox.names.ecr_repo_arn}: implicitDeny" in role.evidence
    assert f"s3:ListBucket on {sandbox.names.bucket_arn}: implicitDeny" in role.evidence
    assert '"ecr:PutImage"' in role.fix and "ncf-tui-build-permissions" in role.fix
    failed_build = report.get("build")
    assert failed_build.status == "fail" and failed_build.related == "service-role"
    assert "AccessDenied" in failed_build.evidence and "ListObjectsV2" in failed_build.evidence
    assert f"may not s3:ListBucket on {sandbox.names.bucket_arn}" in failed_build.evidence
    assert report.exit_code == 3
    fixed, _ctx = apply_fixes(ctx, report, confirm=True)
    assert [(a.id, a.ok) for a in fixed.applied] == [("build", True), ("service-role", True)]
    assert fixed.get("service-role").status == "pass", fixed.get("service-role").evidence
    assert fixed.get("build").status == "warn" and "allows s3:ListBucket" in fixed.get("build").evidence


def test_no_privileged_mode_fails_the_project_check_and_the_fix_makes_the_next_build_pass(
    sandbox: Sandbox, healthy: HealthyRun, tmp_path: Path
) -> None:
    sandbox.reset("no-privileged-mode")
    folder = f"{sandbox.names.bucket}/{sandbox.names.prefix}/compilation-output/x"
    output = put_model(sandbox, folder, healthy.compiled, healthy.sidecar)
    make_project(sandbox, output, privileged=sandbox.project_defaults()["privilegedMode"])
    assert not build(sandbox)
    ctx = context(sandbox, tmp_path)
    report = run_checklist(ctx)
    project = report.get("project")
    assert project.status == "fail" and "privileged mode is off" in project.evidence and project.fixable
    failed_build = report.get("build")
    assert failed_build.status == "fail" and failed_build.related == "project"
    assert "Cannot connect to the Docker daemon" in failed_build.evidence
    assert "privileged mode on" in failed_build.fix and failed_build.fixable
    fixed, _ctx = apply_fixes(ctx, report, confirm=lambda r: r.id == "build")  # the build's own fix key
    assert [(a.id, a.ok) for a in fixed.applied] == [("build", True)]
    assert fixed.get("project").status == "pass"
    assert fixed.get("build").status == "warn" and "privileged mode is on now" in fixed.get("build").evidence
    assert build(sandbox)  # the fix was the real cause: the next build pushes the image
    after = run_checklist(context(sandbox, tmp_path))
    assert after.exit_code == 0, "\n".join(f"{r.id} {r.status}: {r.evidence}" for r in after.results)
    assert {r.id for r in after.results if r.status != "pass"} == {"neo-compile", "endpoint"}  # no run state: skipped


def test_a_failed_neo_job_names_its_operators_the_variant_avoiding_them_and_the_command(
    sandbox: Sandbox, healthy: HealthyRun, tmp_path: Path
) -> None:
    cands = [
        Candidate(**{k: v for k, v in c.items() if k != "sha256"})
        for c in healthy.state.steps["variants"]["candidates"]
    ]
    original = [c for c in cands if c.name == "original"]
    assert original and not original[0].accepted
    cfg = compile_config(sandbox)
    cfg.force = frozenset({"original"})
    seen: dict[str, Job] = {}
    with pytest.raises(NoVariantCompiled):
        compile_step(aws_for(sandbox), original, cfg, "20261130-120000-cafe", discard, on_jobs=seen.update)
    from dataclasses import asdict

    state = RunState(run_id="20261130-120000-cafe", mode="sandbox", checkpoint=healthy.state.checkpoint)
    state.steps = {
        "variants": healthy.state.steps["variants"],
        "compile": {"status": "running", "jobs": {k: asdict(v) for k, v in seen.items()}},
    }
    path = tmp_path / "run-20261130-120000-cafe.json"
    StateStore(path).save(state)
    result = run_check(context(sandbox, tmp_path, path), "neo-compile")
    assert result.status == "fail"
    assert "original FAILED" in result.evidence and "aten::linalg_vector_norm" in result.evidence
    assert "full_manual_norm avoids aten::linalg_vector_norm" in result.fix
    assert f"ncf-tui --headless --sandbox --resume --state {path} --until compile" in result.fix


# Neo's real FailureReason: its own prefix, then TVM's traceback, the whole cut at 1,024 characters (botocore's
# sagemaker model: FailureReason max 1024). The prefix as public reports quote it (aws/amazon-sagemaker-examples#2784).
NEO_PREFIX = (
    "ClientError: InputConfiguration: TVM cannot convert the PyTorch model. Invalid model or input-shape mismatch. "
    "Make sure that inputs are lexically ordered and of the correct dimensionality."
)


def test_real_neo_failure_reasons_are_read_with_and_without_tvm_s_list() -> None:
    from ncf_tui.engine.checks.model import FAILURE_REASON_MAX, failure_operators

    tvm = "NotImplementedError: The following operators are not implemented: ['aten::linalg_vector_norm']"
    assert failure_operators(f"{NEO_PREFIX} Traceback (most recent call last):\\n ... {tvm}") == (
        ["aten::linalg_vector_norm"],
        False,
    )
    # the list cut by the cap: the names that survived whole are kept, the one cut in half is dropped
    many = "The following operators are not implemented: ['aten::linalg_vector_norm', 'aten::unique_dim', 'aten::"
    reason = (NEO_PREFIX + " " + "x" * 2000)[: FAILURE_REASON_MAX - len(many)] + many
    assert len(reason) == FAILURE_REASON_MAX
    assert failure_operators(reason) == (["aten::linalg_vector_norm", "aten::unique_dim"], True)
    assert failure_operators(NEO_PREFIX) == ([], False)


def test_a_neo_failure_with_only_neo_s_prefix_still_points_at_the_variant_that_passes_the_preflight(
    sandbox: Sandbox, healthy: HealthyRun, tmp_path: Path
) -> None:
    state = RunState(run_id="20261130-120000-beef", mode="sandbox", checkpoint=healthy.state.checkpoint)
    job = {"variant": "original", "status": "FAILED", "failure_reason": NEO_PREFIX, "job_name": ""}
    state.steps = {
        "variants": healthy.state.steps["variants"],
        "compile": {"status": "done", "jobs": {"original": job}},
    }
    path = tmp_path / "run-20261130-120000-beef.json"
    StateStore(path).save(state)
    result = run_check(context(sandbox, tmp_path, path), "neo-compile")
    assert result.status == "fail"
    assert "TVM cannot convert the PyTorch model" in result.evidence
    assert "full_manual_norm passes the same operator check" in result.fix
    assert "--until compile" in result.fix


# ------------------------------------------------------------------------------------------ log reading


def test_error_lines_come_from_output_never_from_the_echoed_script() -> None:
    messages = [
        '[Container] 2026/11/30 Running command set -e\necho "NCF-TUI: error model-not-found nothing"\nexit 1',
        "Looking for the model archive under s3://b/p/",
        "An error occurred (AccessDenied) when calling the ListObjectsV2 operation: Access Denied",
        "NCF-TUI: error model-not-found nothing found at s3://b/p/",
        "[Container] 2026/11/30 Phase complete: PRE_BUILD State: FAILED",
    ]
    lines = output_lines(messages)
    assert lines[0] == "Looking for the model archive under s3://b/p/" and len(lines) == 3
    errors = first_error_lines(lines)
    assert errors[0].startswith("An error occurred (AccessDenied)")
    s = resolve_settings(
        env={}, saved_dir=Path("/nonexistent"), derived={"NEO_MODEL_S3_URI": "b/p", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    cause = classify(errors, s)
    assert (cause.kind, cause.action, cause.resource, cause.related) == (
        "access-denied", "s3:ListBucket", "arn:aws:s3:::b", "service-role"
    )  # fmt: skip
    assert classify(["Cannot connect to the Docker daemon at unix:///var/run/docker.sock."], s).related == "project"
    assert classify(["COPY failed: file not found in build context: serve.py"], s).related == "image"
    buildkit = 'ERROR: failed to compute cache key: failed to calculate checksum of ref: "serve.py": not found'
    assert classify([buildkit], s).kind == "copy-failed"
    assert classify(["fatal: something unknown"], s).kind == "unknown"
    # `aws s3 cp` HEADs first, and S3 answers a HEAD with a bare 403 (the CLI's exact wording)
    head = classify(["fatal error: An error occurred (403) when calling the HeadObject operation: Forbidden"], s)
    assert (head.kind, head.action, head.resource, head.related) == (
        "access-denied", "s3:GetObject", "arn:aws:s3:::b/p/*", "service-role"
    )  # fmt: skip
    assert "s3:ListBucket" in head.note  # S3 also answers 403 for a missing key without ListBucket


def test_an_unknown_check_id_is_refused(sandbox_server: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown check"):
        run_checklist(context(sandbox_server, tmp_path), only=["nope"])


def test_neo_model_warns_on_an_s3_prefix_and_fails_on_a_missing_bucket(sandbox: Sandbox, tmp_path: Path) -> None:
    """Without a project, NEO_MODEL_S3_URI comes from the user's settings (here the environment)."""
    uri = put_model(sandbox, f"{sandbox.names.bucket}/models/ok", b"not even an archive: only existence counts here")
    prefixed = run_check(context(sandbox, tmp_path, NEO_MODEL_S3_URI=f"s3://{uri}"), "neo-model")
    assert prefixed.status == "warn" and "starts with s3://" in prefixed.evidence
    assert f"model archive found at s3://{uri}/model-ml_c5.tar.gz" in prefixed.evidence
    missing = run_check(context(sandbox, tmp_path, NEO_MODEL_S3_URI="no-such-bucket-here/x"), "neo-model")
    assert missing.status == "fail" and "bucket 'no-such-bucket-here' does not exist" in missing.evidence
    assert "no COMPLETED Neo compilation job" in missing.fix and "--until compile" in missing.fix
    assert missing.apply is None  # nothing to point the project at


def test_the_checklist_handle_fixes_one_check_and_reruns_it(sandbox: Sandbox, tmp_path: Path) -> None:
    """What the TUI's key per check does: run all, fix one (a deleted ECR repository), see it pass."""
    from ncf_tui.engine.checklist import Checklist

    sandbox.client("ecr").delete_repository(repositoryName=sandbox.names.ecr_repo, force=True)
    handle = Checklist(context(sandbox, tmp_path))
    events: list[Event] = []
    report = handle.run(events.append)
    repo = report.get("ecr-repository")
    assert repo.status == "fail" and "does not exist" in repo.evidence and repo.fixable
    assert handle.fix("credentials") is None  # passing: nothing to apply
    applied = handle.fix("ecr-repository", events.append)
    assert applied is not None and applied.ok and sandbox.names.ecr_repo in applied.message
    result = handle.result("ecr-repository")
    assert result is not None and result.status == "pass"
    assert [e.status for e in events if isinstance(e, CheckEvent) and e.id == "ecr-repository"] == ["fail", "pass"]
    assert handle.rerun("ecr-repository").status == "pass"
    sandbox.client("ecr").describe_repositories(repositoryNames=[sandbox.names.ecr_repo])  # really there


def test_a_missing_service_role_fails_the_role_check(sandbox: Sandbox, tmp_path: Path) -> None:
    role = f"arn:aws:iam::{sandbox.names.account_id}:role/service-role/nobody-made-this-role"
    result = run_check(context(sandbox, tmp_path, NCF_TUI_SERVICE_ROLE=role), "service-role")
    assert result.status == "fail" and role in result.evidence and "does not exist" in result.evidence
    assert result.apply is None
