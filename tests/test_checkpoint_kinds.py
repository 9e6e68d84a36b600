"""Every kind of checkpoint people save runs ``ncf-tui --headless --until variants`` to the canonical figures.

Each file is made from the bundled sample's weights (see ``tests/engine/kinds.py``), so the five variants'
fidelity figures must be exactly the canonical file's; the ones ncf-tui cannot use exit 2 with one line.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ncf_tui import cli
from ncf_tui.engine.checkpoint import Checkpoint

from .engine import kinds

pytestmark = pytest.mark.slow

KINDS = {
    "torch-prune": (kinds.pruned_with_torch_prune, []),
    "training-loop": (kinds.training_loop_dict, []),
    "lightning": (kinds.lightning_dict, []),
    "data-parallel": (kinds.data_parallel, []),
    "torch-compile": (kinds.compiled, []),
    "safetensors": (kinds.safetensors_file, []),
    # guoyang9's code documents none + logits; the sample's weights were trained l2 + sigmoid: the flags say so.
    "public-neumf-layout": (kinds.guoyang9, ["--gmf-norm", "l2", "--output", "sigmoid"]),
}


def _run(args: list[str], tmp: Path) -> tuple[int, list[dict[str, Any]], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--headless", "--json", "--until", "variants", "--state", str(tmp / "state.json"), *args])
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return code, events, err.getvalue()


def _figures(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    final = ("ready", "rejected")
    return {e["name"]: e["fidelity"] for e in events if e["event"] == "variant" and e["status"] in final}


@pytest.fixture(scope="module")
def canonical_figures(tmp_path_factory: pytest.TempPathFactory, sample_ckpt: Checkpoint) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("canonical")
    path = kinds.canonical(sample_ckpt, tmp)
    code, events, err = _run(["--checkpoint", str(path), "--output-dir", str(tmp / "o")], tmp)
    assert code == 0, err
    figures = _figures(events)
    assert list(figures) == ["original", "basic", "relu", "mlp", "full_manual_norm"]
    return figures


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_runs_to_the_canonical_figures(
    tmp_path: Path, sample_ckpt: Checkpoint, canonical_figures: dict[str, dict[str, Any]], kind: str
) -> None:
    make, flags = KINDS[kind]
    path = make(sample_ckpt, tmp_path)
    code, events, err = _run(["--checkpoint", str(path), "--output-dir", str(tmp_path / "o"), *flags], tmp_path)
    assert code == 0, err
    assert "Traceback" not in err
    assert _figures(events) == canonical_figures
    ckpt = next(e for e in events if e["event"] == "checkpoint")
    assert (ckpt["gmf_norm"], ckpt["output"]) == ("l2", "sigmoid")


def test_key_map_case_runs_to_the_canonical_figures(
    tmp_path: Path, sample_ckpt: Checkpoint, canonical_figures: dict[str, dict[str, Any]]
) -> None:
    path, key_map = kinds.renamed(sample_ckpt, tmp_path)
    base = ["--checkpoint", str(path), "--key-map", str(key_map), "--output-dir", str(tmp_path / "o")]
    # No metadata and a key map's layout documents nothing: refused until the flags say how it scores.
    code, events, err = _run(base, tmp_path)
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("ncf-tui: error:")]
    assert len(errors) == 1 and "pass --gmf-norm none|l2 and --output sigmoid|logits" in errors[0]
    assert not (tmp_path / "o").exists()
    code, events, err = _run([*base, "--gmf-norm", "l2", "--output", "sigmoid"], tmp_path / "second")
    assert code == 0, err
    assert _figures(events) == canonical_figures


def test_whole_pickled_model_exits_2_with_the_resave_hint(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    path = kinds.whole_module(sample_ckpt, tmp_path)
    code, events, err = _run(["--checkpoint", str(path), "--output-dir", str(tmp_path / "o")], tmp_path)
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("ncf-tui: error:")]
    assert "whole pickled model (tests.engine.kinds.SampleNeuMF)" in line
    resave = "torch.save(torch.load('whole_model.pt', weights_only=False).state_dict(), 'whole_model.state_dict.pt')"
    assert resave in line
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == 2


def test_unknown_layout_exits_2_and_prints_a_key_map(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    path, _ = kinds.renamed(sample_ckpt, tmp_path)
    code, _events, err = _run(["--checkpoint", str(path), "--output-dir", str(tmp_path / "o")], tmp_path)
    assert code == 2 and "Traceback" not in err
    assert len([x for x in err.splitlines() if x.startswith("ncf-tui: error:")]) == 1
    assert '"mlp_layers.0.weight" = "net.deep.block0.weight"  # (32, 32)' in err
    assert '"gmf_user_embedding.weight" = "?"' in err
