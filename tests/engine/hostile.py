"""Writers of bad and hostile checkpoint files, shared by the checkpoint and CLI tests."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch


class _RunsCode:
    """Unpickling this calls os.system; a safe loader must refuse before that happens."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class WholeModule(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 1)


def pickle_with_code(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _RunsCode(marker)}, path)
    return path


def raw_pickle_with_code(path: Path, marker: Path) -> Path:
    """A plain (non-zip) pickle, the legacy format torch.load also reads."""
    with path.open("wb") as f:
        pickle.dump(_RunsCode(marker), f)
    return path


def truncated(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def not_a_zip(path: Path) -> Path:
    path.write_bytes(b"this is not a checkpoint\n" * 10)
    return path


def other_model(path: Path) -> Path:
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)).state_dict(), path)
    return path


def whole_module(path: Path) -> Path:
    torch.save(WholeModule(), path)
    return path


def with_nan(path: Path, state: dict[str, torch.Tensor]) -> Path:
    bad = {k: v.clone() for k, v in state.items()}
    bad["mlp_layers.0.weight"][0, 0] = float("nan")
    torch.save(bad, path)
    return path


def zip_bomb_like(path: Path) -> Path:
    """A zip whose entries are not a torch archive at all."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "x" * 100)
    return path
