"""The Neo-compatible variants of a NeuMF checkpoint, traced, checked, measured and packaged.

A model structure Neo accepts is found by trying simplified versions of the pruned model.
Every variant here is built from the *same* trained weights, so what it loses is measured, not guessed:

- ``original``: the model as trained, GMF path normalised with ``F.normalize`` (rejected by Neo's TVM for
  ``aten::linalg_vector_norm``); kept as the reference every other variant is measured against. A NeuMF
  trained without normalisation (``gmf_norm`` ``none``, He et al.'s and most public code) has no
  ``F.normalize`` to reject: its ``original`` passes the preflight and competes with the others;
- ``basic``: embeddings and linear layers only: no ReLU in the tower, no normalisation;
- ``relu``: ``basic`` plus the ReLU tower: both paths, GMF left unnormalised;
- ``mlp``: the full MLP path alone (NCF's "MLP" model): GMF dropped, output restricted to the tower's half;
- ``full_manual_norm``: the full model with ``F.normalize`` written as ``x / sqrt(sum(x*x) + eps)``, which
  traces to operators every Neo release knows and equals ``original`` to float32 precision.

Every variant ends as the checkpoint's model does (``output``): a sigmoid score, or the raw logit of a model
trained with ``BCEWithLogitsLoss``; the fidelity figures compare like with like.

Each is wrapped so its one input is what Neo requires: a float32 tensor ``input0`` of shape [B, 2] (user id,
item id), cast to int64 inside. float32 holds every whole number up to 2**24 = 16,777,216 exactly, so ids up
to that bound survive the cast; larger models are refused. Tracing uses ``torch.jit.trace`` (never
``script``: Neo rejects the ``prim::If`` that scripting keeps).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import names
from .checkpoint import Checkpoint, load_checkpoint, resolve_behaviour
from .errors import BadInputError
from .metrics import TOP_K, auc, faithfulness_key, hit_rate, top_k_shares
from .model import NORM_EPS, Architecture
from .preflight import DEFAULT_TVM_RELEASE, PreflightResult, preflight

if TYPE_CHECKING:
    import numpy as np
    import torch

VARIANT_NAMES: tuple[str, ...] = names.VARIANT_NAMES
"""The variants, from ``names`` (which imports nothing, for the TUI); neo, pipeline and headless read it here."""


DESCRIPTIONS = {
    "original": "as trained, F.normalize on the GMF path (reference)",
    "basic": "embeddings + linear layers only",
    "relu": "embeddings + linear + ReLU tower, no normalisation",
    "mlp": "full MLP path alone (NCF-MLP)",
    "full_manual_norm": "full model, normalisation written by hand",
}
DESCRIPTIONS_NO_NORM = {
    **DESCRIPTIONS,
    "original": "as trained, no GMF normalisation (reference; Neo accepts it)",
    "relu": "embeddings + linear + ReLU tower (as original: nothing to normalise)",
    "full_manual_norm": "full model (as original: no normalisation to rewrite)",
}
INPUT_NAME = "input0"
MAX_EXACT_FLOAT32_ID = 2**24
SIDECAR_NAME = "ncf-model.json"
MODEL_FILE = "model.pth"


@dataclass
class Fidelity:
    """How close a variant's scores are to ``original``'s, and how good each is on held-out pairs."""

    max_abs_diff: float
    top10_overlap: float
    auc: float | None = None
    hr_at_10: float | None = None
    pairs: int = 0
    users_ranked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_abs_diff": float(f"{self.max_abs_diff:.3g}"),
            "top10_overlap": round(self.top10_overlap, 4),
            "auc": None if self.auc is None else round(self.auc, 4),
            "hr_at_10": None if self.hr_at_10 is None else round(self.hr_at_10, 4),
            "pairs": self.pairs,
            "users_ranked": self.users_ranked,
        }


@dataclass
class Variant:
    name: str
    traced: torch.jit.ScriptModule
    preflight: PreflightResult
    fidelity: Fidelity | None = None
    archive: Path | None = None
    sidecar: dict[str, Any] = field(default_factory=dict)
    gmf_norm: str = "l2"
    output: str = "sigmoid"

    @property
    def description(self) -> str:
        return (DESCRIPTIONS if self.gmf_norm == "l2" else DESCRIPTIONS_NO_NORM)[self.name]


def build_module(name: str, ckpt: Checkpoint) -> torch.nn.Module:
    """The variant ``name`` as an eager module taking ``input0`` (float32 [B, 2]) and returning scores [B]."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    if name not in VARIANT_NAMES:
        raise BadInputError(f"unknown variant {name!r}; choose from {', '.join(VARIANT_NAMES)}")
    resolve_behaviour(ckpt)  # refuses to build anything on a guess
    arch = ckpt.architecture
    gmf_norm, sigmoid = ckpt.gmf_norm == "l2", ckpt.output == "sigmoid"
    sd = ckpt.state_dict
    tower_out = arch.tower[-1]

    def emb(key: str) -> nn.Embedding:
        e: nn.Embedding = nn.Embedding.from_pretrained(sd[key].clone(), freeze=True)
        return e

    class NeoVariant(nn.Module):
        eps: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.use_gmf = name != "mlp"
            self.relu = name != "basic"
            self.norm = name if name in ("original", "full_manual_norm") and gmf_norm else ""
            self.sigmoid = sigmoid
            self.gmf_user = emb("gmf_user_embedding.weight")
            self.gmf_item = emb("gmf_item_embedding.weight")
            self.mlp_user = emb("mlp_user_embedding.weight")
            self.mlp_item = emb("mlp_item_embedding.weight")
            self.tower = nn.ModuleList()
            for i in range(len(arch.tower)):
                w = sd[f"mlp_layers.{i}.weight"]
                layer = nn.Linear(w.shape[1], w.shape[0])
                layer.weight.data.copy_(w)
                layer.bias.data.copy_(sd[f"mlp_layers.{i}.bias"])
                self.tower.append(layer)
            out_w = sd["output.weight"]
            if not self.use_gmf:
                out_w = out_w[:, arch.gmf_dim :]
            self.output = nn.Linear(out_w.shape[1], 1)
            self.output.weight.data.copy_(out_w)
            self.output.bias.data.copy_(sd["output.bias"])
            # A float32 tensor, not a Python float: traced as float64 it trips TVM's converter.
            self.register_buffer("eps", torch.tensor(NORM_EPS, dtype=torch.float32))
            assert tower_out == self.output.weight.shape[1] - (arch.gmf_dim if self.use_gmf else 0)

        def normalise(self, x: torch.Tensor) -> torch.Tensor:
            if self.norm == "original":
                return F.normalize(x, dim=1)
            if self.norm == "full_manual_norm":
                return x / torch.sqrt((x * x).sum(dim=1, keepdim=True) + self.eps)
            return x

        def forward(self, input0: torch.Tensor) -> torch.Tensor:
            ids = input0.to(torch.int64)
            users = ids[:, 0]
            items = ids[:, 1]
            h = torch.cat([self.mlp_user(users), self.mlp_item(items)], dim=1)
            for layer in self.tower:
                h = layer(h)
                if self.relu:
                    h = torch.relu(h)
            if self.use_gmf:
                gmf = self.normalise(self.gmf_user(users)) * self.normalise(self.gmf_item(items))
                h = torch.cat([gmf, h], dim=1)
            out: torch.Tensor = self.output(h)
            if self.sigmoid:
                out = torch.sigmoid(out)
            return out.squeeze(1)

    return NeoVariant().eval()


