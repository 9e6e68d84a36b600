"""``ncf-tui --checklist --headless``: the report a person reads and the JSON lines a script reads.

Until ``cli.py`` dispatches ``--checklist`` here, the tests call ``run_checklist_cli`` with the namespace
``build_parser()`` makes (plus ``fix``, the one flag the checklist adds). One test runs it in a child process
with ``--sandbox`` (its own embedded account), the others in this process against the session's sandbox
through ``--endpoint-url`` and the credentials in the environment, exactly as a user would point it at AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncf_tui.checklist_report import run_checklist_cli
from ncf_tui.cli import build_parser
from ncf_tui.engine.codebuild import SEED_IMAGE, ProjectSpec, SourceSpec, ensure_project
from ncf_tui.engine.events import discard
from ncf_tui.sandbox.server import Sandbox
from tests.sandbox.cb_kit import neo_base_image

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
RUN = (
    "import sys; from ncf_tui.cli import build_parser; from ncf_tui.checklist_report import run_checklist_cli; "
    "argv = sys.argv[1:]; fix = '--fix' in argv; args = build_parser().parse_args([a for a in argv if a != '--fix']); "
    "args.fix = fix; sys.exit(run_checklist_cli(args))"
)


def parse(argv: list[str], *, fix: bool = False) -> argparse.Namespace:
    args = build_parser().parse_args(["--checklist", "--headless", *argv])
    args.fix = fix
    return args


def json_lines(text: str) -> list[dict[str, object]]:
    lines = [line for line in text.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(e, dict) and "event" in e and "ts" in e for e in events)
    return events


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from ncf_tui.engine.variants import export_variants

    return export_variants(out_dir=tmp_path_factory.mktemp("cli"), names=("basic",))["basic"].read_bytes()


@pytest.fixture
def account(sandbox: Sandbox, archive: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The no-privileged-mode account with the model in place and a project on the deprecated seed image,
    the environment pointing the CLI at it (credentials, and empty state and config folders)."""
    sandbox.reset("no-privileged-mode")
    settings = {**sandbox.suggested_settings(), "NEO_BASE_IMAGE": neo_base_image(sandbox.region)}
    bucket, _, prefix = settings["NEO_MODEL_S3_URI"].partition("/")
    sandbox.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/model-ml_c5.tar.gz", Body=archive)
    sandbox.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/ncf-model.json", Body=b"{}")
    spec = ProjectSpec(
        name=sandbox.names.codebuild_project,
        service_role_arn=sandbox.names.codebuild_role_arn,
        source=SourceSpec("GITHUB", location="https://github.com/example/ncf-tui"),
        environment_variables=settings,
        image=SEED_IMAGE,
        privileged_mode=False,
    )
    from ncf_tui.engine.aws import Aws, AwsTarget

    aws = Aws(AwsTarget(region=sandbox.region, endpoint_url=sandbox.endpoint_url, credentials=sandbox.credentials))
    ensure_project(aws, spec, discard, lambda _changes: True)
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NCF_TUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NCF_TUI_CONFIG_DIR", str(tmp_path / "config"))
    yield sandbox


