"""The bundled sample: a small pruned NeuMF trained for real on synthetic implicit feedback.

Run ``python -m ncf_tui.engine.sample [--out DIR]`` to make it again. It is MovieLens-100K shaped (943 users x
1,682 items) so a newcomer sees the product work without a dataset download:

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
from importlib import resources
from pathlib import Path
from typing import Any

SAMPLE_NAME = "sample_ncf_pruned.pt"
HELDOUT_NAME = "sample_ncf_pruned.heldout.npz"
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


def sample_checkpoint_path() -> Path:
    """The bundled checkpoint, from a source checkout or an installed wheel alike."""
    return Path(str(resources.files("ncf_tui.assets").joinpath(SAMPLE_NAME)))


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
        n = int(rng.integers(20, 200))
        per_user.append(rng.choice(n_i, size=n, replace=False, p=p))
    return per_user, rng


def train(spec: dict[str, Any] = SAMPLE_SPEC, log: Any = print) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train, prune and fine-tune the sample; returns (checkpoint dict, held-out arrays)."""
    import numpy as np
    import torch
    from torch.nn.utils import prune

    from .model import Architecture, build_neumf

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
        while len(negs) < spec["eval_negatives"]:
            j = int(rng.integers(0, n_i))
            if j not in seen and j not in negs:
                negs.append(j)
        held_u.extend([u] * (1 + len(negs)))
        held_i.extend([int(held), *negs])
        held_l.extend([1] + [0] * len(negs))
    seen_pairs = {(u, int(i)) for u, items in enumerate(per_user) for i in items}
    pos_u = np.array(train_u)
    pos_i = np.array(train_i)

    arch = Architecture(n_u, n_i, spec["gmf_dim"], spec["mlp_dim"], tuple(spec["tower"]))
    model: Any = build_neumf(arch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.BCELoss()

    def epoch_data() -> tuple[Any, Any, Any]:
        k = spec["negatives_per_positive"]
        neg_u = np.repeat(pos_u, k)
        neg_i = rng.integers(0, n_i, len(neg_u))
        keep = np.array([(int(a), int(b)) not in seen_pairs for a, b in zip(neg_u, neg_i, strict=True)])
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
            for s in range(0, len(u), 2048):
                opt.zero_grad()
                loss = loss_fn(model(u[s : s + 2048], i[s : s + 2048]), y[s : s + 2048])
                loss.backward()
                opt.step()
                if masks:
                    with torch.no_grad():
                        for name, p in model.named_parameters():
                            if name in masks:
                                p.mul_(masks[name])
                total += float(loss.detach()) * len(y[s : s + 2048])
            log(f"epoch {ep + 1}/{n}: loss {total / len(u):.4f}")

    hu, hi, hl = np.array(held_u), np.array(held_i), np.array(held_l, dtype=np.float32)

    def hr10() -> float:
        from .variants import hit_rate

        model.eval()
        with torch.no_grad():
            s = model(torch.from_numpy(hu), torch.from_numpy(hi)).numpy()
        return hit_rate(s, hu, hl)

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
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ckpt = {
        "state_dict": state,
        "sample_spec": json.dumps(spec, sort_keys=True),
        "dataset": "synthetic implicit feedback, MovieLens-100K shaped (943 users x 1,682 items)",
        "pruning": f"{spec['prune_amount']:.0%} L1 magnitude, MLP tower and output weights",
        "hr_at_10_dense": round(hr_dense, 4),
        "hr_at_10_pruned": round(hr_pruned, 4),
        "hr_at_10": round(hr_final, 4),
        "made_by": "python -m ncf_tui.engine.sample",
    }
    heldout = {"users": hu.astype(np.int16), "items": hi.astype(np.int16), "labels": hl.astype(np.int8)}
    return ckpt, heldout


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    ap = argparse.ArgumentParser(prog="python -m ncf_tui.engine.sample", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("assets"), help="folder to write the sample to (default: assets)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the same bytes on every machine
    ckpt, heldout = train()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, args.out / SAMPLE_NAME)
    np.savez_compressed(args.out / HELDOUT_NAME, **heldout)
    print(f"wrote {args.out / SAMPLE_NAME} and {args.out / HELDOUT_NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