def trace(module: torch.nn.Module, arch: Architecture) -> torch.jit.ScriptModule:
    """Trace with a two-row example (a batch of 1 lets the tracer fold the batch size into constants)."""
    import torch

    example = torch.tensor([[0.0, 0.0], [arch.num_users - 1.0, arch.num_items - 1.0]], dtype=torch.float32)
    with torch.no_grad():
        traced: torch.jit.ScriptModule = torch.jit.trace(module, example, check_trace=True)
    return traced


def check_id_range(arch: Architecture) -> None:
    for what, n in (("users", arch.num_users), ("items", arch.num_items)):
        if n > MAX_EXACT_FLOAT32_ID:
            raise BadInputError(
                f"{n:,} {what} exceed 2**24 = {MAX_EXACT_FLOAT32_ID:,}, the largest id float32 holds exactly; "
                "Neo's float32 input0 cannot carry them"
            )


def build_variants(
    ckpt: Checkpoint,
    names: Sequence[str] = VARIANT_NAMES,
    release: str = DEFAULT_TVM_RELEASE,
) -> list[Variant]:
    """Trace each named variant and run the offline Neo preflight on it."""
    check_id_range(ckpt.architecture)
    out = []
    for name in names:
        out.append(make_variant(name, ckpt, release))
    return out


