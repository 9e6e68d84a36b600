"""Settings: sources in order, every validation rule with good and bad values, fixes, TOML, over real HTTP."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.engine.artifact import sidecar_key
from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.errors import BadInputError, ExitCode
from ncf_tui.engine.events import Event, SettingEvent
from ncf_tui.engine.settings import (
    DEFAULT_BUILD_IMAGE,
    NAMES,
    SEED_BUILD_IMAGE,
    SettingIssue,
    Settings,
    SettingsError,
    check_value,
    config_dir,
    load,
    resolve_settings,
    save,
    settings_step,
)
from ncf_tui.sandbox.server import Sandbox

from .aws_kit import aws_for

sandbox_aws = aws_for


def sandbox_flags(sb: Sandbox, **overrides: str | None) -> dict[str, str | None]:
    flags: dict[str, str | None] = {
        **sb.suggested_settings(),
        "service_role": sb.names.codebuild_role_arn,
        "sagemaker_role": sb.names.sagemaker_role_arn,
    }
    flags.update(overrides)
    return flags


def put_model(sb: Sandbox, key: str | None = None, *, sidecar: bool = True) -> str:
    """Upload bytes where Neo would put its archive for the suggested NEO_MODEL_S3_URI (or at ``key``), and
    ncf-tui's sidecar beside it; returns the archive's key."""
    if key is None:
        uri = sb.suggested_settings()["NEO_MODEL_S3_URI"]
        key = uri.split("/", 1)[1] + "/model-ml_c5.tar.gz"
    s3 = sb.internal_client("s3")
    s3.put_object(Bucket=sb.names.bucket, Key=key, Body=b"not really a tarball")
    if sidecar:
        s3.put_object(Bucket=sb.names.bucket, Key=sidecar_key(key), Body=b"{}")
    return key


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def settings(self) -> dict[str, SettingEvent]:
        return {e.name: e for e in self.events if isinstance(e, SettingEvent)}


def run_step(sb: Sandbox, tmp_path: Path, rec: Recorder | None = None, aws: Aws | None = None, **kw: Any) -> Settings:
    flags = kw.pop("flags", None) or sandbox_flags(sb)
    return settings_step(
        aws or sandbox_aws(sb),
        rec or Recorder(),
        flags=flags,
        env={},
        saved_dir=tmp_path / "cfg",
        **kw,
    )


# ------------------------------------------------------------------------------------------- the happy path


def test_healthy_account_validates_every_value_with_one_event_each(sandbox: Sandbox, tmp_path: Path) -> None:
    key = put_model(sandbox)
    rec = Recorder()
    s = run_step(sandbox, tmp_path, rec)
    events = [e for e in rec.events if isinstance(e, SettingEvent)]
    assert [e.name for e in events] == list(NAMES)
    assert all(e.ok for e in events), [e for e in events if not e.ok]
    assert s.model_key == key
    assert s.source("AWS_DEFAULT_REGION") == "flag"
    assert s.source("bucket") == "derived:NEO_MODEL_S3_URI" and s.bucket == sandbox.names.bucket
    assert s.prefix == sandbox.names.prefix
    assert s.source("target_device") == "default" and s.target_device == "ml_c5"
    assert s.image_uri == sandbox.names.image_uri
    assert s.repository_arn == sandbox.names.ecr_repo_arn
    assert s.log_group_arn == sandbox.names.codebuild_log_group.join(
        ["arn:aws:logs:us-east-1:123456789012:log-group:", ""]
    )
    assert s.codebuild_environment() == sandbox.suggested_settings()
    by = rec.settings()
    assert "model archive found at" in by["NEO_MODEL_S3_URI"].message
    assert "exists" in by["IMAGE_REPO_NAME"].message


def test_account_and_region_are_derived_when_not_given(sandbox: Sandbox, tmp_path: Path) -> None:
    put_model(sandbox)
    flags = sandbox_flags(sandbox, AWS_ACCOUNT_ID=None, AWS_DEFAULT_REGION=None)
    s = run_step(sandbox, tmp_path, flags=flags)
    assert s.account_id == sandbox.names.account_id and s.source("AWS_ACCOUNT_ID") == "derived:sts"
    assert s.region == sandbox.region and s.source("AWS_DEFAULT_REGION") == "derived:aws"


def test_compile_output_derived_from_the_run_is_used_when_nothing_else_names_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    key = put_model(sandbox, f"{sandbox.names.prefix}/compilation-output/run7-full/model.tar.gz")
    flags = sandbox_flags(sandbox, NEO_MODEL_S3_URI=None)
    uri = f"{sandbox.names.bucket}/{key.rsplit('/', 1)[0]}"
    s = run_step(sandbox, tmp_path, flags=flags, derived={"NEO_MODEL_S3_URI": uri})
    assert s.neo_model_s3_uri == uri and s.source("NEO_MODEL_S3_URI") == "derived"
    assert s.model_key == key


# ------------------------------------------------------------------------------------------- sources


def test_sources_in_order_flags_env_config_saved_derived_default(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('IMAGE_TAG = "from-config"\nproject_name = "cfg-project"\n')
    saved_dir = tmp_path / "saved"
    saved_dir.mkdir()
    (saved_dir / "config.toml").write_text('IMAGE_TAG = "from-saved"\nbucket = "saved-bucket"\n')
    layers = {
        "flags": {"image-tag": "from-flag"},
        "env": {"IMAGE_TAG": "from-env", "NCF_TUI_PROJECT_NAME": "env-project"},
        "config": cfg,
        "saved_dir": saved_dir,
        "derived": {"IMAGE_TAG": "from-derived"},
    }
    expected = [
        ("from-flag", "flag"),
        ("from-env", "env:IMAGE_TAG"),
        ("from-config", f"config:{cfg}"),
        ("from-saved", f"saved:{saved_dir / 'config.toml'}"),
        ("from-derived", "derived"),
        ("latest", "default"),
    ]
    for i, (value, source) in enumerate(expected):
        kw: dict[str, Any] = dict(list(layers.items())[i:])
        kw.setdefault("env", {})
        kw.setdefault("saved_dir", tmp_path / "empty")
        s = resolve_settings(**kw)
        assert (s.image_tag, s.source("IMAGE_TAG")) == (value, source), i
    s = resolve_settings(env={"NCF_TUI_PROJECT_NAME": "env-project"}, config=cfg, saved_dir=saved_dir)
    assert (s.project_name, s.source("project_name")) == ("env-project", "env:NCF_TUI_PROJECT_NAME")
    assert (s.bucket, s.source("bucket")) == ("saved-bucket", f"saved:{saved_dir / 'config.toml'}")


def test_saved_config_dir_comes_from_the_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('IMAGE_REPO_NAME = "from-saved-dir"\n')
    env = {"NCF_TUI_CONFIG_DIR": str(tmp_path)}
    assert config_dir(env) == tmp_path
    assert resolve_settings(env=env).image_repo_name == "from-saved-dir"
    assert config_dir({}).name == "ncf-tui"  # platformdirs' user config dir, never created by this test


def test_empty_flags_and_env_values_do_not_hide_lower_sources(tmp_path: Path) -> None:
    s = resolve_settings(flags={"IMAGE_TAG": None, "image_repo_name": ""}, env={"IMAGE_TAG": ""}, saved_dir=tmp_path)
    assert (s.image_tag, s.image_repo_name) == ("latest", "ncf-recommender")


def test_unknown_flag_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown setting 'colour'") as err:
        resolve_settings(flags={"colour": "red"}, env={}, saved_dir=tmp_path)
    assert err.value.exit_code == ExitCode.BAD_INPUT


# ------------------------------------------------------------------------------------------- TOML


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('IMAGE_TAG = "v1"\nIMAGE_REPO_NAME = \n', r"line 2, column"),
        ('IMAGE_TAG = "v1\n', r"line 1, column"),
        ('IMAGE_TAGG = "v1"\n', r"unknown setting 'IMAGE_TAGG'"),
        ("AWS_ACCOUNT_ID = 123456789012\n", r"AWS_ACCOUNT_ID must be a string in quotes"),
    ],
)
def test_bad_toml_is_bad_input_with_where(tmp_path: Path, text: str, match: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(BadInputError, match=match) as err:
        resolve_settings(config=cfg, env={}, saved_dir=tmp_path / "none")
    assert err.value.exit_code == 2
    assert str(cfg) in err.value.message


def test_missing_config_file_and_non_utf8_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'IMAGE_TAG = "caf\xe9"\n')
    with pytest.raises(BadInputError):
        load(bad)


def test_settings_table_is_accepted(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[settings]\nimage-tag = "v2"\n')
    assert load(cfg) == {"IMAGE_TAG": "v2"}


def test_save_load_round_trip_is_atomic_and_keeps_only_answers(tmp_path: Path) -> None:
    s = resolve_settings(
        flags={"IMAGE_TAG": 'we"ird\\tag', "service_role": "arn:aws:iam::123456789012:role/r"},
        env={"AWS_DEFAULT_REGION": "eu-west-1"},
        saved_dir=tmp_path / "none",
        derived={"NEO_MODEL_S3_URI": "b/k"},
    )
    path = save(s, tmp_path / "deep" / "config.toml")
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]  # no temp file left behind
    assert load(path) == {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "IMAGE_TAG": 'we"ird\\tag',
        "service_role": "arn:aws:iam::123456789012:role/r",
    }
    everything = load(save(s, tmp_path / "all.toml", answers_only=False))
    assert everything["NEO_MODEL_S3_URI"] == "b/k" and everything["target_device"] == "ml_c5"
    text = path.read_text()
    assert "aws_secret_access_key" not in text.lower() and "credentials" in text  # only the header mentions them
    again = resolve_settings(env={}, saved_dir=path.parent)
    assert again.image_tag == 'we"ird\\tag' and again.source("IMAGE_TAG").startswith("saved:")


def test_save_overwrites_and_refuses_an_access_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save(resolve_settings(flags={"IMAGE_TAG": "one"}, env={}, saved_dir=tmp_path / "x"), path)
    save(resolve_settings(flags={"IMAGE_TAG": "two"}, env={}, saved_dir=tmp_path / "x"), path)
    assert tomllib.loads(path.read_text()) == {"IMAGE_TAG": "two"}
    leaky = resolve_settings(flags={"IMAGE_TAG": "AKIAABCDEFGHIJKLMNOP"}, env={}, saved_dir=tmp_path / "x")
    with pytest.raises(BadInputError, match="access key"):
        save(leaky, path)
    assert tomllib.loads(path.read_text()) == {"IMAGE_TAG": "two"}


def test_settings_hold_nothing_secret() -> None:
    fields = {f.lower() for f in Settings.__dataclass_fields__}
    assert not any(w in f for f in fields for w in ("secret", "password", "token", "credential", "access_key"))


# ------------------------------------------------------------------------------------------- local rules

GOOD = [
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "eu-central-1"),
    ("AWS_DEFAULT_REGION", "cn-north-1"),
    ("AWS_ACCOUNT_ID", "012345678901"),
    ("IMAGE_REPO_NAME", "ncf-recommender"),
    ("IMAGE_REPO_NAME", "team/ml.models/ncf_v2"),
    ("IMAGE_REPO_NAME", "ab"),
    ("IMAGE_REPO_NAME", "a" * 256),
    ("IMAGE_TAG", "latest"),
    ("IMAGE_TAG", "v1.2.3-rc_1"),
    ("IMAGE_TAG", "_private"),
    ("IMAGE_TAG", "T" * 128),
    ("NEO_MODEL_S3_URI", "mingyu110/recommender-demo/compilation-output/job-name"),
    ("NEO_MODEL_S3_URI", "my.bucket-1/out/model.tar.gz"),
    ("project_name", "ncf-recommender-build"),
    ("project_name", "Build_2"),
    ("service_role", "arn:aws:iam::123456789012:role/service-role/ncf-codebuild-service-role"),
    ("service_role", "arn:aws-cn:iam::123456789012:role/a+b=c,d.e@f-g_h"),
    ("bucket", "abc"),
    ("bucket", "my.model-bucket-2"),
    ("prefix", "recommender-demo/models"),
    ("target_device", "ml_c5"),
    ("target_device", "ml_inf2"),
    ("sagemaker_role", ""),
    ("build_image", DEFAULT_BUILD_IMAGE),
    ("build_image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/builder@sha256:abc"),
]


@pytest.mark.parametrize(("name", "value"), GOOD)
def test_good_values_pass(name: str, value: str) -> None:
    c = check_value(name, value)
    assert c.ok, c.reason
    assert c.value == value


BAD = [
    ("AWS_DEFAULT_REGION", "mars-north-1", "not an AWS region"),
    ("AWS_DEFAULT_REGION", "US-EAST-1", "not an AWS region"),
    ("AWS_ACCOUNT_ID", "12345", "exactly 12 digits"),
    ("AWS_ACCOUNT_ID", "12345678901a", "exactly 12 digits"),
    ("AWS_ACCOUNT_ID", "", "missing"),
    ("IMAGE_REPO_NAME", "a", "2 to 256"),
    ("IMAGE_REPO_NAME", "a" * 257, "2 to 256"),
    ("IMAGE_REPO_NAME", "a" * 400, "refused: is 400 characters long"),
    ("IMAGE_REPO_NAME", "-ncf", "2 to 256"),
    ("IMAGE_REPO_NAME", "ncf..rec", "2 to 256"),
    ("IMAGE_REPO_NAME", "ncf/", "2 to 256"),
    ("IMAGE_TAG", ".hidden", "1 to 128"),
    ("IMAGE_TAG", "-x", "1 to 128"),
    ("IMAGE_TAG", "a:b", "1 to 128"),
    ("IMAGE_TAG", "T" * 129, "1 to 128"),
    ("NEO_MODEL_S3_URI", "bucket-only", "needs a key"),
    ("NEO_MODEL_S3_URI", "Bad_Bucket/key", "bucket 'Bad_Bucket'"),
    ("NEO_MODEL_S3_URI", "bucket/a//b", "empty"),
    ("NEO_MODEL_S3_URI", "bucket/../etc", "'..'"),
    ("NEO_MODEL_S3_URI", "bucket/a,b", "letters, digits"),
    ("project_name", "x", "2 to 150"),
    ("project_name", "_lead", "2 to 150"),
    ("service_role", "ncf-codebuild-service-role", "role ARN"),
    ("service_role", "arn:aws:iam::12345:role/x", "role ARN"),
    ("service_role", "arn:aws:iam::123456789012:user/x", "role ARN"),
    ("bucket", "ab", "3 to 63"),
    ("bucket", "Upper", "lowercase"),
    ("bucket", "192.168.1.10", "IP address"),
    ("bucket", "my..bucket", "'..'"),
    ("bucket", "xn--bucket", "'xn--'"),
    ("bucket", "bucket-s3alias", "'-s3alias'"),
    ("bucket", "bucket-", "starts and ends"),
    ("target_device", "gpu_please", "not a SageMaker Neo target device"),
    ("build_image", "-image", "letters, digits"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD)
def test_bad_values_are_refused_with_a_reason(name: str, value: str, reason: str) -> None:
    c = check_value(name, value)
    assert not c.ok
    assert reason in c.reason


def test_normalisations_are_applied_and_said() -> None:
    c = check_value("NEO_MODEL_S3_URI", "s3://mingyu110/recommender-demo/compilation-output/job/")
    assert c.ok and c.value == "mingyu110/recommender-demo/compilation-output/job"
    assert any("s3:// prefix was removed" in n for n in c.notes)
    assert any("trailing '/'" in n for n in c.notes)
    p = check_value("prefix", " /a/b/ ")
    assert p.ok and p.value == "a/b" and len(p.notes) == 2


def test_suggestions_and_safe_fixes() -> None:
    region = check_value("AWS_DEFAULT_REGION", "us-east1")
    assert not region.ok and region.suggestion == "did you mean 'us-east-1'?" and region.fix is None
    device = check_value("target_device", "ml_c55")
    assert device.suggestion == "did you mean 'ml_c5'?"
    repo = check_value("IMAGE_REPO_NAME", "NCF-Recommender")
    assert not repo.ok and repo.fix is not None and repo.fix.apply() == "ncf-recommender"
    image = check_value("build_image", SEED_BUILD_IMAGE)
    assert image.ok and "deprecated" in image.warning
    assert image.fix is not None and image.fix.apply() == DEFAULT_BUILD_IMAGE


INJECTIONS = [
    ("IMAGE_TAG", "latest; rm -rf /", "';'"),
    ("IMAGE_TAG", "$(id)", "'$'"),
    ("IMAGE_TAG", "`id`", "'`'"),
    ("IMAGE_TAG", "v1 && curl evil", "whitespace"),
    ("IMAGE_REPO_NAME", "ncf|sh", "'|'"),
    ("NEO_MODEL_S3_URI", "bucket/key\nrm -rf /", "U+000A"),
    ("NEO_MODEL_S3_URI", "bucket/key\r", "U+000D"),
    ("AWS_ACCOUNT_ID", "1234567890\x0012", "U+0000"),
    ("IMAGE_TAG", "lat\u200best", "U+200B (ZERO WIDTH SPACE)"),
    ("IMAGE_TAG", "v1\u202egpj", "U+202E"),
    ("IMAGE_REPO_NAME", "ncf-r\u0435commender", "look-alike of 'e'"),
    ("AWS_DEFAULT_REGION", "us\u2010east-1", "look-alike of '-'"),
    ("IMAGE_TAG", "ｌatest", "look-alike of 'l'"),
    ("service_role", "arn:aws:iam::123456789012:role/x" + "y" * 5000, "characters long"),
]


@pytest.mark.parametrize(("name", "value", "says"), INJECTIONS)
def test_injection_attempts_are_refused_clearly(name: str, value: str, says: str) -> None:
    c = check_value(name, value)
    assert not c.ok and c.unsafe
    assert c.reason.startswith("refused:")
    assert says in c.reason


def test_injection_is_refused_before_any_aws_call(tmp_path: Path) -> None:
    # Nothing listens on this endpoint: any AWS call would end in a connection error, not a SettingsError.
    aws = Aws(AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:9", credentials={
        "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "x" * 40}))  # fmt: skip
    rec = Recorder()
    flags = {
        "IMAGE_TAG": "latest; rm -rf /",
        "AWS_ACCOUNT_ID": "123456789012",
        "service_role": "nope",
        "NEO_MODEL_S3_URI": "b/k\n\x1b[2Jrm -rf /" + "x" * 2000,
    }
    with pytest.raises(SettingsError) as err:
        settings_step(aws, rec, flags=flags, env={}, saved_dir=tmp_path)
    assert err.value.exit_code == ExitCode.PREFLIGHT_FAILED
    failing = {i.name for i in err.value.issues}
    assert {"IMAGE_TAG", "service_role", "NEO_MODEL_S3_URI"} <= failing
    assert "shell metacharacter" in err.value.message
    assert rec.settings()["IMAGE_TAG"].ok is False
    region = rec.settings()["AWS_DEFAULT_REGION"]
    assert region.ok and "not checked against AWS: IMAGE_TAG, NEO_MODEL_S3_URI were refused first" in region.message
    shown = rec.settings()["NEO_MODEL_S3_URI"].value  # escaped and cut short, safe to print
    assert shown.startswith("b/k\\n\\x1b[2Jrm -rf /") and shown.endswith("...") and len(shown) < 100


# ------------------------------------------------------------------------------------------- account checks


def test_wrong_account_is_refused_and_fixed_to_the_callers(sandbox: Sandbox, tmp_path: Path) -> None:
    put_model(sandbox)
    flags = sandbox_flags(sandbox, AWS_ACCOUNT_ID="999999999999")
    with pytest.raises(SettingsError) as err:
        run_step(sandbox, tmp_path, flags=flags)
    (issue,) = err.value.issues
    assert issue.name == "AWS_ACCOUNT_ID" and "belong to account 123456789012" in issue.reason
    assert issue.fix is not None
    rec = Recorder()
    s = run_step(sandbox, tmp_path, rec, flags=flags, fix=True)
    assert s.account_id == "123456789012" and s.source("AWS_ACCOUNT_ID") == "fix"
    assert "fixed: use the caller's account" in rec.settings()["AWS_ACCOUNT_ID"].message


def test_missing_repository_is_created_only_when_the_user_agrees(sandbox: Sandbox, tmp_path: Path) -> None:
    put_model(sandbox)
    flags = sandbox_flags(sandbox, IMAGE_REPO_NAME="team/new-repo")
    asked: list[SettingIssue] = []

    def no(issue: SettingIssue) -> bool:
        asked.append(issue)
        return False

    with pytest.raises(SettingsError, match="'team/new-repo' does not exist"):
        run_step(sandbox, tmp_path, flags=flags, fix=no)
    assert [i.name for i in asked] == ["IMAGE_REPO_NAME"]
    ecr = sandbox.internal_client("ecr")
    assert "team/new-repo" not in {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}

    rec = Recorder()
    s = run_step(sandbox, tmp_path, rec, flags=flags, fix=lambda issue: issue.name == "IMAGE_REPO_NAME")
    assert s.image_repo_name == "team/new-repo"
    assert ecr.describe_repositories(repositoryNames=["team/new-repo"])["repositories"]
    msg = rec.settings()["IMAGE_REPO_NAME"].message
    assert "fixed: create ECR repository team/new-repo" in msg and "exists" in msg


def test_uppercase_repository_is_lowercased_by_the_fix(sandbox: Sandbox, tmp_path: Path) -> None:
    put_model(sandbox)
    s = run_step(sandbox, tmp_path, flags=sandbox_flags(sandbox, IMAGE_REPO_NAME="NCF-Recommender"), fix=True)
    assert s.image_repo_name == "ncf-recommender" and s.source("IMAGE_REPO_NAME") == "fix"


def test_roles_must_exist_in_the_callers_account(sandbox: Sandbox, tmp_path: Path) -> None:
    put_model(sandbox)
    flags = sandbox_flags(
        sandbox,
        service_role="arn:aws:iam::123456789012:role/service-role/no-such-role",
        sagemaker_role="arn:aws:iam::210987654321:role/elsewhere",
    )
    with pytest.raises(SettingsError) as err:
        run_step(sandbox, tmp_path, flags=flags)
    reasons = {i.name: i.reason for i in err.value.issues}
    assert reasons == {
        "service_role": "no role named 'no-such-role' in account 123456789012",
        "sagemaker_role": "the role is in account 210987654321, the caller in 123456789012",
    }


# ------------------------------------------------------------------------------------------- S3 checks


def test_bucket_must_exist(sandbox: Sandbox, tmp_path: Path) -> None:
    flags = sandbox_flags(sandbox, NEO_MODEL_S3_URI="no-such-bucket-here/x/y")
    with pytest.raises(SettingsError) as err:
        run_step(sandbox, tmp_path, flags=flags)
    assert {i.name: i.reason for i in err.value.issues} == {
        "NEO_MODEL_S3_URI": "bucket 'no-such-bucket-here' does not exist",
        "bucket": "bucket 'no-such-bucket-here' does not exist",
    }


def test_bucket_in_another_region_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.internal_client("s3").create_bucket(
        Bucket="ncf-eu-models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    put_model(sandbox)
    flags = sandbox_flags(sandbox, bucket="ncf-eu-models")
    with pytest.raises(SettingsError) as err:
        run_step(sandbox, tmp_path, flags=flags)
    (issue,) = err.value.issues
    assert issue.name == "bucket"
    assert "'ncf-eu-models' is in eu-west-1, not in us-east-1" in issue.reason


def test_wrong_model_uri_says_which_keys_were_tried(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset("wrong-model-uri")
    put_model(sandbox, f"{sandbox.names.prefix}/compilation-output/ncf-full-manual-norm/model.tar.gz")
    rec = Recorder()
    with pytest.raises(SettingsError) as err:
        run_step(sandbox, tmp_path, rec, flags=sandbox_flags(sandbox))
    (issue,) = err.value.issues
    base = f"s3://{sandbox.names.bucket}/{sandbox.names.prefix}/compilation-output/ncf-job-that-never-ran"
    assert issue.name == "NEO_MODEL_S3_URI"
    assert f"no model archive found under {base}/ (no .tar.gz under the prefix)" in issue.reason
    assert f"{sandbox.names.bucket}/{sandbox.names.prefix}/compilation-output/ncf-full-manual-norm" in issue.reason
    assert rec.settings()["NEO_MODEL_S3_URI"].ok is False


def test_neo_s_output_is_taken_beside_its_input_and_needs_the_sidecar(sandbox: Sandbox, tmp_path: Path) -> None:
    """An input model.tar.gz beside Neo's model-ml_c5.tar.gz (S3OutputLocation = the input's folder): the Neo
    one is the model; without ncf-tui's sidecar beside it the build could not serve it, so it is refused."""
    folder = f"{sandbox.names.prefix}/same-folder"
    put_model(sandbox, f"{folder}/model.tar.gz", sidecar=False)
    key = put_model(sandbox, f"{folder}/model-ml_c5.tar.gz", sidecar=False)
    flags = sandbox_flags(sandbox, NEO_MODEL_S3_URI=f"{sandbox.names.bucket}/{folder}")
    with pytest.raises(SettingsError) as err:
        run_step(sandbox, tmp_path, flags=flags)
    (issue,) = err.value.issues
    assert f"no ncf-model.json at s3://{sandbox.names.bucket}/{folder}/ncf-model.json" in issue.reason
    sandbox.internal_client("s3").put_object(Bucket=sandbox.names.bucket, Key=sidecar_key(key), Body=b"{}")
    assert run_step(sandbox, tmp_path, flags=flags).model_key == key


