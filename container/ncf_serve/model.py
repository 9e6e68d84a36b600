"""The model side of the server: read the sidecar, pick a runtime, score pairs and rank items.

Nothing here knows about HTTP. Torch is imported inside the functions that need it so that the
gunicorn master (which only validates the model directory) never initialises torch before it forks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIDECAR_NAME = "ncf-model.json"
MODEL_NAME = "model.pth"
MODEL_NAMES = (MODEL_NAME, "compiled.pt")
"""A Neo archive names the compiled model model.pth (Neo today) or compiled.pt (older Neo); looked for in order."""
SIDECAR_FORMAT = "ncf-tui/1"
# Rows per forward when ranking: bounds memory for catalogues far larger than MovieLens.
RANK_CHUNK = 8192


class ModelDirError(Exception):
    """The model directory cannot be served; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Sidecar:
    """What `ncf-model.json` tells the server (docs/CONTRACTS.md, "Model archive")."""

    variant: str
    input_name: str
    num_users: int
    num_items: int
    user_id_range: tuple[int, int]
    item_id_range: tuple[int, int]
    model_sha256: str
    compiled: bool
    compiler: str


def _int_pair(raw: dict[str, Any], key: str) -> tuple[int, int]:
    value = raw.get(key)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[0] > value[1]
        or value[0] < 0
    ):
        raise ModelDirError(f"{SIDECAR_NAME}: {key} must be [low, high] with 0 <= low <= high, got {value!r}")
    return value[0], value[1]