def make_variant(name: str, ckpt: Checkpoint, release: str = DEFAULT_TVM_RELEASE) -> Variant:
    """One variant of ``ckpt``: built, traced and preflighted, scoring as the checkpoint's model does."""
    traced = trace(build_module(name, ckpt), ckpt.architecture)
    return Variant(
        name=name,
        traced=traced,
        preflight=preflight(traced, release),
        gmf_norm=str(ckpt.gmf_norm),
        output=str(ckpt.output),
    )


# ---------------------------------------------------------------------------------------------- fidelity


@dataclass(frozen=True)
class EvalPairs:
    """Held-out (user, item, label) pairs; groups of one positive then negatives per user when ``grouped``."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray | None
    grouped: bool


def eval_pairs_for(ckpt: Checkpoint, n_random: int = 20_000, seed: int = 0) -> EvalPairs:
    """The checkpoint's own held-out pairs (``<stem>.heldout.npz`` beside it), else random unlabelled pairs."""
    import numpy as np

    side = ckpt.path.with_name(ckpt.path.stem + ".heldout.npz")
    if side.is_file():
        try:
            with np.load(side, allow_pickle=False) as z:
                users, items, labels = z["users"], z["items"], z["labels"]
        except (OSError, KeyError, ValueError) as exc:
            raise BadInputError(f"{side}: unreadable held-out pairs ({exc})") from None
        arch = ckpt.architecture
        if users.max(initial=0) >= arch.num_users or items.max(initial=0) >= arch.num_items:
            raise BadInputError(f"{side}: ids out of range for {arch.describe()}")
        return EvalPairs(users.astype(np.int64), items.astype(np.int64), labels.astype(np.float32), grouped=True)
    rng = np.random.default_rng(seed)
    arch = ckpt.architecture
    return EvalPairs(
        rng.integers(0, arch.num_users, n_random),
        rng.integers(0, arch.num_items, n_random),
        None,
        grouped=False,
    )


