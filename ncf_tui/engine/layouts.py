"""The key layouts NeuMF checkpoints come in, mapped onto ncf-tui's own names.

A checkpoint's tensors carry the attribute names of the module that saved them. ncf-tui reads four layouts by
their names (the shapes are then checked by ``infer_architecture``), each with what its code documents about
the model's behaviour:

- ``ncf-tui``: ``gmf_user_embedding``, ``mlp_layers.N``, ``output``; ``ncf_tui.engine.model.build_neumf`` (the
  module ``python -m ncf_tui.engine.sample`` trains) L2-normalises the GMF embeddings with ``F.normalize`` and
  ends in a sigmoid: the pruned NeuMF that Neo rejects for ``aten::linalg_vector_norm``. Of the model this tool
  was first made for only that is known (its code is not public), so its layout is taken to be this one.
- ``guoyang9/NCF`` (https://github.com/guoyang9/NCF, ``model.py``): ``embed_user_GMF``, ``embed_item_GMF``,
  ``embed_user_MLP``, ``embed_item_MLP``, ``MLP_layers`` (an ``nn.Sequential`` of Dropout, Linear, ReLU, so the
  Linear layers sit at indices 1, 4, 7...), ``predict_layer`` reading ``cat(GMF, MLP)``; no normalisation, and
  ``forward`` returns ``predict_layer``'s raw output, trained with ``nn.BCEWithLogitsLoss`` (``main.py``): logits.
- ``yihong-chen/neural-collaborative-filtering`` (``src/neumf.py``): ``embedding_user_mf``, ``embedding_item_mf``,
  ``embedding_user_mlp``, ``embedding_item_mlp``, ``fc_layers.N``, ``affine_output`` reading ``cat(MLP, MF)``
  (the MLP half first); no normalisation; ``forward`` ends in ``self.logistic`` (``nn.Sigmoid``): sigmoid.
- ``RecBole NeuMF`` (https://github.com/RUCAIBox/RecBole, ``recbole/model/general_recommender/neumf.py``):
  ``user_mf_embedding``, ``item_mf_embedding``, ``user_mlp_embedding``, ``item_mlp_embedding``,
  ``mlp_layers.mlp_layers.N`` (its ``MLPLayers``: Dropout, Linear, ReLU), ``predict_layer`` reading
  ``cat(MF, MLP)``; no normalisation; ``forward`` gives logits (``BCEWithLogitsLoss``) and ``predict``, which
  RecBole scores with, applies ``nn.Sigmoid``: sigmoid.

Anything else is mapped with ``--key-map FILE``: a TOML table ``"our name" = "their name"`` (and, if the output
layer reads the MLP half first, ``output_order = "mlp,gmf"``). For a layout it does not know, ncf-tui prints a
ready-to-edit key map of what it found (``key_map_template``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, first_line
from .model import GMF_ITEM, GMF_USER, MLP_ITEM, MLP_USER, OUTPUT_B, OUTPUT_W

if TYPE_CHECKING:
    import torch

EMBEDDINGS = (GMF_USER, GMF_ITEM, MLP_USER, MLP_ITEM)
OUTPUT_ORDERS = ("gmf,mlp", "mlp,gmf")
_OUR_TOWER = re.compile(r"^mlp_layers\.(\d+)\.(weight|bias)$")


@dataclass(frozen=True)
class LayoutSpec:
    """A known layout: its names for the embeddings, the tower's Linear layers and the output layer."""

    name: str
    source: str
    embeddings: dict[str, str]
    tower: str
    """Prefix of the tower's Linear layers: their keys are ``<tower><index>.weight`` and ``.bias``."""
    output: str
    output_order: str = "gmf,mlp"
    gmf_norm: str | None = None
    score: str | None = None
    why: str = ""

    @property
    def tower_re(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.tower)}(\d+)\.(weight|bias)$")


