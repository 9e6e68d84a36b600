"""The Neo preflight checks traced graphs against TVM's real operator tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ncf_tui.engine.errors import BadInputError
from ncf_tui.engine.preflight import (
    DEFAULT_TVM_RELEASE,
    available_releases,
    check_operators,
    graph_operators,
    operator_table,
    preflight,
    preflight_file,
)
from ncf_tui.engine.variants import Variant


def test_tables_ship_for_every_release() -> None:
    releases = available_releases()
    assert releases[0] == "v0.7.0" and releases[-1] == "v0.16.0" and DEFAULT_TVM_RELEASE in releases
    # Why Neo rejects the pruned NeuMF: F.normalize's operator arrives only in TVM v0.15.0.
    assert "aten::linalg_vector_norm" not in operator_table("v0.14.0")
    assert "aten::linalg_vector_norm" in operator_table("v0.15.0")


def test_default_release_rejects_original_and_accepts_the_four(measured_variants: dict[str, Variant]) -> None:
    verdicts = {name: v.preflight for name, v in measured_variants.items()}
    assert verdicts["original"].missing == ("aten::linalg_vector_norm",)
    assert verdicts["original"].message == "The following operators are not implemented: ['aten::linalg_vector_norm']"
    for name in ("basic", "relu", "mlp", "full_manual_norm"):
        assert verdicts[name].accepted, (name, verdicts[name].missing)
        assert verdicts[name].message == ""
    assert "aten::sqrt" in verdicts["full_manual_norm"].operators
    assert "aten::relu" not in verdicts["basic"].operators


def test_newer_release_accepts_original(measured_variants: dict[str, Variant]) -> None:
    assert preflight(measured_variants["original"].traced, "v0.15.0").accepted


def test_in_place_forms_follow_their_plain_op() -> None:
    assert check_operators(("aten::relu_", "aten::embedding")).accepted
    assert check_operators(("aten::frobnicate_",)).missing == ("aten::frobnicate_",)


def test_nested_blocks_are_walked() -> None:
    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if bool(x.sum() > 0):
                return torch.erfinv(x)
            return x

    ops = graph_operators(torch.jit.script(Branchy()))
    assert "prim::If" in ops and "aten::erfinv" in ops


def test_unknown_release_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="unknown TVM release 'v9.9.9'"):
        operator_table("v9.9.9")


def test_preflight_file_reads_a_saved_model(tmp_path: Path, measured_variants: dict[str, Variant]) -> None:
    path = tmp_path / "model.pth"
    torch.jit.save(measured_variants["original"].traced, str(path))
    assert preflight_file(path).missing == ("aten::linalg_vector_norm",)
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(BadInputError, match="not a TorchScript model"):
        preflight_file(tmp_path / "junk.pth")
