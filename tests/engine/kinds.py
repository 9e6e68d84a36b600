"""Checkpoints made from the bundled sample's weights the ways people really save them.

Each writer takes the sample (a loaded ``Checkpoint``) and a folder, saves a file as the tool in question would
(real ``torch.nn.utils.prune``, a real ``nn.DataParallel``, ``torch.compile``'s wrapper...), copies the sample's
held-out pairs beside it under the name ncf-tui looks for, and returns the path. The public NeuMF classes are
written here the way their projects define them (attribute names, module order, forward), not copied.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ncf_tui.engine.checkpoint import Checkpoint
from ncf_tui.engine.model import build_neumf


class SampleNeuMF(nn.Module):
    """ncf-tui's NeuMF at module level, so ``torch.save(model)`` can pickle it (a whole-module checkpoint)."""

    def __init__(self, users: int, items: int, gmf_dim: int, mlp_dim: int, tower: tuple[int, ...]) -> None:
        super().__init__()
        self.gmf_user_embedding = nn.Embedding(users, gmf_dim)
        self.gmf_item_embedding = nn.Embedding(items, gmf_dim)
        self.mlp_user_embedding = nn.Embedding(users, mlp_dim)
        self.mlp_item_embedding = nn.Embedding(items, mlp_dim)
        widths = (2 * mlp_dim, *tower)
        self.mlp_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.output = nn.Linear(gmf_dim + widths[-1], 1)


