"""The five variants: Neo's input contract, exact equivalence of the manual normalisation, fidelity, packaging."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ncf_tui.engine.checkpoint import Checkpoint
from ncf_tui.engine.errors import BadInputError
from ncf_tui.engine.metrics import SCORE_NOISE, auc, hit_rate, score_diff_text, top_k_shares
from ncf_tui.engine.model import Architecture, build_neumf
from ncf_tui.engine.variants import (
    MAX_EXACT_FLOAT32_ID,
    VARIANT_NAMES,
    Fidelity,
    Variant,
    build_variants,
    check_id_range,
    eval_pairs_for,
    export_variants,
    fidelity_rank_key,
    file_sha256,
    package,
    score,
)


def test_every_variant_takes_float32_input0_and_returns_scores(measured_variants: dict[str, Variant]) -> None:
    x = torch.tensor([[0, 0], [942, 1681], [5, 7]], dtype=torch.float32)
    for name, v in measured_variants.items():
        graph_inputs = list(v.traced.graph.inputs())[1:]
        assert [i.debugName().split(".")[0] for i in graph_inputs] == ["input0"], name
        out = v.traced(x)
        assert out.dtype == torch.float32 and out.shape == (3,), name
        assert bool(((out >= 0) & (out <= 1)).all()), name
        assert "prim::If" not in v.preflight.operators, name  # traced, never scripted


def test_variants_follow_a_batch_size_they_were_not_traced_with(measured_variants: dict[str, Variant]) -> None:
    x = torch.stack([torch.arange(64) % 943, torch.arange(64) % 1682], dim=1).float()
    assert measured_variants["full_manual_norm"].traced(x).shape == (64,)


def test_original_matches_the_trained_neumf(sample_ckpt: Checkpoint, measured_variants: dict[str, Variant]) -> None:
    model = build_neumf(sample_ckpt.architecture).eval()
    model.load_state_dict(sample_ckpt.state_dict)
    users = torch.arange(0, 943, 7)
    items = (users * 13) % 1682
    with torch.no_grad():
        expected = model(users, items)
    got = measured_variants["original"].traced(torch.stack([users, items], dim=1).float())
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_manual_normalisation_equals_original_to_float32_precision(
    sample_ckpt: Checkpoint, measured_variants: dict[str, Variant]
) -> None:
    pairs = eval_pairs_for(sample_ckpt)
    ref = score(measured_variants["original"].traced, pairs.users, pairs.items)
    got = score(measured_variants["full_manual_norm"].traced, pairs.users, pairs.items)
    assert np.max(np.abs(ref - got)) < 1e-6
    f = measured_variants["full_manual_norm"].fidelity
    assert f is not None
    assert f.max_abs_diff < 1e-6 and f.top10_overlap == 1.0


def test_fidelity_is_measured_not_assumed(measured_variants: dict[str, Variant]) -> None:
    ref = measured_variants["original"].fidelity
    assert ref is not None
    assert ref.max_abs_diff == 0.0 and ref.top10_overlap == 1.0 and ref.pairs == 943 * 100
    # The simplified variants really lose something on this checkpoint, and the figures say so.
    for name in ("basic", "relu", "mlp"):
        f = measured_variants[name].fidelity
        assert f is not None, name
        assert f.max_abs_diff > 0.1 and f.top10_overlap < 0.9, name
        assert f.auc is not None and f.hr_at_10 is not None, name
        assert 0.0 <= f.auc <= 1.0 and 0.0 <= f.hr_at_10 <= 1.0
    ranked = sorted(measured_variants.values(), key=fidelity_rank_key)
    assert ranked[0].name == "original" and ranked[1].name == "full_manual_norm"


def test_auc_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, 200).astype(np.float32)  # many ties
    y = (rng.random(200) < 0.3).astype(np.float32)
    pos, neg = s[y == 1], s[y == 0]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(s, y) == pytest.approx(brute)


def test_hit_rate_counts_ties_against_the_positive() -> None:
    users = np.repeat(np.arange(2), 12)
    labels = np.tile(np.r_[1.0, np.zeros(11)], 2).astype(np.float32)
    flat = np.full(24, 0.5, dtype=np.float32)  # every item ties: no hit
    assert hit_rate(flat, users, labels) == 0.0
    good = np.tile(np.r_[0.9, np.linspace(0.1, 0.2, 11)], 2).astype(np.float32)
    assert hit_rate(good, users, labels) == 1.0


def test_top_k_shares_split_the_places_left_among_tied_items() -> None:
    s = np.array([0.9, 0.8, 0.5, 0.5, 0.5, 0.5, 0.1], dtype=np.float32)
    shares = top_k_shares(s, k=4)  # two clear places, two left for four tied items
    assert shares.tolist() == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.0]
    assert shares.sum() == pytest.approx(4)
    assert top_k_shares(np.full(20, 1.0, dtype=np.float32), k=10).tolist() == [0.5] * 20
    assert top_k_shares(s, k=10).tolist() == [1.0] * 7  # fewer items than places: every item is in


def test_top_k_overlap_does_not_depend_on_the_order_of_tied_items() -> None:
    rng = np.random.default_rng(5)
    ref = rng.random(200).astype(np.float32)
    saturated = np.where(ref > 0.3, np.float32(1.0), ref)  # a variant that saturates most scores to 1.0
    order = rng.permutation(200)
    one = top_k_shares(saturated) @ top_k_shares(ref)
    shuffled = top_k_shares(saturated[order]) @ top_k_shares(ref[order])
    assert one == pytest.approx(shuffled)
    # The expected overlap: the true top 10 are all among the ~140 tied items, each in with 10/140.
    tied = int((saturated == 1.0).sum())
    assert one / 10 == pytest.approx(10 / tied)


def test_score_differences_within_float32_rounding_read_and_rank_the_same(
    measured_variants: dict[str, Variant],
) -> None:
    # full_manual_norm is original's function through other operators: a few float32 steps apart, by an
    # amount that differs between machines (1.2e-07 on one, 2.7e-07 on another), never up to SCORE_NOISE.
    f = measured_variants["full_manual_norm"].fidelity
    assert f is not None and 0 < f.max_abs_diff < SCORE_NOISE and score_diff_text(f.max_abs_diff) == "<1e-06"
    assert [score_diff_text(d) for d in (0.0, 1.2e-7, 2.7e-7, 1e-6, 0.0123, 0.83)] == [
        "0", "<1e-06", "<1e-06", "1e-06", "0.012", "0.83"
    ]  # fmt: skip
    # Within rounding, the simpler variant wins whichever of the two a machine's arithmetic put lower.
    for manual, mlp in ((1.2e-7, 2.7e-7), (2.7e-7, 1.2e-7)):
        pair = [
            replace(measured_variants["full_manual_norm"], fidelity=Fidelity(max_abs_diff=manual, top10_overlap=1.0)),
            replace(measured_variants["mlp"], fidelity=Fidelity(max_abs_diff=mlp, top10_overlap=1.0)),
        ]
        assert [v.name for v in sorted(pair, key=fidelity_rank_key)] == ["mlp", "full_manual_norm"]
    # Beyond it, the smaller difference wins.
    pair = [
        replace(measured_variants["full_manual_norm"], fidelity=Fidelity(max_abs_diff=2e-6, top10_overlap=1.0)),
        replace(measured_variants["mlp"], fidelity=Fidelity(max_abs_diff=3e-6, top10_overlap=1.0)),
    ]
    assert [v.name for v in sorted(pair, key=fidelity_rank_key)] == ["full_manual_norm", "mlp"]


def test_ids_beyond_float32_exactness_are_refused() -> None:
    check_id_range(Architecture(MAX_EXACT_FLOAT32_ID, 10, 2, 2, (2,)))
    with pytest.raises(BadInputError, match="exceed 2\\*\\*24 = 16,777,216"):
        check_id_range(Architecture(MAX_EXACT_FLOAT32_ID + 1, 10, 2, 2, (2,)))


def test_package_layout_sidecar_and_reproducibility(
    tmp_path: Path, sample_ckpt: Checkpoint, measured_variants: dict[str, Variant]
) -> None:
    v = measured_variants["full_manual_norm"]
    first = package(v, sample_ckpt.architecture, tmp_path / "a")
    second = package(v, sample_ckpt.architecture, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes(), "archives must be byte-for-byte reproducible"
    with tarfile.open(first) as tar:
        assert sorted(tar.getnames()) == ["model.pth", "ncf-model.json"]
        model_file, sidecar_file = tar.extractfile("model.pth"), tar.extractfile("ncf-model.json")
        assert model_file is not None and sidecar_file is not None  # regular files, not links or folders
        model_bytes = model_file.read()
        sidecar = json.loads(sidecar_file.read())
    assert sidecar["variant"] == "full_manual_norm" and sidecar["input_name"] == "input0"
    assert json.loads(sidecar["data_input_config"]) == {"input0": [1, 2]}
    assert sidecar["user_id_range"] == [0, 942] and sidecar["item_id_range"] == [0, 1681]
    assert sidecar["framework"] == "PYTORCH" and sidecar["compiled"] is False
    import hashlib

    assert sidecar["model_sha256"] == hashlib.sha256(model_bytes).hexdigest()
    loaded = torch.jit.load(io.BytesIO(model_bytes))
    x = torch.tensor([[1.0, 2.0], [900.0, 1600.0]])
    torch.testing.assert_close(loaded(x), v.traced(x))
    assert not list(tmp_path.glob("**/*.tmp")), "no temporary file left behind"


def test_export_variants_writes_every_archive(tmp_path: Path) -> None:
    out = export_variants(out_dir=tmp_path, names=("basic", "full_manual_norm"))
    assert set(out) == {"basic", "full_manual_norm"}
    for name, path in out.items():
        assert path == tmp_path / name / "model.tar.gz" and path.stat().st_size > 1000
        assert len(file_sha256(path)) == 64


def test_build_variants_rejects_unknown_names(sample_ckpt: Checkpoint) -> None:
    with pytest.raises(BadInputError, match="unknown variant 'fancy'"):
        build_variants(sample_ckpt, names=("fancy",))
    assert VARIANT_NAMES == ("original", "basic", "relu", "mlp", "full_manual_norm")