def test_exact_archive_uri_and_single_archive_under_a_prefix_are_found(sandbox: Sandbox, tmp_path: Path) -> None:
    key = put_model(sandbox, "exact/place/ncf.tar.gz")
    s = run_step(sandbox, tmp_path, flags=sandbox_flags(sandbox, NEO_MODEL_S3_URI=f"s3://{sandbox.names.bucket}/{key}"))
    assert s.model_key == key and s.neo_model_s3_uri == f"{sandbox.names.bucket}/{key}"
    s = run_step(sandbox, tmp_path, flags=sandbox_flags(sandbox, NEO_MODEL_S3_URI=f"{sandbox.names.bucket}/exact"))
    assert s.model_key == key
    put_model(sandbox, "exact/other/second.tar.gz")
    with pytest.raises(SettingsError, match="2 archives under"):
        run_step(sandbox, tmp_path, flags=sandbox_flags(sandbox, NEO_MODEL_S3_URI=f"{sandbox.names.bucket}/exact"))


def test_every_failing_value_is_listed_and_evented(sandbox: Sandbox, tmp_path: Path) -> None:
    rec = Recorder()
    flags = sandbox_flags(sandbox, IMAGE_TAG=".bad", AWS_ACCOUNT_ID="1", target_device="tpu")
    with pytest.raises(SettingsError) as err:
        run_step(sandbox, tmp_path, rec, flags=flags)
    failing = {i.name for i in err.value.issues}
    assert failing == {"IMAGE_TAG", "AWS_ACCOUNT_ID", "target_device", "NEO_MODEL_S3_URI"}
    assert {n for n, e in rec.settings().items() if not e.ok} == failing
    assert all(name in err.value.message for name in failing)


