"""From an empty account: the account step asks for everything first, creates what is missing, and
``--teardown`` takes exactly that down again. Against the sandbox over HTTP with real boto3 clients."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from ncf_tui.context import RunContext, sandbox_saved_dir
from ncf_tui.engine import account
from ncf_tui.engine.account import AccountError, teardown, teardown_plan
from ncf_tui.engine.pipeline import Pipeline, RunOptions, agree, refuse
from ncf_tui.engine.state import RunState, StateStore, new_run_id
from ncf_tui.engine.steps import REGISTRY
from ncf_tui.engine.steps.account import AccountResult, AccountStep, needs_of
from ncf_tui.engine.steps.base import StepContext
from ncf_tui.engine.steps.build import SOURCE_KEY
from ncf_tui.sandbox.server import Sandbox

from .aws_kit import Recorder, aws_for


def _listings(sb: Any) -> dict[str, list[str]]:
    """What a user sees of the account: buckets, roles, users, repositories (names)."""
    iam = sb.client("iam")
    return {
        "buckets": sorted(b["Name"] for b in sb.client("s3").list_buckets()["Buckets"]),
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "users": sorted(u["UserName"] for u in iam.list_users()["Users"]),
        "repositories": sorted(r["repositoryName"] for r in sb.client("ecr").describe_repositories()["repositories"]),
    }


def _context(sb: Any, tmp_path: Path, ask: Any, until: str = "verify") -> tuple[StepContext, RunOptions, StateStore]:
    from ncf_tui.engine.sample import sample_checkpoint_path

    options = RunOptions(
        checkpoint=sample_checkpoint_path(),
        output_dir=tmp_path / "out",
        until=until,
        mode="sandbox",
        env={},
        saved_dir=sandbox_saved_dir(sb),
        save_answers=False,
        source_root=sb.source_dir,
        ask=ask,
        settings_flags={},
    )
    run_id = new_run_id()
    store = StateStore(tmp_path / "state" / f"run-{run_id}.json")
    state = RunState(run_id=run_id, mode="sandbox", checkpoint=str(options.checkpoint), output_dir=str(tmp_path))
    ctx = StepContext(
        options=options,
        emit=Recorder(),
        state=state,
        save=lambda: store.save(state),
        aws=lambda: aws_for(sb),
        cancel=threading.Event(),
    )
    return ctx, options, store


def _context_without_aws(tmp_path: Path, until: str) -> tuple[StepContext, RunOptions, StateStore]:
    from ncf_tui.engine.errors import BadInputError
    from ncf_tui.engine.sample import sample_checkpoint_path

    def no_aws() -> Any:
        raise BadInputError("this step needs AWS, and no AWS target was given")

    options = RunOptions(checkpoint=sample_checkpoint_path(), until=until, env={}, settings_flags={})
    store = StateStore(tmp_path / "run.json")
    state = RunState(run_id="r", mode="aws", checkpoint=str(options.checkpoint))
    ctx = StepContext(options, Recorder(), state, lambda: store.save(state), no_aws, threading.Event())
    return ctx, options, store


def test_the_account_step_comes_first_in_the_registry() -> None:
    assert REGISTRY[0].name == "account"
    assert account.SOURCE_KEY == SOURCE_KEY


def test_preflight_names_every_missing_input_with_its_flag_before_any_work(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("empty-account")
    empty = _listings(sandbox)
    ctx, options, _store = _context(sandbox, tmp_path, refuse)
    with pytest.raises(AccountError) as info:
        AccountStep().run(ctx)
    err = info.value
    assert int(err.exit_code) == 3
    for name, flag in account.FLAG_OF.items():
        assert f"{name}: " in err.message and flag in err.message, name
    assert "4 input(s)" in err.message and err.hint and "--yes" in err.hint
    assert _listings(sandbox) == empty, "a refusal creates nothing"
    assert not options.output_dir.exists(), "nothing was traced or written"
    rec = cast(Recorder, ctx.emit)  # _context's emit
    assert not [e for e in rec.events if e.kind == "variant"]
    found = {e.setting: e.status for e in rec.of("resource")}
    assert found == dict.fromkeys(account.ORDER, account.CREATE)


def test_a_model_only_run_asks_aws_for_nothing(tmp_path: Path) -> None:
    ctx, options, _store = _context_without_aws(tmp_path, until="variants")
    result = AccountStep().run(ctx)
    assert result.inputs == [] and result.created == [] and options.settings_flags == {}


def test_a_model_only_result_does_not_stand_for_a_run_that_needs_the_account(sandbox: Sandbox, tmp_path: Path) -> None:
    """``--until variants``, then resumed through verify: the preflight runs (it was never asked)."""
    sandbox.reset("empty-account")
    ctx, _options, _store = _context_without_aws(tmp_path, until="variants")
    model_only = AccountStep().run(ctx)
    assert AccountStep().reusable(ctx, model_only)
    later, _later_options, _ = _context(sandbox, tmp_path / "later", refuse)
    assert not AccountStep().reusable(later, model_only)


def test_a_resumed_run_gets_the_names_back(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("empty-account")
    _ctx, options, _store, result = _run_account_step(sandbox, tmp_path)
    again, again_options, _ = _context(sandbox, tmp_path / "again", refuse)
    assert AccountStep().reusable(again, result)
    assert again_options.settings_flags["bucket"] == options.settings_flags["bucket"] == result.values["bucket"]
    sandbox.client("iam").delete_role_policy(
        RoleName=account.DEFAULT_SAGEMAKER_ROLE, PolicyName=account.SAGEMAKER_POLICY
    )
    sandbox.client("iam").delete_role(RoleName=account.DEFAULT_SAGEMAKER_ROLE)
    assert not AccountStep().reusable(again, result), "a resource that went: preflight again"


def test_preflight_says_present_for_what_exists(sandbox: Sandbox) -> None:
    from ncf_tui.engine.settings import resolve_settings

    flags = {k: v for k, v in sandbox.user_answers().items() if k in ("bucket", "sagemaker_role", "service_role")}
    settings = resolve_settings(flags=flags, env={}, saved_dir=Path("/nonexistent"), derived={})
    pre = account.preflight(aws_for(sandbox), settings, needs_of(["compile", "build", "verify"]))
    assert {i.name: i.status for i in pre.inputs} == dict.fromkeys(account.ORDER, account.PRESENT)
    assert pre.missing == [] and pre.rights == []


def test_a_hostile_value_is_refused_before_any_aws_call(tmp_path: Path) -> None:
    from ncf_tui.engine.settings import SettingsError

    ctx, options, _store = _context_without_aws(tmp_path, until="verify")
    options.settings_flags["bucket"] = "models;touch /tmp/x"
    calls: list[str] = []

    def aws_that_records() -> Any:
        calls.append("aws")
        raise AssertionError("no AWS call may be made")

    ctx.aws = aws_that_records
    with pytest.raises(SettingsError, match="bucket") as info:
        AccountStep().run(ctx)
    assert int(info.value.exit_code) == 3


def test_a_role_of_another_account_is_never_created(sandbox: Sandbox) -> None:
    from ncf_tui.engine.settings import resolve_settings

    sandbox.reset("empty-account")
    other = "arn:aws:iam::210987654321:role/their-neo-role"
    settings = resolve_settings(flags={"sagemaker_role": other}, env={}, saved_dir=Path("/nonexistent"), derived={})
    pre = account.preflight(aws_for(sandbox), settings, needs_of(["compile"]), check_rights=False)
    role = next(i for i in pre.inputs if i.name == "sagemaker_role")
    assert role.status == account.PRESENT and "not the caller's" in role.detail
    assert [i.name for i in pre.missing] == ["bucket"]


def test_the_caller_s_rights_are_simulated_and_explained_like_the_build_role_s(sandbox: Sandbox) -> None:
    from ncf_tui.engine.settings import resolve_settings

    sandbox.reset("empty-account")
    iam = sandbox.client("iam")
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:CreateRole", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="no-create-role", PolicyDocument=json.dumps(deny))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=sandbox.names.admin_user, PolicyArn=arn)
    rec = Recorder()
    settings = resolve_settings(flags={}, env={}, saved_dir=Path("/nonexistent"), derived={})
    pre = account.preflight(aws_for(sandbox), settings, needs_of(["compile", "build"]), emit=rec)
    decisions = {(p.action, p.resource): p.decision for p in rec.of("permission")}
    role = account.role_arn("aws", sandbox.names.account_id, account.DEFAULT_SAGEMAKER_ROLE)
    assert decisions[("iam:CreateRole", role)] == "explicitDeny"
    assert decisions[("iam:PassRole", role)] == "allowed"
    assert decisions[("s3:CreateBucket", f"arn:aws:s3:::{pre.values()['bucket']}")] == "allowed"
    with pytest.raises(AccountError, match=r"the caller arn:aws:iam::\d+:user/.* lacks 2 permission") as info:
        account.require_rights(pre)
    assert "iam:CreateRole on " + role + " (explicitDeny by no-create-role" in info.value.message
    assert info.value.hint and "explicit Deny" in info.value.hint


def _run_account_step(sb: Any, tmp_path: Path) -> tuple[StepContext, RunOptions, StateStore, AccountResult]:
    ctx, options, store = _context(sb, tmp_path, agree)
    result = AccountStep().run(ctx)
    ctx.state.steps["account"] = {"status": "done", **result.to_state()}
    store.save(ctx.state)
    return ctx, options, store, result


def test_creates_each_missing_resource_as_planned_tagged_and_recorded(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("empty-account")
    ctx, options, store, result = _run_account_step(sandbox, tmp_path)
    run_id = ctx.state.run_id
    values = result.values
    assert {c["setting"] for c in result.created} == set(account.ORDER)
    assert options.settings_flags["bucket"] == values["bucket"]  # later steps read them as flags
    s3, iam, ecr = sandbox.client("s3"), sandbox.client("iam"), sandbox.client("ecr")
    bucket = values["bucket"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == account.PUBLIC_ACCESS_BLOCK
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] in (None, "")  # us-east-1
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {"managed-by": "ncf-tui", account.RUN_TAG: run_id}
    for setting, service in (("sagemaker_role", "sagemaker"), ("service_role", "codebuild")):
        name = values[setting].rsplit("/", 1)[-1]
        role = iam.get_role(RoleName=name)["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert trust["Statement"][0]["Principal"] == {"Service": f"{service}.amazonaws.com"}
        assert {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}[account.RUN_TAG] == run_id
    sm_policy = iam.get_role_policy(RoleName=account.DEFAULT_SAGEMAKER_ROLE, PolicyName=account.SAGEMAKER_POLICY)
    resources = {r for s in sm_policy["PolicyDocument"]["Statement"] for r in s["Resource"]}
    assert f"arn:aws:s3:::{bucket}/ncf-tui/*" in resources and f"arn:aws:s3:::{bucket}/*" not in resources
    repo = ecr.describe_repositories(repositoryNames=[values["IMAGE_REPO_NAME"]])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    saved = json.loads(store.path.read_text("utf-8"))["steps"]["account"]
    assert [c["name"] for c in saved["created"]] == [c["name"] for c in result.created]
    assert AccountResult.from_state(saved) == result


def test_codebuild_role_gets_exactly_what_the_permissions_step_proposes(sandbox: Sandbox, tmp_path: Path) -> None:
    """The role's policy is least_privilege_policy over the permissions step's own pairs: simulating those
    pairs on the new role finds nothing to propose."""
    from ncf_tui.engine.iam import check_permissions, source_permissions
    from ncf_tui.engine.neo import neo_inference_image
    from ncf_tui.engine.settings import Settings

    sandbox.reset("empty-account")
    _ctx, _options, _store, result = _run_account_step(sandbox, tmp_path)
    inputs = [account.Input(**i) for i in result.inputs]
    pre = account.Preflight(result.account, result.caller_arn, result.region, result.prefix, inputs)
    built = account.build_settings(pre, Settings())
    # What the permissions step checks once Neo has compiled: one job's output under the prefix.
    later = built.with_value("NEO_MODEL_S3_URI", f"{built.bucket}/ncf-tui/compilation-output/job-1", "test")
    report = check_permissions(
        aws_for(sandbox),
        later,
        extra=source_permissions("aws", later.bucket, f"ncf-tui/{SOURCE_KEY}"),
        base_image=neo_inference_image(later.region),
    )
    assert report.role_arn == result.values["service_role"]
    assert report.denied == [] and report.proposed_policy is None


@pytest.mark.slow
def test_empty_account_to_the_image_and_back_to_empty(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("empty-account")
    empty = _listings(sandbox)
    ctx, options, store, result = _run_account_step(sandbox, tmp_path)
    created = {c["setting"]: c["name"] for c in result.created}
    made = [(e.resource, e.name) for e in cast(Recorder, ctx.emit).of("resource") if e.status == "created"]
    assert made == [(c["kind"], c["name"]) for c in result.created]

    rec = Recorder()
    pipeline = Pipeline(
        options,
        rec,
        store,
        ctx.state,
        aws=lambda: aws_for(sandbox),
        compile_config=RunContext(env={}, saved_dir=options.saved_dir, flags=options.settings_flags).compile_config,
    )
    outcome = pipeline.run("verify")
    assert outcome.image_uri and f"/{created['IMAGE_REPO_NAME']}:" in outcome.image_uri
    state = store.load()
    assert state is not None and state.steps["account"]["created"]
    report = state.steps["permissions"]["report"]
    assert report["attached"] is False and all(r["decision"] == "allowed" for r in report["results"]), (
        "the CodeBuild role was created with what the build needs: nothing left to attach"
    )

    aws = aws_for(sandbox)
    items = teardown_plan(aws, state.steps)
    assert all(i.ours for i in items) and len(items) == 4
    bucket_item = next(i for i in items if i.record.kind == "bucket")
    assert any(k.startswith(f"ncf-tui/{SOURCE_KEY}") for k in bucket_item.empty)
    assert any("/compilation-output/" in k for k in bucket_item.empty)
    repo_item = next(i for i in items if i.record.kind == "repository")
    assert repo_item.empty and repo_item.foreign == 0
    teardown(aws, items)
    assert _listings(sandbox) == empty


def test_teardown_refuses_what_ncf_tui_did_not_create(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("empty-account")
    ctx, _options, _store, result = _run_account_step(sandbox, tmp_path)
    s3 = sandbox.client("s3")
    bucket = result.values["bucket"]
    # The bucket is replaced by a same-named one without ncf-tui's tags, holding someone's data.
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="ncf-tui/source/ncf-tui-source.zip", Body=b"not ours")
    # A user's object in the repository ncf-tui made: the repository must stay.
    aws = aws_for(sandbox)
    items = teardown_plan(aws, ctx.state.steps)
    refused = next(i for i in items if i.record.kind == "bucket")
    assert not refused.ours and "ncf-tui did not create it" in refused.reason
    teardown(aws, items)
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_object(Bucket=bucket, Key="ncf-tui/source/ncf-tui-source.zip")["Body"].read() == b"not ours"
    roles = [r["RoleName"] for r in sandbox.client("iam").list_roles()["Roles"]]
    assert account.DEFAULT_SAGEMAKER_ROLE not in roles and account.DEFAULT_CODEBUILD_ROLE not in roles


def test_teardown_keeps_a_bucket_holding_objects_ncf_tui_did_not_write(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("empty-account")
    ctx, _options, _store, result = _run_account_step(sandbox, tmp_path)
    s3 = sandbox.client("s3")
    bucket = result.values["bucket"]
    s3.put_object(Bucket=bucket, Key="ncf-tui/source/ncf-tui-source.zip", Body=b"ours")
    s3.put_object(Bucket=bucket, Key="someone/else.csv", Body=b"theirs")
    aws = aws_for(sandbox)
    items = teardown(aws, teardown_plan(aws, ctx.state.steps))
    kept = next(i for i in items if i.record.kind == "bucket")
    assert kept.ours and not kept.deleted and kept.foreign == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["someone/else.csv"]


def _teardown_args(state: Path, sb: Any, **kw: Any) -> argparse.Namespace:
    base = {
        "state": state,
        "sandbox": False,
        "region": sb.region,
        "profile": None,
        "endpoint_url": sb.endpoint_url,
        "json": True,
        "yes": False,
    }
    return argparse.Namespace(**{**base, **kw})


def test_teardown_cli_lists_asks_and_deletes(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ncf_tui.engine.errors import BadInputError
    from ncf_tui.teardown_cli import run_teardown

    sandbox.reset("empty-account")
    empty = _listings(sandbox)
    _ctx, _options, store, _result = _run_account_step(sandbox, tmp_path)
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    with pytest.raises(BadInputError, match="--teardown deletes") as info:
        run_teardown(_teardown_args(store.path, sandbox), confirm=None)  # no terminal under pytest
    assert info.value.hint == "pass --yes to delete them"
    assert run_teardown(_teardown_args(store.path, sandbox), confirm=lambda _t: False) == 0
    assert _listings(sandbox) != empty
    assert run_teardown(_teardown_args(store.path, sandbox, yes=True)) == 0
    assert _listings(sandbox) == empty
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["kind"] == "teardown" and all(i["deleted"] for i in lines[-1]["items"])
    assert json.loads(store.path.read_text("utf-8"))["steps"]["account"]["torn_down"]
    with pytest.raises(BadInputError, match="embedded sandbox"):
        run_teardown(_teardown_args(store.path, sandbox, sandbox=True))
    other = tmp_path / "notes.json"
    other.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(BadInputError, match="not an ncf-tui run state"):
        run_teardown(_teardown_args(other, sandbox, yes=True))
    assert other.read_text("utf-8") == "[1, 2]", "a file that is not a run state is left as it was"


def test_outside_us_east_1_the_bucket_names_its_region(sandbox: Sandbox, tmp_path: Path) -> None:
    """S3 CreateBucket: outside us-east-1 the LocationConstraint names the region (without it the request is
    refused with IllegalLocationConstraintException); the repository is made in that region too."""
    from dataclasses import replace

    from ncf_tui.engine.aws import Aws
    from ncf_tui.engine.settings import resolve_settings

    sandbox.reset("empty-account")
    aws = Aws(replace(aws_for(sandbox).target, region="eu-west-1"))
    settings = resolve_settings(flags={}, env={}, saved_dir=tmp_path, derived={})
    pre = account.preflight(aws, settings, needs_of(["compile", "build", "verify"]))
    assert pre.values()["bucket"] == f"ncf-tui-{sandbox.names.account_id}-eu-west-1"
    account.require_rights(pre)
    resources = account.plan(pre, settings, "run-eu")
    bucket_plan = next(r for r in resources if r.kind == "bucket")
    assert bucket_plan.documents["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-1"}
    made = account.create(aws, resources, "run-eu")
    s3 = aws.client("s3")
    assert s3.get_bucket_location(Bucket=pre.values()["bucket"])["LocationConstraint"] == "eu-west-1"
    ecr = aws.client("ecr")
    assert ecr.describe_repositories(repositoryNames=[pre.values()["IMAGE_REPO_NAME"]])["repositories"]
    steps = {"account": {"run_id": "run-eu", "prefix": pre.prefix, "created": [vars(c) for c in made]}}
    items = teardown(aws, teardown_plan(aws, steps))
    assert all(i.ours and i.deleted for i in items)
    assert s3.list_buckets()["Buckets"] == [] and ecr.describe_repositories()["repositories"] == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--teardown", "--sandbox"], "cannot reach an embedded sandbox"),
        (["--teardown", "--state", "no-such-run.json"], "--state no-such-run.json: no such file"),
    ],
)
def test_teardown_bad_input_is_one_line_and_exit_2(tmp_path: Path, argv: list[str], says: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "NCF_TUI_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "ncf_tui.cli", *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
