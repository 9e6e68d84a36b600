"""The samples: pruned NeuMFs trained for real on synthetic implicit feedback, with their held-out pairs.

``python -m ncf_tui.engine.sample [--out DIR]`` makes the bundled one again. It is MovieLens-100K shaped (943
users x 1,682 items) so a newcomer sees the product work without a dataset download.

``python -m ncf_tui.engine.sample --scale ml-1m`` makes one at MovieLens-1M's scale, deterministically and
without a download: 6,040 users x 3,706 items (MovieLens-1M's counts), embeddings of 64, tower 256-128-64-32,
50% magnitude-pruned. It is over 2 MB, so it is never committed: it goes to the user's data folder
(``$NCF_TUI_DATA_DIR``, else platformdirs' ``user_data_dir("ncf-tui")``, under ``samples/``), where the wizard's
file picker offers it. Its embeddings learn with sparse gradients (``SparseAdam``) so it trains in seconds.

Both are made the same way:

1. Synthetic implicit feedback with a fixed seed: users and items get 8-dimensional taste vectors and items
   a long-tailed popularity; each user interacts with 20-200 items drawn by softmax(taste . item + pop).
2. Leave-one-out split (the NCF protocol): one positive per user is held out with 99 sampled negatives.
3. NeuMF (GMF dim 8, MLP dim 16, tower 32,16,8) trained with BCE and 4 negatives per positive.
4. 50% magnitude pruning of every weight matrix of the MLP tower and the output layer (each of its two
   input halves on its own, so neither path is pruned away), then a short
   fine-tune with the masks held, as the original project did.

The checkpoint records what it is in its metadata (``sample_spec``), and a test checks the committed file
against this spec: shapes, sparsity, and the recorded HR@10 within tolerance.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

SAMPLE_NAME = "sample_ncf_pruned.pt"
HELDOUT_NAME = "sample_ncf_pruned.heldout.npz"
ML1M_NAME = "sample_ncf_ml1m_pruned.pt"
ML1M_HELDOUT_NAME = "sample_ncf_ml1m_pruned.heldout.npz"
DATA_DIR_ENV = "NCF_TUI_DATA_DIR"
SAMPLE_SPEC: dict[str, Any] = {
    "num_users": 943,
    "num_items": 1682,
    "gmf_dim": 8,
    "mlp_dim": 16,
    "tower": [32, 16, 8],
    "prune_amount": 0.5,
    "negatives_per_positive": 4,
    "eval_negatives": 99,
    "epochs": 12,
    "finetune_epochs": 2,
    "seed": 20261130,
}


ML1M_SPEC: dict[str, Any] = {
    "num_users": 6040,
    "num_items": 3706,
    "gmf_dim": 64,
    "mlp_dim": 64,
    "tower": [256, 128, 64, 32],
    "prune_amount": 0.5,
    "negatives_per_positive": 4,
    "eval_negatives": 99,
    "epochs": 1,
    "finetune_epochs": 1,
    "seed": 20261201,
    "interactions_per_user": [20, 60],
    "batch_size": 4096,
    "lr": 0.02,
    "optimizer": "sparse-adam",
}
SCALES: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "ml-100k": (SAMPLE_SPEC, SAMPLE_NAME, HELDOUT_NAME, "MovieLens-100K shaped (943 users x 1,682 items)"),
    "ml-1m": (ML1M_SPEC, ML1M_NAME, ML1M_HELDOUT_NAME, "MovieLens-1M shaped (6,040 users x 3,706 items)"),
}


def sample_checkpoint_path() -> Path:
    """The bundled checkpoint, from a source checkout or an installed wheel alike."""
    return Path(str(resources.files("ncf_tui.assets").joinpath(SAMPLE_NAME)))


def samples_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where generated samples go: ``$NCF_TUI_DATA_DIR/samples``, else the user's data folder."""
    import os

    found = (os.environ if env is None else env).get(DATA_DIR_ENV)
    if found:
        return Path(found) / "samples"
    import platformdirs

    return Path(platformdirs.user_data_dir("ncf-tui")) / "samples"


def ml1m_checkpoint_path(env: Mapping[str, str] | None = None) -> Path:
    """Where ``--scale ml-1m`` writes its checkpoint (it may not exist yet)."""
    return samples_dir(env) / ML1M_NAME


