"""The command line: --help stays light, the headless variants run follows the event contract, bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ncf_tui import cli
from ncf_tui.engine.model import Architecture

from .engine import hostile

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NCF_TUI_NO_TUI": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ncf_tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from ncf_tui import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "heavy = [m for m in ('torch', 'boto3', 'moto', 'sagemaker', 'textual', 'rich') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "usage: ncf-tui" in out.stdout
    assert "HEAVY []" in out.stdout, out.stdout[-300:]


def test_headless_variants_run_follows_the_contract(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    proc = run_cli("--headless", "--json", "--until", "variants", "--output-dir", str(out_dir))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all({"event", "ts"} <= set(e) for e in events)
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == 0
    ckpt = next(e for e in events if e["event"] == "checkpoint")
    assert ckpt["params"] == 64737 and ckpt["pruned_sparsity"] == pytest.approx(0.5, abs=0.01)
    final = {e["name"]: e for e in events if e["event"] == "variant" and e["status"] in ("ready", "rejected")}
    assert list(final) == ["original", "basic", "relu", "mlp", "full_manual_norm"]
    assert final["original"]["status"] == "rejected"
    assert final["original"]["preflight"]["missing"] == ["aten::linalg_vector_norm"]
    assert "not implemented" in final["original"]["failure_reason"]
    for name, e in final.items():
        assert e["fidelity"]["pairs"] == 94300 and 0 <= e["fidelity"]["top10_overlap"] <= 1, name
        assert (out_dir / name / "model.tar.gz").is_file()
        assert e["archive"] == str(out_dir / name / "model.tar.gz")
    assert final["full_manual_norm"]["fidelity"]["max_abs_diff"] < 1e-6
    steps = [(e["name"], e["status"]) for e in events if e["event"] == "step"]
    assert steps == [
        ("account", "started"),  # a model-only run: the account step asks AWS nothing
        ("account", "done"),
        ("checkpoint", "started"),
        ("checkpoint", "done"),
        ("variants", "started"),
        ("variants", "done"),
    ]


def _bad_inputs(tmp_path: Path, sample: Path, small_sd: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    (tmp_path / "empty").mkdir()
    afile = tmp_path / "a-file"
    afile.write_text("keep me")
    return {
        "missing file": ["--checkpoint", str(tmp_path / "nope.pt")],
        "no checkpoints": ["--checkpoint", str(tmp_path / "empty")],
        "truncated": ["--checkpoint", str(hostile.truncated(tmp_path / "t.pt", sample))],
        "pickle with code": [
            "--checkpoint",
            str(hostile.pickle_with_code(tmp_path / "e.pt", tmp_path / "pwned")),
        ],
        "other model": ["--checkpoint", str(hostile.other_model(tmp_path / "o.pt"))],
        "nan weights": ["--checkpoint", str(hostile.with_nan(tmp_path / "nan.pt", small_sd))],
        "output dir is a file": ["--output-dir", str(afile)],
        "unknown tvm release": ["--tvm-release", "v0.99.0"],
    }


def test_bad_input_exits_2_with_one_clear_line(
    tmp_path: Path,
    sample_path: Path,
    small_state_dict: tuple[Architecture, dict[str, torch.Tensor]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = _bad_inputs(tmp_path, sample_path, small_state_dict[1])
    out_dir = tmp_path / "out"
    for name, args in cases.items():
        extra = [] if "--output-dir" in args else ["--output-dir", str(out_dir)]
        code = cli.main(["--headless", "--until", "variants", *args, *extra])
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        lines = [line for line in err.splitlines() if line.startswith("ncf-tui: error:")]
        assert len(lines) == 1, (name, err)
        assert "Traceback" not in err, name
    assert not out_dir.exists(), "nothing may be written for bad input"
    assert (tmp_path / "a-file").read_text() == "keep me"
    assert not (tmp_path / "pwned").exists()


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    bad = hostile.not_a_zip(tmp_path / "bad.pt")
    proc = run_cli(
        "--headless", "--json", "--until", "variants", "--checkpoint", str(bad), "--output-dir", str(tmp_path / "o")
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "not a readable PyTorch checkpoint" in proc.stderr
    done = json.loads(proc.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["exit_code"] == 2


@pytest.mark.parametrize(
    "args",
    [
        ["--json"],
        ["--sandbox-scenario", "healthy"],
        ["--until", "nowhere"],
        ["--sandbox-scenario", "bogus", "--sandbox"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    assert info.value.code == 2
    assert "usage: ncf-tui" in capsys.readouterr().err


def test_aws_steps_without_a_region_fail_fast_with_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("NCF_TUI_STATE_DIR", str(tmp_path / "state"))
    out_dir = tmp_path / "out"
    assert cli.main(["--headless", "--until", "build", "--output-dir", str(out_dir)]) == 3
    err = capsys.readouterr().err
    assert "no AWS region set" in err and "--region" in err
    assert not out_dir.exists(), "it fails before any work"