def test_the_human_report_lists_every_check_with_evidence_and_fix(
    account: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_checklist_cli(parse(["--endpoint-url", account.endpoint_url, "--region", account.region]))
    out, err = capsys.readouterr()
    assert code == 3
    lines = out.splitlines()
    from ncf_tui.engine.checklist import CHECK_IDS

    assert sum(line[:1] in "✔⚠✘–" and line[:1] != " " for line in lines) == len(CHECK_IDS)  # one head line per check
    assert "✘ fail  project" in out and "privileged mode is off" in out
    assert "⚠ warn  build-image" in out and "deprecated" in out
    assert "fix: turn privileged mode on" in out and "(safe fix: --fix)" in out
    assert "project" in err and f"{len(CHECK_IDS)} checks:" in err and "1 fail" in err


def test_json_fix_yes_applies_the_safe_fixes_and_reruns_the_checks(
    account: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["--json", "--yes", "--endpoint-url", account.endpoint_url, "--region", account.region], fix=True)
    code = run_checklist_cli(args)
    out, _err = capsys.readouterr()
    events = json_lines(out)
    checks = [e for e in events if e["event"] == "check"]
    project = [e["status"] for e in checks if e["id"] == "project"]
    image = [e["status"] for e in checks if e["id"] == "build-image"]
    assert project == ["fail", "pass"] and image == ["warn", "pass"]
    fixes = {e["name"]: e["status"] for e in events if e["event"] == "step"}
    assert fixes == {"fix project": "done", "fix build-image": "done"}
    kinds = [(e["event"], e.get("id") or e.get("name")) for e in events]
    fixed_at = kinds.index(("step", "fix project"))
    assert kinds.index(("check", "project")) < fixed_at < len(kinds) - 1 - kinds[::-1].index(("check", "project"))
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == 0 and code == 0
    env = account.client("codebuild").batch_get_projects(names=[account.names.codebuild_project])["projects"][0]
    assert env["environment"]["privilegedMode"] is True and env["environment"]["image"] != SEED_IMAGE


def test_fix_without_yes_in_a_script_changes_nothing(account: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["--json", "--endpoint-url", account.endpoint_url, "--region", account.region], fix=True)
    assert run_checklist_cli(args) == 3
    events = json_lines(capsys.readouterr().out)
    skipped = [e for e in events if e["event"] == "step"]
    assert len(skipped) == 1 and skipped[0]["status"] == "skipped" and "--yes" in str(skipped[0]["message"])
    env = account.client("codebuild").batch_get_projects(names=[account.names.codebuild_project])["projects"][0]
    assert env["environment"]["privilegedMode"] is False


def test_bad_input_is_a_clear_error_not_a_traceback(
    account: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["--json", "--state", str(tmp_path / "missing.json"), "--endpoint-url", account.endpoint_url])
    assert run_checklist_cli(args) == 2
    events = json_lines(capsys.readouterr().out)
    assert (
        events == [events[-1]] and events[-1]["event"] == "done" and "no such run state" in str(events[-1]["message"])
    )


def test_sandbox_json_report_in_a_child_process(tmp_path: Path) -> None:
    """A fresh embedded account has no project and no compile output: the JSON says so, line by line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"NCF_TUI_STATE_DIR": str(tmp_path / "state"), "NCF_TUI_CONFIG_DIR": str(tmp_path / "config"), "CI": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", RUN, "--checklist", "--headless", "--json", "--sandbox"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    events = json_lines(proc.stdout)
    status = {e["id"]: e["status"] for e in events if e["event"] == "check"}
    assert status["credentials"] == "pass" and status["service-role"] == "pass"
    assert status["project"] == "fail" and status["build"] == "skip" and status["image"] == "skip"
    project = next(e for e in events if e["event"] == "check" and e["id"] == "project")
    assert "ncf-tui --headless --sandbox --until build" in str(project["fix"])
    model = next(e for e in events if e["event"] == "check" and e["id"] == "neo-model")
    assert model["status"] == "fail" and "ncf-tui --headless --sandbox --until compile" in str(model["fix"])
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == 3


def test_the_newest_saved_run_is_read_and_the_fix_command_reaches_the_same_account(
    account: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --state the newest run of this mode in NCF_TUI_STATE_DIR is used; a job SageMaker no longer
    knows is judged on what the state recorded."""
    from ncf_tui.engine.state import RunState, StateStore

    reason = (
        "ClientError: InputConfiguration: The following operators are not implemented: ['aten::linalg_vector_norm']"
    )
    job = {"variant": "original", "job_name": "ncf-gone-original", "input_uri": "s3://b/i", "output_uri": "s3://b/o/",
           "status": "FAILED", "failure_reason": reason}  # fmt: skip
    state = RunState(run_id="20261130-010203-beef", mode="aws", checkpoint="/data/ncf.pt")
    state.steps = {
        "variants": {"status": "done", "candidates": [
            {"name": "original", "archive": "a", "accepted": False, "fidelity": {"top10_overlap": 1.0}},
            {"name": "mlp", "archive": "b", "accepted": True, "fidelity": {"top10_overlap": 0.6}},
            {"name": "full_manual_norm", "archive": "c", "accepted": True, "fidelity": {"top10_overlap": 0.9}},
        ]},
        "compile": {"status": "running", "jobs": {"original": job}},
    }  # fmt: skip
    path = Path(os.environ["NCF_TUI_STATE_DIR"]) / "run-20261130-010203-beef.json"
    StateStore(path).save(state)
    argv = ["--json", "--endpoint-url", account.endpoint_url, "--region", account.region]
    assert run_checklist_cli(parse(argv)) == 3
    events = json_lines(capsys.readouterr().out)
    compiled = next(e for e in events if e["event"] == "check" and e["id"] == "neo-compile")
    assert compiled["status"] == "fail" and "original FAILED" in str(compiled["evidence"])
    fix = str(compiled["fix"])
    assert "full_manual_norm avoids aten::linalg_vector_norm" in fix  # the most faithful accepted variant
    expected = (
        f"ncf-tui --headless --region {account.region} --endpoint-url {account.endpoint_url} "
        f"--resume --state {path} --until compile"
    )
    assert expected in fix
