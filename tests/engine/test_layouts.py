"""The checkpoints people really have: every kind loads to the sample's exact weights, the model's behaviour
is read (or asked for) and followed, and every malformed file gets one clear line."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from torch import nn

from ncf_tui.engine.checkpoint import Checkpoint, load_checkpoint, resolve_behaviour
from ncf_tui.engine.errors import BadInputError, CheckpointError, ExitCode
from ncf_tui.engine.layouts import load_key_map
from ncf_tui.engine.model import Architecture
from ncf_tui.engine.variants import build_variants, measure_fidelity, package, score

from . import kinds

KINDS = {
    "torch-prune": kinds.pruned_with_torch_prune,
    "training-loop": kinds.training_loop_dict,
    "lightning": kinds.lightning_dict,
    "data-parallel": kinds.data_parallel,
    "torch-compile": kinds.compiled,
    "stacked-prefixes": kinds.stacked_prefixes,
    "guoyang9": kinds.guoyang9,
    "safetensors": kinds.safetensors_file,
}


def _same_weights(ck: Checkpoint, sample_ckpt: Checkpoint) -> None:
    assert ck.architecture == sample_ckpt.architecture
    assert set(ck.state_dict) == set(sample_ckpt.state_dict)
    for k, v in sample_ckpt.state_dict.items():
        assert torch.equal(ck.state_dict[k], v), k


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_loads_to_the_samples_exact_weights(tmp_path: Path, sample_ckpt: Checkpoint, kind: str) -> None:
    ck = load_checkpoint(KINDS[kind](sample_ckpt, tmp_path))
    _same_weights(ck, sample_ckpt)
    assert ck.pruned_sparsity == sample_ckpt.pruned_sparsity
    expected = {
        "torch-prune": ("ncf-tui", ""),
        "training-loop": ("ncf-tui", ""),
        "lightning": ("ncf-tui", "model."),
        "data-parallel": ("ncf-tui", "module."),
        "torch-compile": ("ncf-tui", "_orig_mod."),
        "stacked-prefixes": ("ncf-tui", "model.module._orig_mod."),
        "guoyang9": ("guoyang9/NCF", ""),
        "safetensors": ("ncf-tui", ""),
    }[kind]
    assert (ck.layout, ck.stripped_prefix) == expected
    if kind == "torch-prune":
        assert ck.folded_masks == ["mlp_layers.0.weight", "mlp_layers.1.weight", "mlp_layers.2.weight", "output.weight"]
    if kind == "training-loop":
        assert ck.metadata["epoch"] == 12 and "optimizer_state_dict" in ck.metadata
    if kind == "guoyang9":  # its code documents both: no normalisation, raw logits
        assert (ck.gmf_norm, ck.output) == ("none", "logits")
        assert ck.behaviour_source == {"gmf_norm": "guoyang9/NCF layout", "output": "guoyang9/NCF layout"}
        assert "BCEWithLogitsLoss" in ck.layout_note
    else:
        assert (ck.gmf_norm, ck.output) == ("l2", "sigmoid")


def test_mask_zeros_of_torch_prune_count_as_pruned(
    tmp_path: Path, small_state_dict: tuple[Architecture, dict[str, torch.Tensor]]
) -> None:
    from torch.nn.utils import prune

    from ncf_tui.engine.model import build_neumf

    arch, _ = small_state_dict
    torch.manual_seed(3)
    model: Any = build_neumf(arch)  # its submodules are attributes torch only types as Tensor | Module
    prune.l1_unstructured(model.mlp_layers[0], name="weight", amount=0.4)
    prune.random_unstructured(model.output, name="weight", amount=0.5)
    masks = {"mlp_layers.0.weight": model.mlp_layers[0].weight_mask, "output.weight": model.output.weight_mask}
    origs = {"mlp_layers.0.weight": model.mlp_layers[0].weight_orig, "output.weight": model.output.weight_orig}
    torch.save(model.state_dict(), tmp_path / "p.pt")
    ck = load_checkpoint(tmp_path / "p.pt")
    by_name = {x.name: x for x in ck.layers}
    for name, mask in masks.items():
        assert torch.equal(ck.state_dict[name], origs[name].detach() * mask)
        assert by_name[name].zeros == int((mask == 0).sum())
    assert by_name["mlp_layers.0.weight"].sparsity == pytest.approx(0.4, abs=0.02)


def _guoyang_public(users: int, items: int) -> kinds.GuoyangNCF:
    """guoyang9/NCF's own widths (factor_num 8, num_layers 3), weights set by its seed: a NeuMF trained as most
    public code trains it, with no normalisation and raw logits."""
    torch.manual_seed(20170403)
    model = kinds.GuoyangNCF(users, items, factor_num=8, num_layers=3, dropout=0.1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model.eval()


def test_neumf_without_norm_with_logits_is_measured_against_the_right_original(
    tmp_path: Path, sample_ckpt: Checkpoint
) -> None:
    arch = sample_ckpt.architecture
    public = _guoyang_public(arch.num_users, arch.num_items)
    path = tmp_path / "guoyang9_public.pt"
    torch.save(public.state_dict(), path)
    ck = load_checkpoint(kinds._beside(sample_ckpt, path))
    assert (ck.layout, ck.gmf_norm, ck.output) == ("guoyang9/NCF", "none", "logits")
    assert ck.architecture.tower == (32, 16, 8) and ck.architecture.mlp_dim == 32

    variants = {v.name: v for v in build_variants(ck)}
    measure_fidelity(list(variants.values()), ck)
    original = variants["original"]
    # Nothing to normalise, so nothing Neo lacks: the original itself passes the preflight and competes.
    assert original.preflight.accepted and not original.preflight.missing
    assert "Neo accepts it" in original.description
    # Its self-fidelity is exact, and it is the public class's own forward, logits included.
    assert original.fidelity is not None
    assert original.fidelity.max_abs_diff == 0.0 and original.fidelity.top10_overlap == 1.0
    held = np.load(path.with_name(path.stem + ".heldout.npz"))
    users, items = held["users"].astype(np.int64), held["items"].astype(np.int64)
    with torch.no_grad():
        theirs = public(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    ours = score(original.traced, users, items)
    assert np.max(np.abs(ours - theirs)) <= 1e-6
    assert ours.min() < 0 or ours.max() > 1, "logits, not probabilities"
    # relu and full_manual_norm are the same model here (no normalisation to drop or rewrite).
    for name in ("relu", "full_manual_norm"):
        f = variants[name].fidelity
        assert f is not None, name
        assert f.max_abs_diff <= 1e-6 and f.top10_overlap == 1.0
    package(original, ck.architecture, tmp_path / "out")
    assert (original.sidecar["output"], original.sidecar["gmf_norm"]) == ("logits", "none")


def test_the_same_file_read_as_l2_sigmoid_differs(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    """The flags win over what the layout documents, and the variants follow them."""
    arch = sample_ckpt.architecture
    path = tmp_path / "g.pt"
    torch.save(_guoyang_public(arch.num_users, arch.num_items).state_dict(), path)
    ck = load_checkpoint(path)
    resolve_behaviour(ck, "l2", "sigmoid")
    assert ck.behaviour_source["gmf_norm"] == "--gmf-norm, over none from the guoyang9/NCF layout"
    variants = {v.name: v for v in build_variants(ck, names=("original", "full_manual_norm"))}
    assert variants["original"].preflight.missing == ("aten::linalg_vector_norm",)
    assert not variants["full_manual_norm"].preflight.missing


def test_yihong_chen_neumf_reads_the_mlp_half_first(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    arch = sample_ckpt.architecture
    sd = sample_ckpt.state_dict
    model = kinds.YihongNeuMF(arch.num_users, arch.num_items, arch.gmf_dim, (2 * arch.mlp_dim, *arch.tower)).eval()
    with torch.no_grad():
        model.embedding_user_mf.weight.copy_(sd["gmf_user_embedding.weight"])
        model.embedding_item_mf.weight.copy_(sd["gmf_item_embedding.weight"])
        model.embedding_user_mlp.weight.copy_(sd["mlp_user_embedding.weight"])
        model.embedding_item_mlp.weight.copy_(sd["mlp_item_embedding.weight"])
        for i, layer in enumerate(cast("Iterable[nn.Linear]", model.fc_layers)):
            layer.weight.copy_(sd[f"mlp_layers.{i}.weight"])
            layer.bias.copy_(sd[f"mlp_layers.{i}.bias"])
        w = sd["output.weight"]
        model.affine_output.weight.copy_(torch.cat([w[:, arch.gmf_dim :], w[:, : arch.gmf_dim]], dim=1))
        model.affine_output.bias.copy_(sd["output.bias"])
    torch.save(model.state_dict(), tmp_path / "yihong.pt")
    ck = load_checkpoint(tmp_path / "yihong.pt")
    _same_weights(ck, sample_ckpt)
    assert (ck.layout, ck.gmf_norm, ck.output) == ("yihong-chen/neural-collaborative-filtering", "none", "sigmoid")
    original = build_variants(ck, names=("original",))[0]
    users, items = np.arange(0, 900, 7), np.arange(0, 1600, 12)[: len(range(0, 900, 7))]
    with torch.no_grad():
        theirs = model(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    assert np.max(np.abs(score(original.traced, users, items) - theirs)) <= 1e-6


def test_recbole_layout_is_recognised(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    sd = sample_ckpt.state_dict
    names = {
        "gmf_user_embedding.weight": "user_mf_embedding.weight",
        "gmf_item_embedding.weight": "item_mf_embedding.weight",
        "mlp_user_embedding.weight": "user_mlp_embedding.weight",
        "mlp_item_embedding.weight": "item_mlp_embedding.weight",
        "output.weight": "predict_layer.weight",
        "output.bias": "predict_layer.bias",
    }
    for i in range(len(sample_ckpt.architecture.tower)):  # MLPLayers: Dropout, Linear, ReLU
        for part in ("weight", "bias"):
            names[f"mlp_layers.{i}.{part}"] = f"mlp_layers.mlp_layers.{3 * i + 1}.{part}"
    torch.save({names[k]: v for k, v in sd.items()}, tmp_path / "recbole.pth")
    ck = load_checkpoint(tmp_path / "recbole.pth")
    _same_weights(ck, sample_ckpt)
    assert (ck.layout, ck.gmf_norm, ck.output) == ("RecBole NeuMF", "none", "sigmoid")


def test_key_map_renames_and_reorders(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    path, key_map = kinds.renamed(sample_ckpt, tmp_path)
    ck = load_checkpoint(path, key_map=key_map)
    _same_weights(ck, sample_ckpt)
    assert ck.layout == "key map" and ck.key_map == str(key_map)
    # A key map says nothing of behaviour, and the file has no metadata: ncf-tui asks instead of guessing.
    assert (ck.gmf_norm, ck.output) == (None, None)
    with pytest.raises(BadInputError, match=r"pass --gmf-norm none\|l2 and --output sigmoid\|logits") as info:
        resolve_behaviour(ck)
    assert info.value.exit_code == ExitCode.BAD_INPUT and "\n" not in info.value.message
    with pytest.raises(BadInputError, match="--gmf-norm"):
        build_variants(ck)
    resolve_behaviour(ck, "l2", "sigmoid")
    assert ck.describe_behaviour() == "GMF norm l2 (--gmf-norm), output sigmoid (--output)"


def test_unknown_layout_prints_a_key_map_that_works_once_filled_in(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    path, _ = kinds.renamed(sample_ckpt, tmp_path)
    with pytest.raises(CheckpointError, match="not a NeuMF state_dict in a layout ncf-tui knows") as info:
        load_checkpoint(path)
    assert "\n" not in info.value.message and "--key-map" in info.value.message
    assert info.value.hint is not None
    template = info.value.hint.split("\n", 1)[1]
    names, order = load_key_map(_write(tmp_path / "as_printed.toml", template.replace('"?"', '"x"')))
    assert order == "gmf,mlp" and names["mlp_layers.0.weight"] == "net.deep.block0.weight"
    assert names["output.weight"] == "net.head.weight"  # the one Linear with a single output
    with pytest.raises(CheckpointError, match=r'still "\?"'):
        load_checkpoint(path, key_map=_write(tmp_path / "unfilled.toml", template))
    # Filled in by hand (the names the template could not guess, and the head's order), it loads.
    filled = template.replace('"gmf_user_embedding.weight" = "?"', '"gmf_user_embedding.weight" = "net.u_gmf.weight"')
    filled = filled.replace('"gmf_item_embedding.weight" = "?"', '"gmf_item_embedding.weight" = "net.i_gmf.weight"')
    filled = filled.replace('"mlp_user_embedding.weight" = "?"', '"mlp_user_embedding.weight" = "net.u_deep.weight"')
    filled = filled.replace('"mlp_item_embedding.weight" = "?"', '"mlp_item_embedding.weight" = "net.i_deep.weight"')
    filled = filled.replace('output_order = "gmf,mlp"', 'output_order = "mlp,gmf"')
    _same_weights(load_checkpoint(path, key_map=_write(tmp_path / "filled.toml", filled)), sample_ckpt)


def test_template_guesses_every_name_it_can_read(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    sd = kinds.sample_module(sample_ckpt).state_dict()
    torch.save({f"backbone.{k}": v for k, v in sd.items()}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "b.pt")
    assert info.value.hint is not None
    template = info.value.hint.split("\n", 1)[1]
    assert '= "?"' not in template
    _same_weights(load_checkpoint(tmp_path / "b.pt", key_map=_write(tmp_path / "k.toml", template)), sample_ckpt)


def test_behaviour_from_metadata_and_flags_over_it(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    path = kinds.safetensors_file(sample_ckpt, tmp_path, metadata={"gmf_norm": "none", "output": "logits"})
    ck = load_checkpoint(path)
    assert (ck.gmf_norm, ck.output, ck.behaviour_source["output"]) == ("none", "logits", "metadata")
    resolve_behaviour(ck, output="sigmoid")
    assert ck.behaviour_source["output"] == "--output, over logits from the metadata"
    assert ck.summary()["behaviour"] == (
        "GMF norm none (metadata), output sigmoid (--output, over logits from the metadata)"
    )
    torch.save({"state_dict": sample_ckpt.state_dict, "hyper_parameters": {"gmf_norm": "none"}}, tmp_path / "hp.pt")
    ck = load_checkpoint(tmp_path / "hp.pt")
    assert (ck.gmf_norm, ck.behaviour_source["gmf_norm"]) == ("none", "metadata hyper_parameters")
    assert ck.output == "sigmoid"  # the rest from the layout


def test_whole_pickled_model_is_refused_with_the_resave_line_and_never_runs(
    tmp_path: Path, sample_ckpt: Checkpoint
) -> None:
    marker = tmp_path / "ran"
    model = _Tripwire(marker)
    torch.save(model, tmp_path / "trip.pt")
    messages = []
    for path in (kinds.whole_module(sample_ckpt, tmp_path), tmp_path / "trip.pt"):
        with pytest.raises(CheckpointError, match="refused: a whole pickled model") as info:
            load_checkpoint(path)
        msg = info.value.message
        assert "\n" not in msg and info.value.hint is None
        assert f"torch.save(torch.load('{path.name}', weights_only=False).state_dict(), '" in msg
        messages.append(msg)
    assert "(tests.engine.kinds.SampleNeuMF)" in messages[0]
    assert "(tests.engine.test_layouts._Tripwire)" in messages[1]
    assert not marker.exists(), "the pickled module's code ran"


class _Tripwire(nn.Module):
    """A module whose unpickling would leave a file behind."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.marker = str(marker)

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).write_text("ran")
        super().__setstate__(state)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _prune_sd(sample_ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    from torch.nn.utils import prune

    model: Any = kinds.sample_module(sample_ckpt)  # NeuMF: torch types its submodules as Tensor | Module
    prune.custom_from_mask(model.mlp_layers[1], name="weight", mask=(model.mlp_layers[1].weight != 0).float())
    return dict(model.state_dict())


def _bad(tmp_path: Path, sample_ckpt: Checkpoint, kind: str) -> tuple[Path, Path | None]:
    sd = {k: v.clone() for k, v in sample_ckpt.state_dict.items()}
    p = tmp_path / f"{kind}.pt"
    key_map = None
    if kind == "mask-without-weight":
        pruned = _prune_sd(sample_ckpt)
        del pruned["mlp_layers.1.weight_orig"]
        torch.save(pruned, p)
    elif kind == "weight-orig-without-mask":
        pruned = _prune_sd(sample_ckpt)
        del pruned["mlp_layers.1.weight_mask"]
        torch.save(pruned, p)
    elif kind == "mask-of-another-shape":
        pruned = _prune_sd(sample_ckpt)
        pruned["mlp_layers.1.weight_mask"] = torch.ones(3, 3)
        torch.save(pruned, p)
    elif kind == "mask-not-binary":
        pruned = _prune_sd(sample_ckpt)
        pruned["mlp_layers.1.weight_mask"] = pruned["mlp_layers.1.weight_mask"] * 0.5
        torch.save(pruned, p)
    elif kind == "users-differ-between-paths":
        sd["mlp_user_embedding.weight"] = sd["mlp_user_embedding.weight"][:900]
        torch.save(sd, p)
    elif kind == "guoyang9-tower-does-not-chain":
        guo = torch.load(kinds.guoyang9(sample_ckpt, tmp_path), weights_only=True)
        guo["MLP_layers.4.weight"] = torch.zeros(16, 31)
        torch.save(guo, p)
    elif kind == "nan-in-a-prune-orig":
        pruned = _prune_sd(sample_ckpt)
        pruned["mlp_layers.1.weight_orig"][0, 0] = float("inf")
        torch.save(pruned, p)
    elif kind == "truncated-safetensors":
        full = kinds.safetensors_file(sample_ckpt, tmp_path)
        p = tmp_path / "cut.safetensors"
        p.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif kind == "safetensors-header-garbage":
        p = tmp_path / "junk.safetensors"
        p.write_bytes(b"\xff" * 8 + b"{not json")
    elif kind == "safetensors-int-weights":
        from safetensors.torch import save_file

        p = tmp_path / "int.safetensors"
        save_file({**sd, "output.bias": torch.zeros(1, dtype=torch.int32)}, str(p))
    elif kind == "safetensors-nan":
        from safetensors.torch import save_file

        sd["gmf_item_embedding.weight"][3, 1] = float("nan")
        p = tmp_path / "nan.safetensors"
        save_file(sd, str(p))
    elif kind == "truncated-zip":
        data = sample_ckpt.path.read_bytes()
        p.write_bytes(data[: int(len(data) * 0.9)])
    elif kind == "zip-without-data-pkl":
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("archive/version", "3\n")
    elif kind == "bad-metadata":
        torch.save({"state_dict": sd, "gmf_norm": "cosine"}, p)
    elif kind in ("key-map-not-toml", "key-map-missing-tensor", "key-map-unknown-name", "key-map-bad-order"):
        path, good = kinds.renamed(sample_ckpt, tmp_path)
        p, key_map = path, tmp_path / f"{kind}.toml"
        text = good.read_text()
        key_map.write_text(
            {
                "key-map-not-toml": "this = is = not toml",
                "key-map-missing-tensor": text.replace("net.head.bias", "net.head.b"),
                "key-map-unknown-name": text + '"user_bias.weight" = "net.head.bias"\n',
                "key-map-bad-order": text.replace('"mlp,gmf"', '"mlp-first"'),
            }[kind]
        )
    return p, key_map


BAD = {
    "mask-without-weight": r"weight_mask \(a torch\.nn\.utils\.prune mask\) has no mlp_layers\.1\.weight_orig",
    "weight-orig-without-mask": r"mlp_layers\.1\.weight_orig has no mlp_layers\.1\.weight_mask",
    "mask-of-another-shape": r"weight_mask has shape \(3, 3\) but mlp_layers\.1\.weight_orig has \(16, 32\)",
    "mask-not-binary": "holds values other than 0 and 1",
    "users-differ-between-paths": r"mlp_user_embedding\.weight has shape \(900, 16\), expected \(943, 16\)",
    "guoyang9-tower-does-not-chain": r"MLP_layers\.4\.weight \(ncf-tui's mlp_layers\.1\.weight\) has shape \(16, 31\)",
    "nan-in-a-prune-orig": r"mlp_layers\.1\.weight_orig holds 1 NaN or infinite",
    "truncated-safetensors": "not a readable safetensors file",
    "safetensors-header-garbage": "not a readable safetensors file",
    "safetensors-int-weights": "output.bias has dtype torch.int32",
    "safetensors-nan": r"gmf_item_embedding\.weight holds 1 NaN",
    "truncated-zip": "not a readable PyTorch checkpoint",
    "zip-without-data-pkl": "not a readable PyTorch checkpoint",
    "bad-metadata": r"its metadata says gmf_norm = 'cosine'; expected none or l2",
    "key-map-not-toml": "not valid TOML",
    "key-map-missing-tensor": r"the checkpoint has no 'net\.head\.b' \(for output\.bias\)",
    "key-map-unknown-name": r"user_bias\.weight is not one of ncf-tui's names",
    "key-map-bad-order": r"output_order = 'mlp-first'",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_malformed_checkpoints_get_one_clear_line(tmp_path: Path, sample_ckpt: Checkpoint, kind: str) -> None:
    path, key_map = _bad(tmp_path, sample_ckpt, kind)
    with pytest.raises(CheckpointError, match=BAD[kind]) as info:
        load_checkpoint(path, key_map=key_map)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert "\n" not in info.value.message


def test_summary_says_how_it_was_read(tmp_path: Path, sample_ckpt: Checkpoint) -> None:
    s = load_checkpoint(kinds.pruned_with_torch_prune(sample_ckpt, tmp_path)).summary()
    assert s["layout"] == "ncf-tui" and s["gmf_norm"] == "l2" and s["output"] == "sigmoid"
    assert s["behaviour"] == "GMF norm l2, output sigmoid (ncf-tui layout)"
    assert len(s["folded_masks"]) == 4
    json.dumps(s)  # JSON-ready
