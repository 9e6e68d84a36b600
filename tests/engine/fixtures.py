"""Fixtures for the engine's model half: the bundled sample, its variants, and hostile checkpoint files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import torch

    from ncf_tui.engine.checkpoint import Checkpoint
    from ncf_tui.engine.model import Architecture
    from ncf_tui.engine.variants import Variant


@pytest.fixture(scope="session")
def sample_path() -> Path:
    from ncf_tui.engine.sample import sample_checkpoint_path

    return sample_checkpoint_path()


@pytest.fixture(scope="session")
def sample_ckpt(sample_path: Path) -> Checkpoint:
    from ncf_tui.engine.checkpoint import load_checkpoint

    return load_checkpoint(sample_path)


@pytest.fixture(scope="session")
def measured_variants(sample_ckpt: Checkpoint) -> dict[str, Variant]:
    """All five variants of the sample, traced, preflighted and measured once per session."""
    from ncf_tui.engine.variants import build_variants, measure_fidelity

    variants = build_variants(sample_ckpt)
    measure_fidelity(variants, sample_ckpt)
    return {v.name: v for v in variants}


@pytest.fixture
def small_state_dict() -> tuple[Architecture, dict[str, torch.Tensor]]:
    """A tiny random NeuMF state_dict (7 users x 11 items) for shape and error tests."""
    from ncf_tui.engine.model import Architecture, build_neumf

    arch = Architecture(num_users=7, num_items=11, gmf_dim=4, mlp_dim=3, tower=(8, 4))
    return arch, build_neumf(arch).state_dict()
