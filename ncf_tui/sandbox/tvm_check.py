"""Optional: compile the traced model with Apache TVM for the local CPU, as Neo (built on TVM) would.

Only used when `import tvm` works (the `tvm` extra: apache-tvm 0.27 with apache-tvm-ffi 0.1.14).
TVM 0.27 has no TorchScript frontend: the traced file goes through torch's TS2EPConverter to an
ExportedProgram, then relax's torch frontend, then `tvm.compile` for `{"kind": "llvm"}`. The
compiled module is run once and compared with TorchScript, so a miscompile fails the job too.
The verdict on operators stays with the preflight tables (modern TVM accepts what the Neo-era
frontend refused); this adds "and it really compiles".
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any


class TvmFailure(Exception):
    """TVM could not import, compile or faithfully run the model; the message is TVM's own."""


def tvm_available() -> bool:
    return importlib.util.find_spec("tvm") is not None


def tvm_version() -> str:
    import tvm

    return str(tvm.__version__)


def compile_and_check(module: Any, shape: list[int]) -> str:
    """Compile a loaded TorchScript module with TVM for the CPU and check one output; returns a note."""
    import numpy as np
    import torch

    try:
        import tvm
        from torch._export.converter import TS2EPConverter
        from tvm import relax
        from tvm.relax.frontend.torch import from_exported_program
    except ImportError as exc:
        raise TvmFailure(f"TVM is installed but cannot be imported: {exc}") from None
    example = torch.zeros(shape, dtype=torch.float32)
    if example.shape[-1] == 2 and example.numel() >= 2:
        example[..., 0], example[..., 1] = 1.0, 1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = TS2EPConverter(module, (example,)).convert()
            mod = from_exported_program(program)
            executable = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
        vm = relax.VirtualMachine(executable, tvm.cpu())
        out = vm["main"](tvm.runtime.tensor(example.numpy()))
        result = out if hasattr(out, "numpy") else out[0]  # relax returns a tuple of outputs
        got = np.asarray(result.numpy())
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TvmFailure(first) from None
    with torch.no_grad():
        want = module(example).numpy()
    if got.shape != want.shape or not np.allclose(got, want, atol=1e-4):
        raise TvmFailure(f"the TVM-compiled model's output {got.tolist()} differs from TorchScript's {want.tolist()}")
    return f"TVM {tvm.__version__} llvm"
