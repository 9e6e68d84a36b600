"""Hostile and bad input through the real CLI: a clear message, exit 2 (3 for settings), nothing executed,
nothing written half-way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ncf_tui.engine.checkpoint import MAX_CHECKPOINT_BYTES
from ncf_tui.engine.model import Architecture
from ncf_tui.engine.settings import FIELDS, check_value

from ..engine import hostile
from .kit import NAMES, SETTINGS, SandboxProcess, builds, free_port, run_args, run_cli, run_env

HOSTILE_VALUES = {
    "shell": "x; rm -rf /tmp/ncf-pwned",
    "substitution": "$(touch /tmp/ncf-pwned)",
    "newline": "ok\nrm -rf /",
    "escape": "ok\x1b[2J",
    "lookalike": "ncf-rес",  # Cyrillic е and с
    "bidi": "abc\u202edef",
    "overlong": "a" * 5000,
}


@pytest.mark.parametrize("kind", list(HOSTILE_VALUES))
@pytest.mark.parametrize("name", [f.name for f in FIELDS])
def test_every_field_refuses_every_hostile_value(name: str, kind: str) -> None:
    check = check_value(name, HOSTILE_VALUES[kind])
    assert not check.ok and check.unsafe, (name, kind, check)
    assert check.reason.startswith("refused: ") and "\n" not in check.reason and "\x1b" not in check.reason


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ncf_tui.cli", "--headless", "--json", "--output-dir", str(tmp / "out"), *args],
        capture_output=True,
        text=True,
        env=run_env(None, tmp),
        timeout=120,
    )


def _one_clear_error(p: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    assert p.returncode == code, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[0].startswith("ncf-tui: error: ") and says in lines[0], p.stderr
    assert all(line.startswith("  hint: ") for line in lines[1:]), p.stderr
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == code


def _nothing_written(tmp: Path) -> None:
    assert not (tmp / "out").exists(), "no output folder for a refused input"
    for state in (tmp / "statedir").glob("*"):
        json.loads(state.read_text())  # any state file is whole, never half-written


def _huge(tmp: Path) -> Path:
    """A file over the size limit; sparse, so the test writes a few bytes, not 2 GiB."""
    path = tmp / "huge.pt"
    with path.open("wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(MAX_CHECKPOINT_BYTES + 1)
    return path


def _wrong_dtype(tmp: Path, sd: dict[str, torch.Tensor]) -> Path:
    bad = dict(sd)
    bad["output.bias"] = torch.zeros(1, dtype=torch.int64)
    torch.save(bad, tmp / "int.pt")
    return tmp / "int.pt"


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("pickle-with-code", "refused: its pickle would call"),
        ("raw-pickle-with-code", "refused: its pickle would call"),
        ("huge", "too large for an NCF checkpoint"),
        ("wrong-dtype", "output.bias has dtype torch.int64"),
        ("nan", "NaN"),
        ("truncated", "cut.pt"),
    ],
)
def test_hostile_checkpoints_are_refused_and_never_run(
    tmp_path: Path,
    small_state_dict: tuple[Architecture, dict[str, torch.Tensor]],
    sample_path: Path,
    kind: str,
    says: str,
) -> None:
    marker = tmp_path / "pwned"
    sd = small_state_dict[1]
    path = {
        "pickle-with-code": lambda: hostile.pickle_with_code(tmp_path / "evil.pt", marker),
        "raw-pickle-with-code": lambda: hostile.raw_pickle_with_code(tmp_path / "evil.pkl", marker),
        "huge": lambda: _huge(tmp_path),
        "wrong-dtype": lambda: _wrong_dtype(tmp_path, sd),
        "nan": lambda: hostile.with_nan(tmp_path / "nan.pt", sd),
        "truncated": lambda: hostile.truncated(tmp_path / "cut.pt", sample_path),
    }[kind]()
    p = _cli(tmp_path, "--checkpoint", str(path), "--until", "checkpoint")
    _one_clear_error(p, 2, says)
    assert not marker.exists(), "the pickle's payload ran"
    _nothing_written(tmp_path)


ODD_S3_URIS = [
    ("s3://ncf-bucket/../../etc/passwd", "'..' path segment"),
    ("ncf-bucket/x/../y", "'..' path segment"),
    ("ncf-bucket//double/x", "empty, '.' or '..' path segment"),
    ("s3://ncf-bucket/a b", "whitespace"),
    ("s3://NCF_Bucket/x", "bucket name uses lowercase"),
    ("s3:/ncf-bucket/x", "bucket 's3:'"),
    ("https://ncf-bucket.s3.amazonaws.com/x", "bucket 'https:'"),
    ("arn:aws:s3:::ncf-bucket/x", "bucket 'arn:aws:s3:::ncf-bucket'"),
    ("s3://ncf-bucket", "needs a key after the bucket"),
    ("s3://ncf-bucket/x?versionId=1", "'?'"),
    ("s3://ncf-bucket/x#frag", "'#'"),
    ("ncf-bucket/%2e%2e/x", "'%'"),
    ("s3://ncf-bucket/`id`", "'`'"),
    ("s3://192.168.0.1/x", "IP address"),
    ("s3://xn--bucket/x", "'xn--'"),
]


@pytest.mark.parametrize(("uri", "says"), ODD_S3_URIS)
def test_odd_s3_uris_are_refused_with_the_reason(uri: str, says: str) -> None:
    check = check_value("NEO_MODEL_S3_URI", uri)
    assert not check.ok and says in check.reason, check


BadTomlRun = tuple[Path, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def bad_toml_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One CLI run with a --config that is not TOML (shared: a run costs seconds)."""
    tmp = tmp_path_factory.mktemp("badtoml")
    cfg = tmp / "c.toml"
    cfg.write_text('bucket = "unterminated\nprefix = "x"\n', encoding="utf-8")
    return tmp, _cli(tmp, "--sandbox", "--yes", "--config", str(cfg), "--until", "compile")