def score(traced: torch.jit.ScriptModule, users: np.ndarray, items: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """Scores for pairs, batched, through the traced module exactly as Neo would feed it."""
    import numpy as np
    import torch

    pairs = np.stack([users, items], axis=1).astype(np.float32)
    out = []
    with torch.inference_mode():
        for start in range(0, len(pairs), batch):
            out.append(traced(torch.from_numpy(pairs[start : start + batch])).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def top_k_shares_of(traced: torch.jit.ScriptModule, users: np.ndarray, num_items: int, k: int = TOP_K) -> np.ndarray:
    """Each user's chance per item of being in their top k over all items, shape [len(users), num_items]."""
    import numpy as np

    all_items = np.arange(num_items)
    return np.stack([top_k_shares(score(traced, np.full(num_items, u), all_items), k) for u in users])


def measure_fidelity(
    variants: Sequence[Variant],
    ckpt: Checkpoint,
    pairs: EvalPairs | None = None,
    users_to_rank: int = 64,
    seed: int = 0,
    on_measured: Callable[[Variant], None] | None = None,
) -> None:
    """Fill ``variant.fidelity`` for each variant, measured against ``original`` (built here if absent)."""
    import numpy as np

    pairs = pairs if pairs is not None else eval_pairs_for(ckpt)
    reference = next((v for v in variants if v.name == "original"), None)
    ref_traced = reference.traced if reference else trace(build_module("original", ckpt), ckpt.architecture)
    ref_scores = score(ref_traced, pairs.users, pairs.items)
    rng = np.random.default_rng(seed)
    n_users = min(users_to_rank, ckpt.architecture.num_users)
    rank_users = rng.choice(ckpt.architecture.num_users, size=n_users, replace=False)
    ref_top = top_k_shares_of(ref_traced, rank_users, ckpt.architecture.num_items)
    for v in variants:
        s = ref_scores if v is reference else score(v.traced, pairs.users, pairs.items)
        top = ref_top if v is reference else top_k_shares_of(v.traced, rank_users, ckpt.architecture.num_items)
        overlap = float(np.mean(np.sum(top * ref_top, axis=1)) / TOP_K)
        fid = Fidelity(
            max_abs_diff=float(np.max(np.abs(s - ref_scores))) if len(s) else 0.0,
            top10_overlap=overlap,
            pairs=len(s),
            users_ranked=n_users,
        )
        if pairs.labels is not None:
            fid.auc = auc(s, pairs.labels)
            if pairs.grouped:
                fid.hr_at_10 = hit_rate(s, pairs.users, pairs.labels)
        v.fidelity = fid
        if on_measured is not None:
            on_measured(v)


def fidelity_rank_key(v: Variant) -> tuple[float, float, int]:
    """Sort key: most faithful first (overlap, then score difference), ties to the simplest variant."""
    f = v.fidelity
    if f is None:
        return (0.0, float("inf"), VARIANT_NAMES.index(v.name))
    return (*faithfulness_key(f.top10_overlap, f.max_abs_diff), VARIANT_NAMES.index(v.name))


# --------------------------------------------------------------------------------------------- packaging


def sidecar_for(v: Variant, arch: Architecture, model_sha256: str) -> dict[str, Any]:
    import torch

    return {
        "format": "ncf-tui/1",
        "variant": v.name,
        "description": v.description,
        "input_name": INPUT_NAME,
        "input_shape": [1, 2],
        "input_dtype": "float32",
        "data_input_config": json.dumps({INPUT_NAME: [1, 2]}),
        "num_users": arch.num_users,
        "num_items": arch.num_items,
        "user_id_range": [0, arch.num_users - 1],
        "item_id_range": [0, arch.num_items - 1],
        "framework": "PYTORCH",
        "torch_version": torch.__version__.split("+")[0],
        "model_sha256": model_sha256,
        "compiled": False,
        "preflight": {"release": v.preflight.release, "missing": list(v.preflight.missing)},
        "output": v.output,
        "gmf_norm": v.gmf_norm,
    }


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def package(v: Variant, arch: Architecture, out_dir: Path) -> Path:
    """Write ``out_dir/model.tar.gz`` (``model.pth`` and the sidecar at the root), byte-for-byte reproducible.

    The archive is written beside its final name and renamed into place, so a crash never leaves half a file.
    """
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.jit.save(v.traced, buf)
    model_bytes = buf.getvalue()
    sha = hashlib.sha256(model_bytes).hexdigest()
    v.sidecar = sidecar_for(v, arch, sha)
    target = out_dir / "model.tar.gz"
    tmp = out_dir / f".model.tar.gz.{time.monotonic_ns()}.tmp"
    try:
        with (
            tmp.open("wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _tar_add(tar, MODEL_FILE, model_bytes)
            _tar_add(tar, SIDECAR_NAME, json.dumps(v.sidecar, indent=2, sort_keys=True).encode())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    v.archive = target
    return target


def export_variants(
    checkpoint: Path | None = None,
    out_dir: Path = Path("output/models/pruned"),
    names: Sequence[str] = VARIANT_NAMES,
) -> dict[str, Path]:
    """Trace and package each named variant: ``out_dir/<name>/model.tar.gz`` (no fidelity measured)."""
    from .sample import sample_checkpoint_path

    ckpt = load_checkpoint(checkpoint or sample_checkpoint_path())
    return {v.name: package(v, ckpt.architecture, Path(out_dir) / v.name) for v in build_variants(ckpt, names)}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