NCF_TUI = LayoutSpec(
    name="ncf-tui",
    source="ncf_tui.engine.model.build_neumf",
    embeddings={k: k for k in EMBEDDINGS},
    tower="mlp_layers.",
    output="output",
    gmf_norm="l2",
    score="sigmoid",
    why=(
        "ncf-tui's own layout: ncf_tui.engine.model.build_neumf, which the bundled samples are trained with, "
        "L2-normalises the GMF embeddings (F.normalize) and ends in a sigmoid"
    ),
)

KNOWN_LAYOUTS: tuple[LayoutSpec, ...] = (
    NCF_TUI,
    LayoutSpec(
        name="guoyang9/NCF",
        source="https://github.com/guoyang9/NCF/blob/master/model.py",
        embeddings={
            GMF_USER: "embed_user_GMF.weight",
            GMF_ITEM: "embed_item_GMF.weight",
            MLP_USER: "embed_user_MLP.weight",
            MLP_ITEM: "embed_item_MLP.weight",
        },
        tower="MLP_layers.",
        output="predict_layer",
        gmf_norm="none",
        score="logits",
        why=(
            "guoyang9/NCF multiplies the GMF embeddings unnormalised and returns predict_layer's raw output, "
            "trained with BCEWithLogitsLoss (model.py, main.py)"
        ),
    ),
    LayoutSpec(
        name="yihong-chen/neural-collaborative-filtering",
        source="https://github.com/yihong-chen/neural-collaborative-filtering/blob/master/src/neumf.py",
        embeddings={
            GMF_USER: "embedding_user_mf.weight",
            GMF_ITEM: "embedding_item_mf.weight",
            MLP_USER: "embedding_user_mlp.weight",
            MLP_ITEM: "embedding_item_mlp.weight",
        },
        tower="fc_layers.",
        output="affine_output",
        output_order="mlp,gmf",
        gmf_norm="none",
        score="sigmoid",
        why=(
            "yihong-chen's NeuMF multiplies the MF embeddings unnormalised and ends its forward in "
            "torch.nn.Sigmoid (src/neumf.py)"
        ),
    ),
    LayoutSpec(
        name="RecBole NeuMF",
        source="https://github.com/RUCAIBox/RecBole/blob/master/recbole/model/general_recommender/neumf.py",
        embeddings={
            GMF_USER: "user_mf_embedding.weight",
            GMF_ITEM: "item_mf_embedding.weight",
            MLP_USER: "user_mlp_embedding.weight",
            MLP_ITEM: "item_mlp_embedding.weight",
        },
        tower="mlp_layers.mlp_layers.",
        output="predict_layer",
        gmf_norm="none",
        score="sigmoid",
        why=(
            "RecBole's NeuMF multiplies the MF embeddings unnormalised and scores with predict(), which applies "
            "nn.Sigmoid to forward()'s logits (recbole/model/general_recommender/neumf.py)"
        ),
    ),
)


@dataclass
class Mapped:
    """A state_dict in ncf-tui's names, and where each name came from."""

    layout: LayoutSpec
    state: dict[str, torch.Tensor]
    names: dict[str, str] = field(default_factory=dict)
    """our name -> the name in the checkpoint"""

    def theirs(self, message: str) -> str:
        """``message`` with each of our names followed by the checkpoint's own name for it."""
        if self.layout is NCF_TUI:
            return message
        ours = sorted((k for k, v in self.names.items() if k != v), key=len, reverse=True)
        if not ours:
            return message
        pattern = re.compile("|".join(re.escape(k) for k in ours))
        return pattern.sub(lambda m: f"{self.names[m.group(0)]} (ncf-tui's {m.group(0)})", message)


def _reorder_output(w: torch.Tensor, order: str, gmf_dim: int, tower_out: int) -> torch.Tensor:
    """The output weight with its columns as ncf-tui reads them: the GMF half, then the MLP half."""
    import torch

    if order == "gmf,mlp" or w.dim() != 2 or w.shape[1] != gmf_dim + tower_out:
        return w
    return torch.cat([w[:, tower_out:], w[:, :tower_out]], dim=1)