class GuoyangNCF(nn.Module):
    """guoyang9/NCF's ``NCF`` (model.py) in its NeuMF form: ``MLP_layers`` is Dropout, Linear, ReLU per layer and
    ``predict_layer`` reads ``cat(GMF, MLP)``; ``forward`` returns the raw prediction (trained with
    BCEWithLogitsLoss). ``factor_num``/``num_layers`` give that project's widths; ``widths`` overrides them so
    the sample's own shape fits."""

    def __init__(
        self,
        user_num: int,
        item_num: int,
        factor_num: int,
        num_layers: int = 3,
        dropout: float = 0.0,
        widths: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        # guoyang9's widths: input_size = factor_num * 2 ** (num_layers - i), each Linear halving it.
        sizes = widths or tuple(factor_num * (2 ** (num_layers - i)) for i in range(num_layers + 1))
        mlp_dim = sizes[0] // 2
        self.embed_user_GMF = nn.Embedding(user_num, factor_num)
        self.embed_item_GMF = nn.Embedding(item_num, factor_num)
        self.embed_user_MLP = nn.Embedding(user_num, mlp_dim)
        self.embed_item_MLP = nn.Embedding(item_num, mlp_dim)
        modules: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            modules += [nn.Dropout(p=dropout), nn.Linear(a, b), nn.ReLU()]
        self.MLP_layers = nn.Sequential(*modules)
        self.predict_layer = nn.Linear(factor_num + sizes[-1], 1)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        output_gmf = self.embed_user_GMF(user) * self.embed_item_GMF(item)
        interaction = torch.cat((self.embed_user_MLP(user), self.embed_item_MLP(item)), -1)
        output_mlp = self.MLP_layers(interaction)
        out: torch.Tensor = self.predict_layer(torch.cat((output_gmf, output_mlp), -1))
        return out.view(-1)


class YihongNeuMF(nn.Module):
    """yihong-chen/neural-collaborative-filtering's ``NeuMF`` (src/neumf.py): ``fc_layers`` then ReLU,
    ``affine_output`` reads ``cat(MLP, MF)`` (the MLP half first) and ``forward`` ends in a sigmoid."""

    def __init__(self, num_users: int, num_items: int, latent_dim_mf: int, layers: tuple[int, ...]) -> None:
        super().__init__()
        self.embedding_user_mlp = nn.Embedding(num_users, layers[0] // 2)
        self.embedding_item_mlp = nn.Embedding(num_items, layers[0] // 2)
        self.embedding_user_mf = nn.Embedding(num_users, latent_dim_mf)
        self.embedding_item_mf = nn.Embedding(num_items, latent_dim_mf)
        self.fc_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(layers))
        self.affine_output = nn.Linear(layers[-1] + latent_dim_mf, 1)
        self.logistic = nn.Sigmoid()

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        mlp = torch.cat([self.embedding_user_mlp(user), self.embedding_item_mlp(item)], dim=-1)
        mf = self.embedding_user_mf(user) * self.embedding_item_mf(item)
        for layer in self.fc_layers:
            mlp = torch.relu(layer(mlp))
        out: torch.Tensor = self.logistic(self.affine_output(torch.cat([mlp, mf], dim=-1)))
        return out.view(-1)


def sample_module(ckpt: Checkpoint) -> nn.Module:
    """The sample as ncf-tui's own NeuMF module, weights loaded."""
    model = build_neumf(ckpt.architecture)
    model.load_state_dict(ckpt.state_dict)
    return model.eval()


def _beside(ckpt: Checkpoint, path: Path) -> Path:
    held = ckpt.path.with_name(ckpt.path.stem + ".heldout.npz")
    shutil.copyfile(held, path.with_name(path.stem + ".heldout.npz"))
    return path


def canonical(ckpt: Checkpoint, d: Path) -> Path:
    path = d / "canonical.pt"
    shutil.copyfile(ckpt.path, path)
    return _beside(ckpt, path)


def pruned_with_torch_prune(ckpt: Checkpoint, d: Path) -> Path:
    """``torch.nn.utils.prune`` on the tower and output, saved without ``prune.remove``: ``weight_orig`` and
    ``weight_mask``. The masks are the sample's own zeros, so the folded weights are the sample's."""
    from torch.nn.utils import prune

    model: Any = sample_module(ckpt)  # NeuMF: torch types its submodules as Tensor | Module
    for layer in [*model.mlp_layers, model.output]:
        prune.custom_from_mask(layer, name="weight", mask=(layer.weight != 0).float())
    path = d / "torch_prune.pt"
    torch.save(model.state_dict(), path)
    return _beside(ckpt, path)


def training_loop_dict(ckpt: Checkpoint, d: Path) -> Path:
    model = sample_module(ckpt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.tensor([0, 1]), torch.tensor([0, 1])).sum().backward()
    opt.step()  # an optimizer state with real tensors in it
    model.load_state_dict(ckpt.state_dict)
    path = d / "training_loop.pth"
    torch.save(
        {"epoch": 12, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": 0.31},
        path,
    )
    return _beside(ckpt, path)


class LightningLike(nn.Module):
    """What a LightningModule holding the net as ``self.model`` saves: keys prefixed ``model.``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.model = net


def lightning_dict(ckpt: Checkpoint, d: Path) -> Path:
    module = LightningLike(sample_module(ckpt))
    path = d / "lightning.ckpt.pt"
    torch.save(
        {
            "epoch": 11,
            "global_step": 4200,
            "pytorch-lightning_version": "2.4.0",
            "state_dict": module.state_dict(),
            "hyper_parameters": {"lr": 0.01, "gmf_dim": 8},
            "optimizer_states": [],
            "lr_schedulers": [],
        },
        path,
    )
    return _beside(ckpt, path)


def data_parallel(ckpt: Checkpoint, d: Path) -> Path:
    path = d / "data_parallel.pt"
    torch.save(nn.DataParallel(sample_module(ckpt)).state_dict(), path)
    return _beside(ckpt, path)


def _compile(module: nn.Module) -> nn.Module:
    """``torch.compile`` of a module returns an ``OptimizedModule`` (a module); torch annotates only a callable."""
    return cast(nn.Module, torch.compile(module))


def compiled(ckpt: Checkpoint, d: Path) -> Path:
    """``torch.compile(model).state_dict()``: keys prefixed ``_orig_mod.`` (compiling happens only on a call,
    so the wrapper's state_dict needs no compiler)."""
    path = d / "compiled.pt"
    torch.save(_compile(sample_module(ckpt)).state_dict(), path)
    return _beside(ckpt, path)


def stacked_prefixes(ckpt: Checkpoint, d: Path) -> Path:
    """DataParallel around a compiled module inside a Lightning-style wrapper: ``model.module._orig_mod.``."""
    path = d / "stacked.pt"
    inner = nn.DataParallel(_compile(sample_module(ckpt)))
    torch.save({"state_dict": LightningLike(inner).state_dict()}, path)
    return _beside(ckpt, path)


def guoyang9(ckpt: Checkpoint, d: Path) -> Path:
    """The sample's weights in guoyang9/NCF's class (its layout: Linear layers at MLP_layers.1, .4, .7)."""
    arch = ckpt.architecture
    widths = (2 * arch.mlp_dim, *arch.tower)
    model = GuoyangNCF(arch.num_users, arch.num_items, arch.gmf_dim, widths=widths)
    sd = ckpt.state_dict
    with torch.no_grad():
        model.embed_user_GMF.weight.copy_(sd["gmf_user_embedding.weight"])
        model.embed_item_GMF.weight.copy_(sd["gmf_item_embedding.weight"])
        model.embed_user_MLP.weight.copy_(sd["mlp_user_embedding.weight"])
        model.embed_item_MLP.weight.copy_(sd["mlp_item_embedding.weight"])
        linears = [m for m in model.MLP_layers if isinstance(m, nn.Linear)]
        for i, layer in enumerate(linears):
            layer.weight.copy_(sd[f"mlp_layers.{i}.weight"])
            layer.bias.copy_(sd[f"mlp_layers.{i}.bias"])
        model.predict_layer.weight.copy_(sd["output.weight"])
        model.predict_layer.bias.copy_(sd["output.bias"])
    path = d / "guoyang9.pt"
    torch.save(model.state_dict(), path)
    return _beside(ckpt, path)


def safetensors_file(ckpt: Checkpoint, d: Path, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    path = d / "sample.safetensors"
    save_file({k: v.contiguous() for k, v in sample_module(ckpt).state_dict().items()}, str(path), metadata=metadata)
    return _beside(ckpt, path)


KEY_MAP_NAMES = {
    "gmf_user_embedding.weight": "net.u_gmf.weight",
    "gmf_item_embedding.weight": "net.i_gmf.weight",
    "mlp_user_embedding.weight": "net.u_deep.weight",
    "mlp_item_embedding.weight": "net.i_deep.weight",
    "output.weight": "net.head.weight",
    "output.bias": "net.head.bias",
}


def renamed(ckpt: Checkpoint, d: Path) -> tuple[Path, Path]:
    """The sample under names no known layout uses (``net.`` is not a wrapper prefix), and a key map for it.
    The head reads the MLP half first, so the map also says ``output_order = "mlp,gmf"``."""
    arch = ckpt.architecture
    sd = ckpt.state_dict
    names = dict(KEY_MAP_NAMES)
    for i in range(len(arch.tower)):
        for part in ("weight", "bias"):
            names[f"mlp_layers.{i}.{part}"] = f"net.deep.block{i}.{part}"
    theirs = {names[k]: v for k, v in sd.items() if k != "output.weight"}
    w = sd["output.weight"]
    theirs["net.head.weight"] = torch.cat([w[:, arch.gmf_dim :], w[:, : arch.gmf_dim]], dim=1)
    path = d / "renamed.pt"
    torch.save(theirs, path)
    key_map = d / "renamed.keymap.toml"
    key_map.write_text(
        'output_order = "mlp,gmf"\n' + "".join(f'"{ours}" = "{t}"\n' for ours, t in names.items()), encoding="utf-8"
    )
    return _beside(ckpt, path), key_map


def whole_module(ckpt: Checkpoint, d: Path) -> Path:
    arch = ckpt.architecture
    model = SampleNeuMF(arch.num_users, arch.num_items, arch.gmf_dim, arch.mlp_dim, arch.tower)
    model.load_state_dict(ckpt.state_dict)
    path = d / "whole_model.pt"
    torch.save(model, path)
    return _beside(ckpt, path)
