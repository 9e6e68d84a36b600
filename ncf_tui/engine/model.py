"""The NCF model family: NeuMF as the original project trained it, and its architecture inferred from weights.

NeuMF (He et al., 2017) fuses two paths over user and item embeddings:
- GMF: the element-wise product of a user and an item embedding, each L2-normalised with ``F.normalize``;
- MLP: the concatenation of two other embeddings through a ReLU tower (for example 256, 128, 64, 32).
Their outputs are concatenated into one linear layer and a sigmoid gives the score.

Checkpoints carry only a state_dict, so the architecture (user and item counts, embedding sizes, tower) is
read back from the tensor shapes by ``infer_architecture``; a state_dict of another model gets an error that
names the expected and found keys and shapes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError

if TYPE_CHECKING:
    import torch

GMF_USER = "gmf_user_embedding.weight"
GMF_ITEM = "gmf_item_embedding.weight"
MLP_USER = "mlp_user_embedding.weight"
MLP_ITEM = "mlp_item_embedding.weight"
OUTPUT_W = "output.weight"
OUTPUT_B = "output.bias"
_TOWER_KEY = re.compile(r"^mlp_layers\.(\d+)\.(weight|bias)$")

NORM_EPS = 1e-12
"""``F.normalize``'s default eps; the manual normalisation reproduces it exactly."""


@dataclass(frozen=True)
class Architecture:
    """A NeuMF shape, enough to rebuild the module that a state_dict belongs to."""

    num_users: int
    num_items: int
    gmf_dim: int
    mlp_dim: int
    tower: tuple[int, ...]

    @property
    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {
            GMF_USER: (self.num_users, self.gmf_dim),
            GMF_ITEM: (self.num_items, self.gmf_dim),
            MLP_USER: (self.num_users, self.mlp_dim),
            MLP_ITEM: (self.num_items, self.mlp_dim),
        }
        width = 2 * self.mlp_dim
        for i, out in enumerate(self.tower):
            shapes[f"mlp_layers.{i}.weight"] = (out, width)
            shapes[f"mlp_layers.{i}.bias"] = (out,)
            width = out
        shapes[OUTPUT_W] = (1, self.gmf_dim + width)
        shapes[OUTPUT_B] = (1,)
        return shapes

    def describe(self) -> str:
        tower = ",".join(str(n) for n in self.tower)
        return (
            f"NeuMF {self.num_users:,} users x {self.num_items:,} items, GMF dim {self.gmf_dim}, "
            f"MLP dim {self.mlp_dim}, tower {tower}"
        )


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in t.shape)


def infer_architecture(state: Mapping[str, Any]) -> Architecture:
    """Read a NeuMF architecture back from a state_dict's keys and shapes, or say exactly what is off."""
    required = [GMF_USER, GMF_ITEM, MLP_USER, MLP_ITEM, OUTPUT_W, OUTPUT_B]
    missing = [k for k in required if k not in state]
    tower_idx = sorted({int(m.group(1)) for k in state if (m := _TOWER_KEY.match(k))})
    if missing or not tower_idx:
        found = ", ".join(sorted(state)[:8]) + (" ..." if len(state) > 8 else "")
        what = ", ".join(missing) if missing else "mlp_layers.0.weight"
        raise CheckpointError(
            f"not a NeuMF state_dict: missing {what}; found keys: {found or 'none'}",
            hint="expected gmf_/mlp_ user and item embeddings, mlp_layers.N.weight/bias and output.weight/bias",
        )
    if tower_idx != list(range(len(tower_idx))):
        raise CheckpointError(f"not a NeuMF state_dict: tower layers are not numbered 0..N: {tower_idx}")
    for key in (GMF_USER, GMF_ITEM, MLP_USER, MLP_ITEM):
        if len(_shape(state[key])) != 2:
            raise CheckpointError(f"not a NeuMF state_dict: {key} has shape {_shape(state[key])}, expected 2-D")
    num_users, gmf_dim = _shape(state[GMF_USER])
    num_items = _shape(state[GMF_ITEM])[0]
    mlp_dim = _shape(state[MLP_USER])[1]
    tower = tuple(_shape(state[f"mlp_layers.{i}.weight"])[0] for i in tower_idx)
    arch = Architecture(num_users, num_items, gmf_dim, mlp_dim, tower)
    for key, want in arch.expected_shapes.items():
        got = _shape(state[key]) if key in state else None
        if got != want:
            raise CheckpointError(
                f"not a NeuMF state_dict: {key} has shape {got}, expected {want} for {arch.describe()}"
            )
    extra = sorted(set(state) - set(arch.expected_shapes))
    if extra:
        raise CheckpointError(f"not a NeuMF state_dict: unexpected keys {', '.join(extra[:5])}")
    return arch


def build_neumf(arch: Architecture) -> torch.nn.Module:
    """An untrained NeuMF module of the given shape (keys match ``Architecture.expected_shapes``)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class NeuMF(nn.Module):
        """NeuMF taking (user ids, item ids) as int64 tensors, returning scores of shape [B]."""

        def __init__(self) -> None:
            super().__init__()
            self.gmf_user_embedding = nn.Embedding(arch.num_users, arch.gmf_dim)
            self.gmf_item_embedding = nn.Embedding(arch.num_items, arch.gmf_dim)
            self.mlp_user_embedding = nn.Embedding(arch.num_users, arch.mlp_dim)
            self.mlp_item_embedding = nn.Embedding(arch.num_items, arch.mlp_dim)
            widths = (2 * arch.mlp_dim, *arch.tower)
            self.mlp_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
            self.output = nn.Linear(arch.gmf_dim + widths[-1], 1)

        def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
            gmf = F.normalize(self.gmf_user_embedding(users), dim=1) * F.normalize(
                self.gmf_item_embedding(items), dim=1
            )
            h = torch.cat([self.mlp_user_embedding(users), self.mlp_item_embedding(items)], dim=1)
            for layer in self.mlp_layers:
                h = torch.relu(layer(h))
            return torch.sigmoid(self.output(torch.cat([gmf, h], dim=1))).squeeze(1)

    return NeuMF()
