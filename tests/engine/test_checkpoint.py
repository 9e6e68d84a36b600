"""Checkpoints: found, loaded safely, described; every bad file refused with one clear line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ncf_tui.engine.checkpoint import Checkpoint, find_checkpoints, load_checkpoint, resolve_checkpoint
from ncf_tui.engine.errors import CheckpointError, ExitCode
from ncf_tui.engine.model import Architecture

from . import hostile


def test_sample_is_described(sample_ckpt: Checkpoint) -> None:
    arch = sample_ckpt.architecture
    assert (arch.num_users, arch.num_items, arch.gmf_dim, arch.mlp_dim, arch.tower) == (
        943,
        1682,
        8,
        16,
        (32, 16, 8),
    )
    s = sample_ckpt.summary()
    assert s["params"] == sum(layer["params"] for layer in s["layers"])
    by_name = {layer["name"]: layer for layer in s["layers"]}
    for name in ("mlp_layers.0.weight", "mlp_layers.1.weight", "mlp_layers.2.weight", "output.weight"):
        assert by_name[name]["sparsity"] == pytest.approx(0.5, abs=0.01), name
    assert by_name["gmf_user_embedding.weight"]["sparsity"] < 0.01
    assert s["pruned_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert 0 < s["sparsity"] < s["pruned_sparsity"]
    assert s["file_size"] == sample_ckpt.path.stat().st_size
    assert "hr_at_10" in s["metadata"]


def test_bare_state_dict_and_wrapped_forms_load(
    tmp_path: Path, small_state_dict: tuple[Architecture, dict[str, torch.Tensor]]
) -> None:
    arch, sd = small_state_dict
    torch.save(sd, tmp_path / "bare.pt")
    torch.save({"model_state_dict": sd, "epoch": 3, "note": "fine-tuned"}, tmp_path / "wrapped.pth")
    bare = load_checkpoint(tmp_path / "bare.pt")
    wrapped = load_checkpoint(tmp_path / "wrapped.pth")
    assert bare.architecture == wrapped.architecture == arch
    assert wrapped.metadata == {"epoch": 3, "note": "fine-tuned"}
    assert set(bare.state_dict) == set(arch.expected_shapes)


def test_find_checkpoints_filters_and_sorts(
    tmp_path: Path, small_state_dict: tuple[Architecture, dict[str, torch.Tensor]]
) -> None:
    _, sd = small_state_dict
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for rel in ("b/two.pth", "a.pt", ".hidden/skip.pt"):
        torch.save(sd, tmp_path / rel)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_checkpoints(tmp_path)] == ["a.pt", "b/two.pth"]
    with pytest.raises(CheckpointError, match="holds 2 checkpoints"):
        resolve_checkpoint(tmp_path)
    assert resolve_checkpoint(tmp_path / "b") == tmp_path / "b" / "two.pth"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d, ctx: d / "missing.pt", "no such file or directory"),
        (lambda d, ctx: (d / "empty").mkdir() or d / "empty", "no .pt, .pth or .safetensors checkpoint"),
        (lambda d, ctx: hostile.truncated(d / "t.pt", ctx["sample"]), "truncated or corrupt"),
        (lambda d, ctx: hostile.not_a_zip(d / "n.pt"), "not a readable PyTorch checkpoint"),
        (lambda d, ctx: hostile.zip_bomb_like(d / "z.pt"), "not a readable PyTorch checkpoint"),
        (lambda d, ctx: hostile.other_model(d / "o.pt"), "not a NeuMF state_dict in a layout ncf-tui knows"),
        (lambda d, ctx: hostile.whole_module(d / "m.pt"), r"whole pickled model \(tests\.engine\.hostile\.WholeModule"),
        (lambda d, ctx: hostile.with_nan(d / "nan.pt", ctx["sd"]), "NaN or infinite"),
        (lambda d, ctx: (d / "zero.pt").write_bytes(b"") or d / "zero.pt", "the file is empty"),
    ],
    ids=[
        "missing",
        "empty-dir",
        "truncated",
        "not-a-zip",
        "foreign-zip",
        "other-model",
        "whole-module",
        "nan",
        "empty-file",
    ],
)
def test_bad_checkpoints_are_refused(
    tmp_path: Path,
    sample_path: Path,
    small_state_dict: tuple[Architecture, dict[str, torch.Tensor]],
    make: Callable[[Path, dict[str, Any]], Path],
    expected: str,
) -> None:
    path = make(tmp_path, {"sample": sample_path, "sd": small_state_dict[1]})
    with pytest.raises(CheckpointError, match=expected) as info:
        load_checkpoint(path)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert "\n" not in info.value.message


@pytest.mark.parametrize("writer", [hostile.pickle_with_code, hostile.raw_pickle_with_code])
def test_pickle_with_code_is_refused_and_never_runs(tmp_path: Path, writer: Callable[[Path, Path], Path]) -> None:
    marker = tmp_path / "pwned"
    path = writer(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match=r"refused: its pickle would call (os|posix)\.system"):
        load_checkpoint(path)
    assert not marker.exists(), "the payload ran"


def test_wrong_dtype_is_refused(tmp_path: Path, small_state_dict: tuple[Architecture, dict[str, torch.Tensor]]) -> None:
    _, sd = small_state_dict
    bad = dict(sd)
    bad["output.bias"] = torch.zeros(1, dtype=torch.int64)
    torch.save(bad, tmp_path / "int.pt")
    with pytest.raises(CheckpointError, match="output.bias has dtype torch.int64"):
        load_checkpoint(tmp_path / "int.pt")


def test_half_precision_weights_are_widened(
    tmp_path: Path, small_state_dict: tuple[Architecture, dict[str, torch.Tensor]]
) -> None:
    _, sd = small_state_dict
    torch.save({k: v.half() for k, v in sd.items()}, tmp_path / "half.pt")
    ck = load_checkpoint(tmp_path / "half.pt")
    assert all(t.dtype == torch.float32 for t in ck.state_dict.values())
