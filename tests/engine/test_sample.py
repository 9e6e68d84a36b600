"""The committed sample is what ``python -m ncf_tui.engine.sample`` documents it to be."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ncf_tui.engine.checkpoint import Checkpoint
from ncf_tui.engine.metrics import hit_rate
from ncf_tui.engine.sample import HELDOUT_NAME, SAMPLE_SPEC, main, sample_checkpoint_path
from ncf_tui.engine.variants import eval_pairs_for


def test_committed_sample_matches_its_spec(sample_ckpt: Checkpoint) -> None:
    spec = json.loads(sample_ckpt.metadata["sample_spec"])
    assert spec == SAMPLE_SPEC
    arch = sample_ckpt.architecture
    assert (arch.num_users, arch.num_items, arch.gmf_dim, arch.mlp_dim, list(arch.tower)) == (
        spec["num_users"],
        spec["num_items"],
        spec["gmf_dim"],
        spec["mlp_dim"],
        spec["tower"],
    )
    assert sample_checkpoint_path().stat().st_size < 2_000_000
    assert sample_ckpt.pruned_sparsity == pytest.approx(spec["prune_amount"], abs=0.01)


def test_recorded_hit_rate_is_reproduced(sample_ckpt: Checkpoint) -> None:
    from ncf_tui.engine.model import build_neumf

    pairs = eval_pairs_for(sample_ckpt)
    assert pairs.grouped and len(pairs.users) == 943 * (1 + SAMPLE_SPEC["eval_negatives"])
    assert pairs.labels is not None  # grouped pairs are the labelled held-out file's
    assert np.all(pairs.labels.reshape(943, -1).sum(axis=1) == 1)
    model = build_neumf(sample_ckpt.architecture).eval()
    model.load_state_dict(sample_ckpt.state_dict)
    with torch.no_grad():
        s = model(torch.from_numpy(pairs.users), torch.from_numpy(pairs.items)).numpy()
    hr = hit_rate(s, pairs.users, pairs.labels)
    assert hr == pytest.approx(sample_ckpt.metadata["hr_at_10"], abs=0.002)
    # Well above chance (10 of 100 candidates) and pruning cost less than fine-tuning won back.
    assert hr > 0.3
    assert sample_ckpt.metadata["hr_at_10_pruned"] <= hr <= sample_ckpt.metadata["hr_at_10_dense"]


@pytest.mark.slow
def test_script_makes_the_sample_again(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    again = torch.load(tmp_path / sample_checkpoint_path().name, weights_only=True)
    assert set(again["state_dict"]) == set(sample_ckpt.state_dict)
    assert again["hr_at_10"] == pytest.approx(sample_ckpt.metadata["hr_at_10"], abs=0.03)
    assert (tmp_path / HELDOUT_NAME).stat().st_size > 0


def test_sparse_training_path_is_deterministic_and_prunes_half() -> None:
    """The seed-scale recipe (SparseAdam embeddings, big batches) on a small shape: the same tensors twice."""
    from ncf_tui.engine.sample import ML1M_SPEC, train

    spec = dict(ML1M_SPEC, num_users=120, num_items=300, gmf_dim=8, mlp_dim=8, tower=[16, 8], batch_size=512)
    torch.set_num_threads(1)
    first, held = train(spec, log=lambda *_: None)
    again, _ = train(spec, log=lambda *_: None)
    for k, v in first["state_dict"].items():
        assert torch.equal(v, again["state_dict"][k]), k
    w = first["state_dict"]["mlp_layers.0.weight"]
    assert float((w == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
    assert len(held["users"]) == 120 * (1 + spec["eval_negatives"])
    assert json.loads(first["sample_spec"])["optimizer"] == "sparse-adam"


@pytest.mark.slow
def test_ml1m_scale_is_the_seeds_shape_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ncf_tui.engine.checkpoint import load_checkpoint
    from ncf_tui.engine.sample import ml1m_checkpoint_path

    monkeypatch.setenv("NCF_TUI_DATA_DIR", str(tmp_path))
    assert main(["--scale", "ml-1m"]) == 0
    path = ml1m_checkpoint_path()
    assert path.parent == tmp_path / "samples" and path.stat().st_size > 2_000_000
    ck = load_checkpoint(path)
    arch = ck.architecture
    assert (arch.num_users, arch.num_items, arch.gmf_dim, arch.mlp_dim, arch.tower) == (
        6040,
        3706,
        64,
        64,
        (256, 128, 64, 32),
    )
    assert ck.pruned_sparsity == pytest.approx(0.5, abs=0.01)
    assert (ck.gmf_norm, ck.output) == ("l2", "sigmoid")
    pairs = eval_pairs_for(ck)
    assert pairs.grouped and len(pairs.users) == 6040 * 100
    assert ck.metadata["hr_at_10"] > 0.2  # well above chance (10 of 100 candidates)