def _make_interactions(spec: dict[str, Any]) -> tuple[list[Any], Any]:
    import numpy as np

    rng = np.random.default_rng(spec["seed"])
    n_u, n_i = spec["num_users"], spec["num_items"]
    taste_u = rng.normal(0, 1, (n_u, 8))
    taste_i = rng.normal(0, 1, (n_i, 8))
    pop = -1.2 * np.log(np.arange(1, n_i + 1))[rng.permutation(n_i)] * 0.5
    per_user = []
    for u in range(n_u):
        logits = taste_u[u] @ taste_i.T / 1.5 + pop
        p = np.exp(logits - logits.max())
        p /= p.sum()
        n = int(rng.integers(*spec.get("interactions_per_user", (20, 200))))
        per_user.append(rng.choice(n_i, size=n, replace=False, p=p))
    return per_user, rng


def train(spec: dict[str, Any] = SAMPLE_SPEC, log: Any = print) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train, prune and fine-tune the sample; returns (checkpoint dict, held-out arrays)."""
    import numpy as np
    import torch
    from torch.nn.utils import prune

    from .model import Architecture, build_neumf

    most = int(spec.get("interactions_per_user", (20, 200))[1])
    if spec["num_items"] - most < spec["eval_negatives"]:  # else the negatives below could never be drawn
        raise ValueError(f"{spec['num_items']} items leave too few negatives for {spec['eval_negatives']} per user")
    torch.manual_seed(spec["seed"])
    per_user, rng = _make_interactions(spec)
    n_u, n_i = spec["num_users"], spec["num_items"]
    train_u, train_i, held_u, held_i, held_l = [], [], [], [], []
    for u, items in enumerate(per_user):
        held = items[-1]
        train_u.extend([u] * (len(items) - 1))
        train_i.extend(items[:-1].tolist())
        seen = set(items.tolist())
        negs: list[int] = []
        taken: set[int] = set()
        while len(negs) < spec["eval_negatives"]:
            j = int(rng.integers(0, n_i))
            if j not in seen and j not in taken:
                negs.append(j)
                taken.add(j)
        held_u.extend([u] * (1 + len(negs)))
        held_i.extend([int(held), *negs])
        held_l.extend([1] + [0] * len(negs))
    # Every (user, item) seen, as one sorted code per pair: a negative is kept when its code is not among them
    # (the same answer a set of pairs gives, at numpy's speed).
    seen_codes = np.unique(
        np.concatenate([u * n_i + np.asarray(items, dtype=np.int64) for u, items in enumerate(per_user)])
    )
    pos_u = np.array(train_u)
    pos_i = np.array(train_i)

    arch = Architecture(n_u, n_i, spec["gmf_dim"], spec["mlp_dim"], tuple(spec["tower"]))
    model: Any = build_neumf(arch)
    batch = int(spec.get("batch_size", 2048))
    opts: list[Any]
    if spec.get("optimizer") == "sparse-adam":
        # Only the rows a batch touches get a gradient: SparseAdam updates those, Adam the dense layers.
        emb = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
        for m in emb:
            m.sparse = True
        emb_params = [m.weight for m in emb]
        dense = [p for p in model.parameters() if all(p is not e for e in emb_params)]
        lr = float(spec.get("lr", 1e-2))
        opts = [torch.optim.SparseAdam(emb_params, lr=lr), torch.optim.Adam(dense, lr=lr)]
    else:
        opts = [torch.optim.Adam(model.parameters(), lr=1e-2)]
    loss_fn = torch.nn.BCELoss()

    def epoch_data() -> tuple[Any, Any, Any]:
        k = spec["negatives_per_positive"]
        neg_u = np.repeat(pos_u, k)
        neg_i = rng.integers(0, n_i, len(neg_u))
        codes = neg_u.astype(np.int64) * n_i + neg_i
        pos = np.minimum(np.searchsorted(seen_codes, codes), len(seen_codes) - 1)
        keep = seen_codes[pos] != codes
        u = np.concatenate([pos_u, neg_u[keep]])
        i = np.concatenate([pos_i, neg_i[keep]])
        y = np.concatenate([np.ones(len(pos_u)), np.zeros(int(keep.sum()))]).astype(np.float32)
        order = rng.permutation(len(u))
        return torch.from_numpy(u[order]), torch.from_numpy(i[order]), torch.from_numpy(y[order])

    def run_epochs(n: int, masks: dict[str, Any] | None = None) -> None:
        model.train()
        for ep in range(n):
            u, i, y = epoch_data()
            total = 0.0
            for s in range(0, len(u), batch):
                for opt in opts:
                    opt.zero_grad()
                loss = loss_fn(model(u[s : s + batch], i[s : s + batch]), y[s : s + batch])
                loss.backward()
                for opt in opts:
                    opt.step()
                if masks:
                    with torch.no_grad():
                        for name, p in model.named_parameters():
                            if name in masks:
                                p.mul_(masks[name])
                total += float(loss.detach()) * len(y[s : s + batch])
            log(f"epoch {ep + 1}/{n}: loss {total / len(u):.4f}")

    hu, hi, hl = np.array(held_u), np.array(held_i), np.array(held_l, dtype=np.float32)

    def hr10() -> float:
        from .metrics import hit_rate

        model.eval()
        users, items = torch.from_numpy(hu), torch.from_numpy(hi)
        with torch.inference_mode():
            s = torch.cat([model(users[a : a + 65536], items[a : a + 65536]) for a in range(0, len(hu), 65536)])
        return hit_rate(s.numpy(), hu, hl)

    run_epochs(spec["epochs"])
    hr_dense = hr10()
    log(f"dense HR@10 {hr_dense:.4f}")
    for m in model.mlp_layers:
        prune.l1_unstructured(m, name="weight", amount=spec["prune_amount"])
        prune.remove(m, "weight")
    # The output layer reads the GMF half and the MLP half of one concatenation; pruning it as one tensor can
    # zero a whole path (its weights have different scales), so each half loses its smallest 50% on its own.
    w = model.output.weight.detach()
    mask = torch.ones_like(w)
    for a, b in ((0, arch.gmf_dim), (arch.gmf_dim, w.shape[1])):
        seg = w[:, a:b].abs().flatten()
        k = round(spec["prune_amount"] * seg.numel())
        if k:
            cut = seg.kthvalue(k).values
            mask[:, a:b] = (w[:, a:b].abs() > cut).float()
    prune.custom_from_mask(model.output, name="weight", mask=mask)
    prune.remove(model.output, "weight")
    masks = {n: (p != 0).float() for n, p in model.named_parameters() if n.endswith(".weight") and "emb" not in n}
    hr_pruned = hr10()
    log(f"pruned HR@10 {hr_pruned:.4f}")
    run_epochs(spec["finetune_epochs"], masks)
    hr_final = hr10()
    log(f"fine-tuned HR@10 {hr_final:.4f}")
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding):
            m.sparse = False
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    shaped = next((d for sp, _, _, d in SCALES.values() if sp is spec), f"{n_u:,} users x {n_i:,} items")
    ckpt = {
        "state_dict": state,
        "sample_spec": json.dumps(spec, sort_keys=True),
        "dataset": f"synthetic implicit feedback, {shaped}",
        "pruning": f"{spec['prune_amount']:.0%} L1 magnitude, MLP tower and output weights",
        "hr_at_10_dense": round(hr_dense, 4),
        "hr_at_10_pruned": round(hr_pruned, 4),
        "hr_at_10": round(hr_final, 4),
        "made_by": "python -m ncf_tui.engine.sample",
    }
    heldout = {"users": hu.astype(np.int16), "items": hi.astype(np.int16), "labels": hl.astype(np.int8)}
    return ckpt, heldout


def main(argv: list[str] | None = None) -> int:
    import time

    import numpy as np
    import torch

    ap = argparse.ArgumentParser(prog="python -m ncf_tui.engine.sample", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--scale",
        choices=tuple(SCALES),
        default="ml-100k",
        help="ml-100k: the bundled sample (default); ml-1m: MovieLens-1M's scale, into the user's data folder",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder to write the sample to (default: assets for ml-100k, the user's data folder for ml-1m)",
    )
    args = ap.parse_args(argv)
    spec, name, heldout_name, shaped = SCALES[args.scale]
    out = args.out or (Path("assets") if args.scale == "ml-100k" else samples_dir())
    if out.exists() and not out.is_dir():
        ap.error(f"--out {out}: a file, not a folder")
    torch.set_num_threads(1)  # one thread: the same bytes on every machine
    started = time.monotonic()
    ckpt, heldout = train(spec)
    out.mkdir(parents=True, exist_ok=True)
    # Written beside the final names and renamed into place: an interrupted run leaves no half file.
    tmp_ckpt, tmp_held = out / f".{name}.tmp", out / f".{heldout_name}.tmp"
    try:
        torch.save(ckpt, tmp_ckpt)
        with tmp_held.open("wb") as fh:
            np.savez_compressed(fh, **heldout)
        tmp_ckpt.replace(out / name)
        tmp_held.replace(out / heldout_name)
    finally:
        tmp_ckpt.unlink(missing_ok=True)
        tmp_held.unlink(missing_ok=True)
    took = time.monotonic() - started
    size = (out / name).stat().st_size
    print(f"wrote {out / name} ({size / 1e6:.1f} MB, {shaped}) and {out / heldout_name} in {took:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
