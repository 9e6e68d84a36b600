"""The NeuMF architecture is read back from any state_dict of the family, or the mismatch is named."""

from __future__ import annotations

import pytest
import torch

from ncf_tui.engine.errors import CheckpointError
from ncf_tui.engine.model import Architecture, build_neumf, infer_architecture


@pytest.mark.parametrize(
    "arch",
    [
        Architecture(943, 1682, 8, 16, (32, 16, 8)),
        Architecture(6040, 3706, 64, 64, (256, 128, 64, 32)),  # the original project's shape
        Architecture(3, 5, 2, 2, (4,)),
    ],
)
def test_architecture_round_trips(arch: Architecture) -> None:
    sd = build_neumf(arch).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == arch.expected_shapes
    assert infer_architecture(sd) == arch


def test_neumf_scores_are_probabilities(small_state_dict: tuple[Architecture, dict[str, torch.Tensor]]) -> None:
    arch, _ = small_state_dict
    model = build_neumf(arch).eval()
    out = model(torch.tensor([0, 6]), torch.tensor([0, 10]))
    assert out.shape == (2,)
    assert bool(((out > 0) & (out < 1)).all())


def test_shape_mismatch_names_key_and_shapes(small_state_dict: tuple[Architecture, dict[str, torch.Tensor]]) -> None:
    _, sd = small_state_dict
    bad = dict(sd)
    bad["mlp_layers.1.weight"] = torch.zeros(4, 5)
    with pytest.raises(CheckpointError, match=r"mlp_layers\.1\.weight has shape \(4, 5\), expected \(4, 8\)"):
        infer_architecture(bad)


def test_missing_and_extra_keys_are_named(small_state_dict: tuple[Architecture, dict[str, torch.Tensor]]) -> None:
    _, sd = small_state_dict
    missing = {k: v for k, v in sd.items() if k != "output.bias"}
    with pytest.raises(CheckpointError, match="missing output.bias"):
        infer_architecture(missing)
    extra = {**sd, "batch_norm.running_mean": torch.zeros(3)}
    with pytest.raises(CheckpointError, match="unexpected keys batch_norm.running_mean"):
        infer_architecture(extra)
    gap = {k: v for k, v in sd.items() if not k.startswith("mlp_layers.0.")}
    with pytest.raises(CheckpointError, match="not numbered"):
        infer_architecture(gap)
