"""Find, safely load and describe NCF checkpoints.

Loading goes through ``torch.load(weights_only=True)`` only: the file's pickle may rebuild tensors and plain
containers, never call arbitrary code. A pickle that tries is refused with the name of what it wanted to run.
A checkpoint may be a bare state_dict or a dict holding one (under ``state_dict``, ``model_state_dict``,
``model`` or ``weights``) next to metadata (epoch, metrics, pruning amount...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, first_line
from .model import Architecture, infer_architecture

if TYPE_CHECKING:
    import torch

CHECKPOINT_SUFFIXES = (".pt", ".pth")
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "weights")
MAX_CHECKPOINT_BYTES = 2 * 1024**3
_GLOBAL_RE = re.compile(r"(?:GLOBAL|global) ([\w.]+)")


@dataclass(frozen=True)
class LayerInfo:
    name: str
    shape: tuple[int, ...]
    params: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


@dataclass
class Checkpoint:
    """A loaded checkpoint: its weights, the inferred architecture and what the file says about itself."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    architecture: Architecture
    metadata: dict[str, Any] = field(default_factory=dict)
    file_size: int = 0

    @property
    def layers(self) -> list[LayerInfo]:
        out = []
        for name, t in self.state_dict.items():
            out.append(LayerInfo(name, tuple(t.shape), t.numel(), int((t == 0).sum().item())))
        return out

    @property
    def params(self) -> int:
        return sum(t.numel() for t in self.state_dict.values())

    @property
    def sparsity(self) -> float:
        """Share of exactly-zero parameters over the whole model."""
        zeros = sum(layer.zeros for layer in self.layers)
        return zeros / self.params if self.params else 0.0

    @property
    def pruned_sparsity(self) -> float:
        """Share of zeros over the weight matrices of the MLP tower and output layer (what pruning touches)."""
        layers = [x for x in self.layers if x.name.endswith(".weight") and "embedding" not in x.name]
        total = sum(x.params for x in layers)
        return sum(x.zeros for x in layers) / total if total else 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (the ``checkpoint`` event's payload)."""
        return {
            "path": str(self.path),
            "architecture": self.architecture.describe(),
            "num_users": self.architecture.num_users,
            "num_items": self.architecture.num_items,
            "params": self.params,
            "sparsity": round(self.sparsity, 4),
            "pruned_sparsity": round(self.pruned_sparsity, 4),
            "file_size": self.file_size,
            "layers": [
                {"name": x.name, "shape": list(x.shape), "params": x.params, "sparsity": round(x.sparsity, 4)}
                for x in self.layers
            ],
            "metadata": _jsonable(self.metadata),
        }


def find_checkpoints(root: Path) -> list[Path]:
    """Every ``*.pt``/``*.pth`` file under ``root`` (or ``root`` itself), sorted; hidden folders skipped."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CheckpointError(f"{root}: no such file or directory")

    def walk(d: Path) -> Iterator[Path]:
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        for p in entries:
            if p.name.startswith("."):
                continue
            if p.is_dir() and not p.is_symlink():
                yield from walk(p)
            elif p.is_file() and p.suffix in CHECKPOINT_SUFFIXES:
                yield p

    return list(walk(root))


def resolve_checkpoint(path: Path) -> Path:
    """A file stays itself; a folder must hold exactly one checkpoint (else say which ones it holds)."""
    path = Path(path)
    if path.is_file():
        return path
    found = find_checkpoints(path)
    if not found:
        raise CheckpointError(f"{path}: no .pt or .pth checkpoint in this folder")
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(path)) for p in found[:5])
        raise CheckpointError(f"{path}: holds {len(found)} checkpoints ({names}); pass one with --checkpoint")
    return found[0]


def load_checkpoint(path: Path) -> Checkpoint:
    """Load, check and describe a checkpoint; every failure is a ``CheckpointError`` with one clear line."""
    import pickle
    import warnings

    import torch

    path = resolve_checkpoint(Path(path))
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path}: {size / 1024**3:.1f} GiB is too large for an NCF checkpoint (limit 2 GiB)")
    try:
        # torch warns on stderr about a file's pickle protocol before refusing it; the refusal below says
        # what matters in one line, so the warning is only noise above it (or a stray line in --json runs).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _unpickling_error(path, exc) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt: {first_line(exc)})"
        ) from None
    state, metadata = _split(path, obj)
    arch = infer_architecture(state)
    for name, t in state.items():
        if not t.is_floating_point():
            raise CheckpointError(f"{path}: {name} has dtype {t.dtype}; NCF weights are floating point")
        bad = int((~torch.isfinite(t)).sum().item())
        if bad:
            raise CheckpointError(f"{path}: {name} holds {bad} NaN or infinite values; the weights are unusable")
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    return Checkpoint(path=path, state_dict=state, architecture=arch, metadata=metadata, file_size=size)


def _split(path: Path, obj: object) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    import torch

    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict or a dict holding one")
    for key in STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            meta = {k: v for k, v in obj.items() if k != key and not isinstance(v, torch.Tensor)}
            return {str(k): v for k, v in inner.items()}, meta
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(
            f"{path}: no tensors found; expected a state_dict or a dict with one of {', '.join(STATE_DICT_KEYS)}"
        )
    meta = {str(k): v for k, v in obj.items() if not isinstance(v, torch.Tensor)}
    return tensors, meta


_DANGEROUS_MODULES = {
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "sys",
    "shutil",
    "runpy",
    "importlib",
    "socket",
}


def pickle_globals(path: Path) -> list[str]:
    """The ``module.name`` globals a checkpoint's pickle would import, read without unpickling anything.

    Walks the opcodes with ``pickletools`` (which executes nothing) in the archive's ``data.pkl``, or in the
    file itself for a legacy plain pickle.
    """
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return []
                data = z.read(name)
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile):
        return []
    found: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(str(arg))
            elif op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: S110 - a malformed pickle just ends the scan
        pass
    return found


def _unpickling_error(path: Path, exc: Exception) -> CheckpointError:
    text = str(exc)
    m = _GLOBAL_RE.search(text)
    dangerous = [g for g in pickle_globals(path) if g.split(".")[0] in _DANGEROUS_MODULES]
    what = dangerous[0] if dangerous else (m.group(1) if m else "an object outside the allowed types")
    if what.split(".")[0] in _DANGEROUS_MODULES:
        return CheckpointError(
            f"{path}: refused: its pickle would call {what}; ncf-tui loads weights only and never runs code from a file"
        )
    return CheckpointError(
        f"{path}: refused: its pickle holds {what}, not plain tensors; ncf-tui loads weights only",
        hint="save model.state_dict() instead of the whole model",
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