def read_sidecar(model_dir: Path) -> Sidecar:
    """Parse and check the sidecar; every failure names the field so the build log is enough to fix it."""
    path = model_dir / SIDECAR_NAME
    if not path.is_file():
        raise ModelDirError(f"{path} is missing: the build fetches {SIDECAR_NAME} into the model directory")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelDirError(f"{path} must hold a JSON object")
    if raw.get("format") != SIDECAR_FORMAT:
        raise ModelDirError(f"{path}: format must be {SIDECAR_FORMAT!r}, got {raw.get('format')!r}")
    counts = {}
    for key in ("num_users", "num_items"):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ModelDirError(f"{path}: {key} must be a positive integer, got {value!r}")
        counts[key] = value
    users = _int_pair(raw, "user_id_range")
    items = _int_pair(raw, "item_id_range")
    if users[1] >= counts["num_users"] or items[1] >= counts["num_items"]:
        raise ModelDirError(f"{path}: id ranges {users} / {items} exceed num_users / num_items")
    return Sidecar(
        variant=str(raw.get("variant", "unknown")),
        input_name=str(raw.get("input_name", "input0")),
        num_users=counts["num_users"],
        num_items=counts["num_items"],
        user_id_range=users,
        item_id_range=items,
        model_sha256=str(raw.get("model_sha256", "")),
        compiled=bool(raw.get("compiled", False)),
        compiler=str(raw.get("compiler", "")),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_file(model_dir: Path) -> Path:
    """The compiled model in ``model_dir``: the first of MODEL_NAMES present (``model.pth`` when none is)."""
    for name in MODEL_NAMES:
        if (model_dir / name).is_file():
            return model_dir / name
    return model_dir / MODEL_NAME


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def choose_runtime(model_dir: Path) -> str:
    """Name the runtime that will run the model, without importing anything heavy.

    - `neo-pytorch`: SageMaker Neo's PyTorch runtime (`neopytorch`), which a Neo-compiled `model.pth`
      needs for its custom operators; it is present in Neo inference images.
    - `dlr`: the DLR runtime, for a Neo artifact without `model.pth` (compiled `.so` + params).
    - `torchscript`: plain `torch.jit.load`, for traced models and when no Neo runtime is installed.
    """
    if model_file(model_dir).is_file():
        return "neo-pytorch" if _importable("neopytorch") else "torchscript"
    if _importable("dlr") and any(model_dir.glob("*.so")):
        return "dlr"
    return "torchscript"


def check_model_dir(model_dir: Path) -> tuple[Sidecar, str]:
    """Everything the master checks before it forks workers: files present, sidecar sane, runtime named."""
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory {model_dir} does not exist (pass --model-dir)")
    sidecar = read_sidecar(model_dir)
    runtime = choose_runtime(model_dir)
    if runtime != "dlr" and not model_file(model_dir).is_file():
        raise ModelDirError(
            f"neither {' nor '.join(MODEL_NAMES)} is in {model_dir}: the Neo archive must hold one at its root"
        )
    return sidecar, runtime


Forward = "Callable[[Any], Any]"  # a string: subscripting collections.abc needs Python 3.9


def _load_torchscript(model_dir: Path, runtime: str) -> Forward:
    import torch

    if runtime == "neo-pytorch":
        import neopytorch

        configure = getattr(neopytorch, "config", None)
        if callable(configure):
            configure(model_dir=str(model_dir), neo_runtime=True)
    module = torch.jit.load(str(model_file(model_dir)), map_location="cpu").eval()  # type: ignore[no-untyped-call]
    if runtime == "torchscript":
        # Freezing inlines the weights and folds constants: on a full-size NCF (embeddings 64, MLP
        # 256-128-64-32) about 1.5x faster at batch 1 and for ranking 1,682 items on one thread here;
        # neutral on the small sample. A module that cannot be frozen is served as loaded.
        try:
            module = torch.jit.optimize_for_inference(torch.jit.freeze(module))
        except Exception as exc:  # any failure here only costs speed
            print(f"ncf-serve: serving the module unfrozen ({type(exc).__name__}: {exc})", file=sys.stderr)

    def forward(batch: Any) -> Any:
        with torch.inference_mode():
            return module(batch).reshape(-1)

    return forward


def _load_dlr(model_dir: Path, input_name: str) -> Forward:
    import dlr
    import torch

    model = dlr.DLRModel(str(model_dir), "cpu")

    def forward(batch: Any) -> Any:
        out = model.run({input_name: batch.numpy()})[0]
        return torch.from_numpy(out).reshape(-1)

    return forward


class Scorer:
    """A loaded model plus the helpers the endpoints need; safe to share between threads."""

    def __init__(self, model_dir: Path, sidecar: Sidecar, runtime: str, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.sidecar = sidecar
        self.runtime = runtime
        self._torch = torch
        if runtime == "dlr":
            self._forward = _load_dlr(model_dir, sidecar.input_name)
        else:
            self._forward = _load_torchscript(model_dir, runtime)
        low, high = sidecar.item_id_range
        self._all_items = torch.arange(low, high + 1, dtype=torch.float32)
        self.warm_up()

    def warm_up(self) -> None:
        """Run the shapes the endpoints use so the first real request does not pay for JIT profiling."""
        user = self.sidecar.user_id_range[0]
        for _ in range(3):
            self.score_pairs([(user, self.sidecar.item_id_range[0])])
            self.score_pairs([(user, self.sidecar.item_id_range[0])] * 64)
            self.top_k(user, 10, None, ())

    def score_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[float]:
        """One forward for all pairs (ids already validated)."""
        batch = self._torch.tensor(pairs, dtype=self._torch.float32).reshape(-1, 2)
        result: list[float] = self._forward(batch).tolist()
        return result

    def top_k(
        self, user: int, k: int, candidates: Sequence[int] | None, exclude: Sequence[int]
    ) -> list[tuple[int, float]]:
        """Rank the candidates (default: every item) for one user; excluded items never appear."""
        torch = self._torch
        if candidates is None:
            items = self._all_items
        else:
            items = torch.tensor(list(dict.fromkeys(candidates)), dtype=torch.float32)
        if exclude:
            keep = ~torch.isin(items, torch.tensor(list(exclude), dtype=torch.float32))
            items = items[keep]
        if items.numel() == 0:
            return []
        scores = []
        for start in range(0, items.numel(), RANK_CHUNK):
            chunk = items[start : start + RANK_CHUNK]
            batch = torch.empty((chunk.numel(), 2), dtype=torch.float32)
            batch[:, 0] = float(user)
            batch[:, 1] = chunk
            scores.append(self._forward(batch))
        all_scores = scores[0] if len(scores) == 1 else torch.cat(scores)
        best = torch.topk(all_scores, min(k, items.numel()))
        ids = items[best.indices].to(torch.int64).tolist()
        return list(zip(ids, best.values.tolist()))  # noqa: B905 (zip(strict=) needs Python 3.10)


def torch_threads_default(workers: int) -> int:
    """Intra-op threads per worker: share the cores between workers, at least one each."""
    cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))
