"""Offline Neo preflight: does TVM's PyTorch frontend know every operator of a traced graph?

SageMaker Neo compiles PyTorch models with a TVM-based compiler whose TorchScript importer refuses any graph
holding an operator outside its conversion table, with the message
``The following operators are not implemented: [...]``. The tables of every TVM release from v0.7.0 to
v0.16.0 ship in ``data/tvm-ops`` (see its README for where they come from). Which release a given Neo
framework version uses is not published, so the release we emulate is chosen here, in one place:
``DEFAULT_TVM_RELEASE``. v0.12.0 lacks ``aten::linalg_vector_norm`` (what ``F.normalize`` traces to since
PyTorch 1.9), which reproduces Neo's rejection of a model that normalises with ``F.normalize``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadInputError, first_line

if TYPE_CHECKING:
    import torch

DEFAULT_TVM_RELEASE = "v0.12.0"
"""The TVM release whose operator table the preflight (and the sandbox's Neo) emulates."""

_TABLE_DIR = "data/tvm-ops"
_RELEASE_RE = re.compile(r"^v\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class PreflightResult:
    """The verdict for one traced graph against one TVM release's operator table."""

    release: str
    operators: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return not self.missing

    @property
    def message(self) -> str:
        """Neo's own wording for a rejection; empty when the graph is accepted."""
        if not self.missing:
            return ""
        return f"The following operators are not implemented: {list(self.missing)!r}"


def available_releases() -> list[str]:
    """The TVM releases whose tables ship with ncf-tui, oldest first."""
    root = resources.files("ncf_tui.engine").joinpath(_TABLE_DIR)
    names = [p.name.removesuffix(".txt") for p in root.iterdir() if p.name.endswith(".txt")]
    return sorted(names, key=lambda n: tuple(int(x) for x in n[1:].split(".")))


@functools.cache
def operator_table(release: str = DEFAULT_TVM_RELEASE) -> frozenset[str]:
    """The operator names accepted by TVM ``release``'s PyTorch frontend."""
    if not _RELEASE_RE.match(release) or release not in available_releases():
        raise BadInputError(
            f"unknown TVM release {release!r}",
            hint=f"choose one of {', '.join(available_releases())}",
        )
    text = resources.files("ncf_tui.engine").joinpath(_TABLE_DIR, f"{release}.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def _accepted(op: str, table: frozenset[str]) -> bool:
    # The frontend accepts an in-place form (aten::relu_) wherever it accepts the plain one.
    return op in table or (op.endswith("_") and op[:-1] in table)


def graph_operators(module: torch.jit.ScriptModule) -> tuple[str, ...]:
    """Every node kind in a traced module's inlined graph, nested blocks included, sorted."""
    kinds: set[str] = set()

    def walk(block: torch.Block | torch.Graph) -> None:
        for node in block.nodes():
            kinds.add(node.kind())
            for sub in node.blocks():
                walk(sub)

    walk(module.inlined_graph)
    return tuple(sorted(kinds))


def check_operators(operators: tuple[str, ...], release: str = DEFAULT_TVM_RELEASE) -> PreflightResult:
    table = operator_table(release)
    missing = tuple(op for op in operators if not _accepted(op, table))
    return PreflightResult(release=release, operators=operators, missing=missing)


def preflight(module: torch.jit.ScriptModule, release: str = DEFAULT_TVM_RELEASE) -> PreflightResult:
    """Check a traced module as Neo's TorchScript importer would."""
    return check_operators(graph_operators(module), release)


def preflight_file(model_pth: Path, release: str = DEFAULT_TVM_RELEASE) -> PreflightResult:
    """Load a traced ``model.pth`` (TorchScript archive, no pickled code runs) and check it."""
    import torch

    try:
        module = torch.jit.load(str(model_pth), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as exc:
        raise BadInputError(f"{model_pth}: not a TorchScript model ({first_line(exc)})") from exc
    return preflight(module, release)