@pytest.mark.slow
def test_a_config_that_is_not_toml_is_one_clear_error(bad_toml_run: BadTomlRun) -> None:
    _, p = bad_toml_run
    _one_clear_error(p, 2, "is not valid TOML: ")
    assert "(at line 1, column " in p.stderr


@pytest.mark.slow
def test_a_config_that_is_not_toml_is_refused_before_any_work(bad_toml_run: BadTomlRun) -> None:
    tmp, _ = bad_toml_run
    _nothing_written(tmp)


@pytest.mark.slow
def test_hostile_set_values_are_refused_and_nothing_is_built(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile_values = {
        "IMAGE_TAG": f"$(touch {marker})",
        "NEO_MODEL_S3_URI": f"{NAMES.bucket}/x;touch {marker}",
        "project_name": "ncf\nrm -rf /",
        "IMAGE_REPO_NAME": "ncf-rес",  # Cyrillic е and с
    }
    with SandboxProcess("healthy", free_port()) as sb:
        run = run_cli(run_args(sb, tmp_path, settings={**SETTINGS, **hostile_values}), run_env(sb, tmp_path))
        assert run.returncode == 3, run.stderr[-2000:]
        first = run.stderr.splitlines()[0]
        assert first.startswith("ncf-tui: error: 4 setting(s) failed validation: ") and "Traceback" not in run.stderr
        for name in hostile_values:
            assert f"{name}: refused: " in first
        refused = {e["name"]: e for e in run.of("setting") if not e["ok"]}
        assert set(refused) == set(hostile_values)
        assert all("\n" not in e["value"] for e in refused.values()), "values are shown escaped"
        assert not marker.exists(), "nothing was executed"
        assert sb.client("codebuild").list_projects()["projects"] == [], "no project was created"
        assert builds(sb) == [], "no build was started"
        assert sb.client("ecr").describe_images(repositoryName=NAMES.ecr_repo)["imageDetails"] == []
        assert not (tmp_path / "config" / "config.toml").exists(), "refused answers are not saved"
        assert sb.client("sagemaker").list_compilation_jobs()["CompilationJobSummaries"] == [], "no Neo job"
        assert not (tmp_path / "out").exists(), "no variant was written for a doomed run"


@pytest.mark.slow
def test_a_hostile_bucket_is_one_clear_error(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with SandboxProcess("healthy", free_port()) as sb:
        settings = {**SETTINGS, "bucket": f"x;touch {marker}"}
        run = run_cli(run_args(sb, tmp_path, "--until", "compile", settings=settings), run_env(sb, tmp_path))
        assert run.returncode == 3, run.stderr[-2000:]
        assert "Traceback" not in run.stderr, "without engine/neo.check_config botocore's validation crashed the run"
        assert run.stderr.startswith("ncf-tui: error: 1 setting(s) failed validation: bucket: refused: contains ';'")
        assert not marker.exists()
        assert sb.client("sagemaker").list_compilation_jobs()["CompilationJobSummaries"] == []


@pytest.mark.parametrize(
    "content",
    [
        b'{"version": 1, "run_id": ',
        b"\x00\xff garbage",
        b'{"version": 1, "run_id": "r", "mode": "sandbox", "steps": []}',
    ],
)
def test_a_corrupt_state_file_on_resume_is_reported_and_set_aside(tmp_path: Path, content: bytes) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    p = _cli(tmp_path, "--sandbox", "--resume", "--state", str(state))
    _one_clear_error(p, 2, "is unreadable")
    assert "set aside as state.json.corrupt-" in p.stderr
    assert not state.exists() and [f.read_bytes() for f in tmp_path.glob("state.json.corrupt-*")] == [content]
    assert not (tmp_path / "out").exists()
