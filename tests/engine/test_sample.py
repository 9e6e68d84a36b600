"""The committed sample is what ``python -m ncf_tui.engine.sample`` documents it to be."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ncf_tui.engine.sample import HELDOUT_NAME, SAMPLE_SPEC, main, sample_checkpoint_path
from ncf_tui.engine.variants import eval_pairs_for, hit_rate


def test_committed_sample_matches_its_spec(sample_ckpt) -> None:
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


def test_recorded_hit_rate_is_reproduced(sample_ckpt) -> None:
    from ncf_tui.engine.model import build_neumf

    pairs = eval_pairs_for(sample_ckpt)
    assert pairs.grouped and len(pairs.users) == 943 * (1 + SAMPLE_SPEC["eval_negatives"])
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
def test_script_makes_the_sample_again(tmp_path, sample_ckpt) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    again = torch.load(tmp_path / sample_checkpoint_path().name, weights_only=True)
    assert set(again["state_dict"]) == set(sample_ckpt.state_dict)
    assert again["hr_at_10"] == pytest.approx(sample_ckpt.metadata["hr_at_10"], abs=0.03)
    assert (tmp_path / HELDOUT_NAME).stat().st_size > 0
