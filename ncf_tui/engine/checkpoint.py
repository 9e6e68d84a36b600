"""Find, safely load and describe NCF checkpoints.

Loading never runs code from a file: ``.pt``/``.pth`` go through ``torch.load(weights_only=True)`` only (the
pickle may rebuild tensors and plain containers, nothing else; a pickle that tries more is refused, and a whole
pickled model gets the one line that says how to re-save its ``state_dict``), and ``.safetensors`` files hold
tensors and a string table by design. What people save is unwrapped on the way in:

- a bare state_dict, or a dict holding one under ``state_dict``, ``model_state_dict``, ``model``, ``net`` or
  ``weights`` next to metadata (epoch, metrics, an optimizer's state...);
- keys prefixed ``module.`` (``nn.DataParallel``, DDP), ``model.`` (a PyTorch Lightning module holding the net
  as ``self.model``) or ``_orig_mod.`` (``torch.compile``), in any combination;
- ``torch.nn.utils.prune`` reparametrisations saved without ``prune.remove``: ``weight_orig`` and
  ``weight_mask`` are folded into ``weight = weight_orig * weight_mask``, so the mask's zeros count as pruned;
- the key layouts of ``layouts.KNOWN_LAYOUTS``, or any other through a ``--key-map`` file.

The model's behaviour (GMF normalisation ``none``/``l2``, output ``sigmoid``/``logits``) is read from the
checkpoint's metadata (``gmf_norm`` and ``output``, at the top level, in Lightning's ``hyper_parameters`` or in
a safetensors header), else from what the layout's code documents; ``resolve_behaviour`` adds the user's answer
(flags or the wizard) and refuses to go on without one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInputError, CheckpointError, first_line
from .model import Architecture, infer_architecture

if TYPE_CHECKING:
    import torch

    from .layouts import Mapped

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
KEY_PREFIXES = ("module.", "model.", "_orig_mod.")
MAX_CHECKPOINT_BYTES = 2 * 1024**3
GMF_NORMS = ("none", "l2")
OUTPUTS = ("sigmoid", "logits")
BEHAVIOUR_FLAGS = {"gmf_norm": "--gmf-norm", "output": "--output"}
_GLOBAL_RE = re.compile(r"(?:GLOBAL|global) ([\w.]+)")
_MASK_SUFFIX = "_mask"
_ORIG_SUFFIX = "_orig"


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
    """A loaded checkpoint: its weights (in ncf-tui's names), the inferred architecture, what the file says
    about itself, and how the model scores (``gmf_norm``, ``output``: None until known)."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    architecture: Architecture
    metadata: dict[str, Any] = field(default_factory=dict)
    file_size: int = 0
    layout: str = "ncf-tui"
    layout_source: str = ""
    layout_note: str = ""
    """What the layout's code documents about the model's behaviour, when ncf-tui relies on it."""
    gmf_norm: str | None = None
    output: str | None = None
    behaviour_source: dict[str, str] = field(default_factory=dict)
    """Where each of ``gmf_norm`` and ``output`` came from (metadata, a flag, the wizard, the layout's code)."""
    folded_masks: list[str] = field(default_factory=list)
    """Weights rebuilt from ``torch.nn.utils.prune``'s ``*_orig`` and ``*_mask``."""
    stripped_prefix: str = ""
    key_map: str | None = None

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

    @property
    def behaviour_known(self) -> bool:
        return self.gmf_norm is not None and self.output is not None

    def describe_behaviour(self) -> str:
        """``GMF norm l2 (metadata), output sigmoid (--output)``: what the variants and the fidelity follow."""
        src = self.behaviour_source
        norm = f"GMF norm {self.gmf_norm}" if self.gmf_norm else "GMF norm unknown"
        out = f"output {self.output}" if self.output else "output unknown"
        if self.behaviour_known and src.get("gmf_norm") == src.get("output"):
            return f"{norm}, {out} ({src.get('output')})"
        return ", ".join(
            f"{text} ({src[key]})" if key in src else text for key, text in (("gmf_norm", norm), ("output", out))
        )

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
            "layout": self.layout,
            "layout_source": self.layout_source,
            "layout_note": self.layout_note,
            "behaviour": self.describe_behaviour(),
            "gmf_norm": self.gmf_norm,
            "output": self.output,
            "behaviour_source": dict(self.behaviour_source),
            "folded_masks": list(self.folded_masks),
            "stripped_prefix": self.stripped_prefix,
            "key_map": self.key_map,
            "layers": [
                {"name": x.name, "shape": list(x.shape), "params": x.params, "sparsity": round(x.sparsity, 4)}
                for x in self.layers
            ],
            "metadata": _jsonable(self.metadata),
        }