def test_only_limits_validation_to_the_named_values(sandbox: Sandbox, tmp_path: Path) -> None:
    rec = Recorder()
    flags = sandbox_flags(sandbox, NEO_MODEL_S3_URI=None, bucket=sandbox.names.bucket)
    s = run_step(sandbox, tmp_path, rec, flags=flags, only=("bucket", "prefix", "sagemaker_role", "target_device"))
    assert set(rec.settings()) == {"bucket", "prefix", "sagemaker_role", "target_device"}
    assert s.neo_model_s3_uri == ""


def test_deprecated_seed_image_warns_and_the_fix_moves_to_the_current_one(sandbox: Sandbox, tmp_path: Path) -> None:
    put_model(sandbox)
    rec = Recorder()
    s = run_step(sandbox, tmp_path, rec, flags=sandbox_flags(sandbox, build_image=SEED_BUILD_IMAGE))
    ev = rec.settings()["build_image"]
    assert s.build_image == SEED_BUILD_IMAGE and ev.ok and "deprecated" in ev.message
    s = run_step(sandbox, tmp_path, flags=sandbox_flags(sandbox, build_image=SEED_BUILD_IMAGE), fix=True)
    assert s.build_image == DEFAULT_BUILD_IMAGE


def test_a_region_other_than_the_clients_is_checked_in_that_region(sandbox: Sandbox, tmp_path: Path) -> None:
    put_model(sandbox)
    flags = sandbox_flags(sandbox, AWS_DEFAULT_REGION="eu-west-1")
    with pytest.raises(SettingsError) as err:
        run_step(sandbox, tmp_path, flags=flags, fix=lambda issue: issue.name == "IMAGE_REPO_NAME")
    reasons = {i.name: i.reason for i in err.value.issues}
    assert set(reasons) == {"bucket", "NEO_MODEL_S3_URI"}
    assert "is in us-east-1, not in eu-west-1" in reasons["bucket"]
    # the repository fix ran against eu-west-1, where the build will push
    eu = sandbox_aws(sandbox).session.client("ecr", region_name="eu-west-1", endpoint_url=sandbox.endpoint_url)
    assert eu.describe_repositories(repositoryNames=[sandbox.names.ecr_repo])["repositories"]