def _dims(state: Mapping[str, Any], gmf_key: str, tower_keys: list[str]) -> tuple[int, int]:
    gmf = state.get(gmf_key)
    last = state.get(tower_keys[-1]) if tower_keys else None
    gmf_dim = int(gmf.shape[1]) if gmf is not None and gmf.dim() == 2 else 0
    tower_out = int(last.shape[0]) if last is not None and last.dim() >= 1 else 0
    return gmf_dim, tower_out


def apply_spec(spec: LayoutSpec, state: Mapping[str, torch.Tensor]) -> Mapped:
    """Rename a state_dict of layout ``spec`` to ncf-tui's names (shapes are checked afterwards)."""
    if spec is NCF_TUI:
        return Mapped(spec, dict(state), {k: k for k in state})
    indices = sorted({int(m.group(1)) for k in state if (m := spec.tower_re.match(k))})
    names: dict[str, str] = dict(spec.embeddings)
    for n, i in enumerate(indices):
        for part in ("weight", "bias"):
            names[f"mlp_layers.{n}.{part}"] = f"{spec.tower}{i}.{part}"
    names[OUTPUT_W] = f"{spec.output}.weight"
    names[OUTPUT_B] = f"{spec.output}.bias"
    return _rename(spec, state, names, spec.output_order)


def _rename(spec: LayoutSpec, state: Mapping[str, torch.Tensor], names: dict[str, str], order: str) -> Mapped:
    out: dict[str, torch.Tensor] = {}
    for ours, theirs in names.items():
        if theirs in state:
            out[ours] = state[theirs]
    used = set(names.values())
    for k, v in state.items():  # unmapped tensors stay, so the architecture check names them
        if k not in used:
            out[k] = v
    tower = sorted(
        (k for k in out if (m := _OUR_TOWER.match(k)) and m.group(2) == "weight"),
        key=lambda k: int(k.split(".")[1]),
    )
    if OUTPUT_W in out:
        gmf_dim, tower_out = _dims(out, GMF_USER, tower)
        out[OUTPUT_W] = _reorder_output(out[OUTPUT_W], order, gmf_dim, tower_out)
    return Mapped(spec, out, {k: v for k, v in names.items() if v in state})


def detect_layout(state: Mapping[str, torch.Tensor]) -> LayoutSpec | None:
    """The known layout whose embedding and output names the state_dict has (None if no layout fits)."""
    for spec in KNOWN_LAYOUTS:
        if (
            all(v in state for v in spec.embeddings.values())
            and f"{spec.output}.weight" in state
            and any(spec.tower_re.match(k) for k in state)
        ):
            return spec
    return None


# ------------------------------------------------------------------------------------------------ key maps


def load_key_map(path: Path) -> tuple[dict[str, str], str]:
    """Read a ``--key-map`` file: ``{our name: their name}`` and the output layer's column order."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckpointError(f"--key-map {path}: cannot be read ({first_line(exc)})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"--key-map {path}: not valid TOML ({first_line(exc)})") from None
    order = data.pop("output_order", "gmf,mlp")
    if order not in OUTPUT_ORDERS:
        raise CheckpointError(f"--key-map {path}: output_order = {order!r}; expected one of {', '.join(OUTPUT_ORDERS)}")
    names: dict[str, str] = {}
    for ours, theirs in data.items():
        if not isinstance(theirs, str):
            raise CheckpointError(f"--key-map {path}: {ours} = {theirs!r}; each value is the name in your checkpoint")
        if theirs.strip() in ("", "?"):
            raise CheckpointError(f'--key-map {path}: {ours} is still "{theirs}"; put the name from your checkpoint')
        if ours not in EMBEDDINGS and ours not in (OUTPUT_W, OUTPUT_B) and not _OUR_TOWER.match(ours):
            raise CheckpointError(
                f"--key-map {path}: {ours} is not one of ncf-tui's names",
                hint="the left side is ncf-tui's name (gmf_user_embedding.weight, mlp_layers.0.weight, output.bias...)",
            )
        names[ours] = theirs
    return names, order


def apply_key_map(state: Mapping[str, torch.Tensor], names: dict[str, str], order: str, path: Path) -> Mapped:
    """Rename with a user's key map; every name it gives must be in the checkpoint."""
    missing = [f"{ours} = {theirs!r}" for ours, theirs in names.items() if theirs not in state]
    if missing:
        raise CheckpointError(
            f"--key-map {path}: the checkpoint has no {missing[0].split(' = ')[1]} (for {missing[0].split(' = ')[0]})"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        )
    spec = LayoutSpec(name="key map", source=str(path), embeddings={}, tower="", output="", output_order=order)
    return _rename(spec, state, names, order)


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in t.shape)