def find_checkpoints(root: Path) -> list[Path]:
    """Every ``*.pt``/``*.pth``/``*.safetensors`` file under ``root`` (or ``root`` itself), sorted; hidden
    folders skipped."""
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
        raise CheckpointError(f"{path}: no .pt, .pth or .safetensors checkpoint in this folder")
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(path)) for p in found[:5])
        raise CheckpointError(f"{path}: holds {len(found)} checkpoints ({names}); pass one with --checkpoint")
    return found[0]


def load_checkpoint(path: Path, key_map: Path | None = None) -> Checkpoint:
    """Load, check and describe a checkpoint; every failure is a ``CheckpointError`` with one clear line."""
    import torch

    path = resolve_checkpoint(Path(path))
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path}: {size / 1024**3:.1f} GiB is too large for an NCF checkpoint (limit 2 GiB)")
    if path.suffix == ".safetensors":
        state, metadata = _load_safetensors(path)
    else:
        state, metadata = _split(path, _torch_load(path))
    for name, t in state.items():
        if not t.is_floating_point() and not (name.endswith(_MASK_SUFFIX) and _is_binary(t)):
            raise CheckpointError(f"{path}: {name} has dtype {t.dtype}; NCF weights are floating point")
        bad = int((~torch.isfinite(t)).sum().item()) if t.is_floating_point() else 0
        if bad:
            raise CheckpointError(f"{path}: {name} holds {bad} NaN or infinite values; the weights are unusable")
    state, folded = fold_pruning(path, state)
    state, prefix = strip_prefixes(state)
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    mapped = _map_layout(path, state, key_map)
    try:
        arch = infer_architecture(mapped.state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {mapped.theirs(exc.message)}", hint=exc.hint) from None
    ckpt = Checkpoint(
        path=path,
        state_dict=mapped.state,
        architecture=arch,
        metadata=metadata,
        file_size=size,
        layout=mapped.layout.name,
        layout_source=mapped.layout.source,
        folded_masks=folded,
        stripped_prefix=prefix,
        key_map=str(key_map) if key_map is not None else None,
    )
    _behaviour_from_metadata(ckpt)
    spec = mapped.layout
    for key, documented in (("gmf_norm", spec.gmf_norm), ("output", spec.score)):
        if documented is not None and getattr(ckpt, key) is None:
            setattr(ckpt, key, documented)
            ckpt.behaviour_source[key] = f"{spec.name} layout"
            ckpt.layout_note = spec.why
    return ckpt


def apply_answers(ckpt: Checkpoint, gmf_norm: str | None = None, output: str | None = None, *, by: str = "") -> None:
    """Set the user's answers (they win over metadata and layout); None leaves a field as it is."""
    for key, value, allowed in (("gmf_norm", gmf_norm, GMF_NORMS), ("output", output, OUTPUTS)):
        if value is None:
            continue
        if value not in allowed:
            raise BadInputError(f"{BEHAVIOUR_FLAGS[key]} {value!r}: choose {' or '.join(allowed)}")
        earlier = getattr(ckpt, key)
        setattr(ckpt, key, value)
        source = by or BEHAVIOUR_FLAGS[key]
        if earlier is not None and earlier != value:
            source += f", over {earlier} from the {ckpt.behaviour_source.get(key, '?')}"
        if earlier != value or key not in ckpt.behaviour_source:
            ckpt.behaviour_source[key] = source


def resolve_behaviour(
    ckpt: Checkpoint, gmf_norm: str | None = None, output: str | None = None, *, by: str = ""
) -> None:
    """Apply the user's answers, then insist both are known.

    ``by`` names where the answers came from (``--gmf-norm``/``--output`` when empty). Without them and without
    metadata the run stops here with the flags to pass: a wrong guess would poison every fidelity figure.
    """
    apply_answers(ckpt, gmf_norm, output, by=by)
    unknown = [BEHAVIOUR_FLAGS[k] for k in ("gmf_norm", "output") if getattr(ckpt, k) is None]
    if unknown:
        wanted = " and ".join(f"{f} {'none|l2' if f == '--gmf-norm' else 'sigmoid|logits'}" for f in unknown)
        raise BadInputError(
            f"{ckpt.path}: the checkpoint ({ckpt.layout} layout) does not say "
            + (
                "whether its GMF embeddings are L2-normalised or whether it ends in a sigmoid"
                if len(unknown) == 2
                else "whether its GMF embeddings are L2-normalised"
                if unknown[0] == "--gmf-norm"
                else "whether it ends in a sigmoid or returns logits"
            )
            + f"; pass {wanted}",
            hint="He et al.'s NeuMF: no normalisation; logits if it was trained with BCEWithLogitsLoss, "
            "sigmoid with BCELoss",
        )


def _torch_load(path: Path) -> object:
    import pickle
    import warnings
    import zipfile

    import torch

    try:
        # torch warns on stderr about a file's pickle protocol before refusing it; the refusal below says
        # what matters in one line, so the warning is only noise above it (or a stray line in --json runs).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _unpickling_error(path, exc) from None
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        zipfile.BadZipFile,
    ) as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt: {first_line(exc)})"
        ) from None


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and the header's string metadata of a ``.safetensors`` file (the format holds no code)."""
    try:
        from safetensors import safe_open
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise CheckpointError(f"{path}: reading .safetensors needs the safetensors package") from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {str(k): f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as exc:  # safetensors raises its own SafetensorError, and OSError/ValueError/TypeError
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or corrupt: {first_line(exc)})"
        ) from None
    if not tensors:
        raise CheckpointError(f"{path}: the safetensors file holds no tensors")
    return tensors, meta