def key_map_template(state: Mapping[str, torch.Tensor], path: Path | str = "checkpoint") -> str:
    """A ready-to-edit ``--key-map`` file for a state_dict ncf-tui does not recognise, filled in by shape."""
    linears = sorted(
        (k[: -len(".weight")] for k in state if k.endswith(".weight") and f"{k[: -len('.weight')]}.bias" in state),
        key=_natural,
    )
    linears = [p for p in linears if len(_shape(state[f"{p}.weight"])) == 2]
    used: set[str] = {f"{p}.{s}" for p in linears for s in ("weight", "bias")}
    tables = [k for k in sorted(state, key=_natural) if k not in used and len(_shape(state[k])) == 2]
    outputs = [p for p in linears if _shape(state[f"{p}.weight"])[0] == 1]
    output = outputs[-1] if outputs else None
    tower = [p for p in linears if p != output]

    def pick(who: str, path_: str) -> str | None:
        """The one 2-D table whose name says this user/item and GMF/MLP (None when it is not clear)."""
        found = []
        for k in tables:
            name = k.lower()
            k_who = "user" if "user" in name and "item" not in name else "item" if "item" in name else ""
            k_path = "mlp" if "mlp" in name else "gmf" if "mf" in name else ""
            if (k_who, k_path) == (who, path_):
                found.append(k)
        return found[0] if len(found) == 1 else None

    guesses = {
        GMF_USER: pick("user", "gmf"),
        GMF_ITEM: pick("item", "gmf"),
        MLP_USER: pick("user", "mlp"),
        MLP_ITEM: pick("item", "mlp"),
    }
    lines = [
        f"# ncf-tui key map for {path}: our name = the name in your checkpoint (its shape after #).",
        '# Check every line, replace each "?", save this as keymap.toml and pass --key-map keymap.toml.',
        '# If your output layer reads the MLP half before the GMF half, set output_order = "mlp,gmf".',
        'output_order = "gmf,mlp"',
    ]

    def line(ours: str, theirs: str | None) -> str:
        shape = f"  # {_shape(state[theirs])}" if theirs else ""
        return f'"{ours}" = "{theirs or "?"}"{shape}'

    for ours in EMBEDDINGS:
        lines.append(line(ours, guesses[ours]))
    for n, p in enumerate(tower or ["?"]):
        for part in ("weight", "bias"):
            lines.append(line(f"mlp_layers.{n}.{part}", f"{p}.{part}" if p != "?" else None))
    lines.append(line(OUTPUT_W, f"{output}.weight" if output else None))
    lines.append(line(OUTPUT_B, f"{output}.bias" if output else None))
    placed = {v for v in guesses.values() if v} | {f"{p}.{s}" for p in linears for s in ("weight", "bias")}
    rest = [f"{k} {_shape(state[k])}" for k in sorted(state, key=_natural) if k not in placed]
    if rest:
        lines.append(f"# not placed: {', '.join(rest[:12])}" + (" ..." if len(rest) > 12 else ""))
    return "\n".join(lines)


def describe_found(state: Mapping[str, torch.Tensor], limit: int = 6) -> str:
    keys = sorted(state, key=_natural)
    shown = ", ".join(f"{k} {_shape(state[k])}" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