def _is_binary(t: torch.Tensor) -> bool:
    import torch

    return bool(((t == 0) | (t == 1)).all().item()) if t.dtype != torch.bool else True


def fold_pruning(path: Path, state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``X_orig * X_mask`` -> ``X`` for every reparametrisation ``torch.nn.utils.prune`` saved.

    A mask without its ``_orig`` (or the other way round), a mask of another shape, or one holding values other
    than 0 and 1 is refused: the weights it stands for cannot be rebuilt.
    """
    import torch

    out: dict[str, torch.Tensor] = {}
    folded: list[str] = []
    masks = {k[: -len(_MASK_SUFFIX)]: v for k, v in state.items() if k.endswith(_MASK_SUFFIX)}
    origs = {k[: -len(_ORIG_SUFFIX)]: v for k, v in state.items() if k.endswith(_ORIG_SUFFIX)}
    for base, mask in masks.items():
        if base not in origs:
            raise CheckpointError(
                f"{path}: {base}{_MASK_SUFFIX} (a torch.nn.utils.prune mask) has no {base}{_ORIG_SUFFIX} "
                "to apply it to; the pruned weight cannot be rebuilt"
            )
        orig = origs[base]
        if tuple(mask.shape) != tuple(orig.shape):
            raise CheckpointError(
                f"{path}: {base}{_MASK_SUFFIX} has shape {tuple(mask.shape)} but {base}{_ORIG_SUFFIX} "
                f"has {tuple(orig.shape)}"
            )
        if not _is_binary(mask):
            raise CheckpointError(f"{path}: {base}{_MASK_SUFFIX} holds values other than 0 and 1; not a pruning mask")
        if base in state:
            raise CheckpointError(f"{path}: {base} is saved both plain and as {base}{_ORIG_SUFFIX} with a mask")
    for base in origs:
        if base not in masks:
            raise CheckpointError(
                f"{path}: {base}{_ORIG_SUFFIX} has no {base}{_MASK_SUFFIX}; save the model with its "
                "torch.nn.utils.prune masks, or after prune.remove()"
            )
    for k, v in state.items():
        if k.endswith(_MASK_SUFFIX) and k[: -len(_MASK_SUFFIX)] in origs:
            continue
        if k.endswith(_ORIG_SUFFIX) and k[: -len(_ORIG_SUFFIX)] in masks:
            base = k[: -len(_ORIG_SUFFIX)]
            out[base] = v.to(torch.float32) * masks[base].to(torch.float32)
            folded.append(base)
            continue
        out[k] = v
    return out, sorted(folded)


def strip_prefixes(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Drop the wrappers' prefixes every key shares (``module.``, ``model.``, ``_orig_mod.``, stacked)."""
    out = dict(state)
    stripped = ""
    changed = True
    while changed and out:
        changed = False
        for prefix in KEY_PREFIXES:
            if all(k.startswith(prefix) for k in out):
                out = {k[len(prefix) :]: v for k, v in out.items()}
                stripped += prefix
                changed = True
    return out, stripped


def _map_layout(path: Path, state: dict[str, torch.Tensor], key_map: Path | None) -> Mapped:
    from . import layouts

    if key_map is not None:
        names, order = layouts.load_key_map(Path(key_map))
        return layouts.apply_key_map(state, names, order, Path(key_map))
    spec = layouts.detect_layout(state)
    if spec is not None:
        return layouts.apply_spec(spec, state)
    raise CheckpointError(
        f"{path}: not a NeuMF state_dict in a layout ncf-tui knows (found {layouts.describe_found(state)}); "
        "name its tensors with --key-map FILE",
        hint="a key map to start from (save it as keymap.toml, fix it, pass --key-map keymap.toml):\n"
        + layouts.key_map_template(state, path.name),
    )


def _behaviour_from_metadata(ckpt: Checkpoint) -> None:
    """``gmf_norm`` and ``output`` as the file records them (top level, or Lightning's ``hyper_parameters``)."""
    meta = ckpt.metadata
    places: list[tuple[str, Mapping[str, Any]]] = [("metadata", meta)]
    for key in ("hyper_parameters", "hparams"):
        if isinstance(meta.get(key), Mapping):
            places.append((f"metadata {key}", meta[key]))
    for key, allowed in (("gmf_norm", GMF_NORMS), ("output", OUTPUTS)):
        for where, table in places:
            if key not in table:
                continue
            value = table[key]
            if not isinstance(value, str) or value.lower() not in allowed:
                raise CheckpointError(
                    f"{ckpt.path}: its {where} says {key} = {value!r}; expected {' or '.join(allowed)}"
                )
            setattr(ckpt, key, value.lower())
            ckpt.behaviour_source[key] = where
            break


def _split(path: Path, obj: object, depth: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    import torch

    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict or a dict holding one")
    for key in STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner:
            if all(isinstance(v, torch.Tensor) for v in inner.values()):
                meta = {k: v for k, v in obj.items() if k != key and not isinstance(v, torch.Tensor)}
                return {str(k): v for k, v in inner.items()}, meta
            if depth < 2 and any(isinstance(inner.get(k), Mapping) for k in STATE_DICT_KEYS):
                state, inner_meta = _split(path, inner, depth + 1)
                meta = {k: v for k, v in obj.items() if k != key and not isinstance(v, torch.Tensor)}
                return state, {**meta, **inner_meta}
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


def _pickled_module(found: list[str]) -> str | None:
    """The class of a whole pickled ``nn.Module`` (``torch.save(model)``), read from the globals it names."""
    is_module = any(g.startswith("torch.nn.modules.") for g in found) or "torch._utils._rebuild_parameter" in found
    if not is_module:
        return None
    own = [g for g in found if not g.startswith(("torch.", "collections.", "builtins.", "_codecs.", "numpy."))]
    return own[0] if own else next(g for g in found if g.startswith("torch.nn.modules.") or g.startswith("torch."))


def _unpickling_error(path: Path, exc: Exception) -> CheckpointError:
    text = str(exc)
    m = _GLOBAL_RE.search(text)
    found = pickle_globals(path)
    dangerous = [g for g in found if g.split(".")[0] in _DANGEROUS_MODULES]
    what = dangerous[0] if dangerous else (m.group(1) if m else "an object outside the allowed types")
    if what.split(".")[0] in _DANGEROUS_MODULES:
        return CheckpointError(
            f"{path}: refused: its pickle would call {what}; ncf-tui loads weights only and never runs code from a file"
        )
    module = _pickled_module(found)
    if module is not None:
        out = path.with_name(f"{path.stem}.state_dict{path.suffix}")
        return CheckpointError(
            f"{path}: refused: a whole pickled model ({module}), not a state_dict, and ncf-tui never runs a file's "
            f"code; re-save its weights where {module.rsplit('.', 1)[-1]} is importable: "
            f"torch.save(torch.load('{path.name}', weights_only=False).state_dict(), '{out.name}')"
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
