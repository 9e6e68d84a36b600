"""Which runtime serves the model. No Neo runtime installs here, so a stand-in `neopytorch` package
(written to a temporary directory, with the one call the server makes) proves the Neo path end to end
in-process: detected, configured with the model directory, then the model loaded and scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from ncf_serve.model import Scorer, check_model_dir, choose_runtime

STAND_IN = """
import json, pathlib
def config(model_dir, neo_runtime):
    pathlib.Path(model_dir, "..", "neo-config.json").write_text(json.dumps([model_dir, neo_runtime]))
"""


def test_torchscript_when_no_neo_runtime_is_importable(model_dirs: dict[str, Path]) -> None:
    assert choose_runtime(model_dirs["basic"]) == "torchscript"


def test_a_dlr_artifact_without_dlr_is_refused_clearly(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    (tmp_path / "ncf-model.json").write_text((model_dirs["basic"] / "ncf-model.json").read_text())
    (tmp_path / "compiled.so").write_bytes(b"\x7fELF")
    from ncf_serve.model import ModelDirError

    with pytest.raises(ModelDirError, match=r"neither model\.pth nor compiled\.pt is in"):
        check_model_dir(tmp_path)


def test_the_neo_pytorch_runtime_is_used_when_importable(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "neopytorch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(STAND_IN)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model_dir = tmp_path / "model"  # the stand-in writes next to it, so use a copy
    shutil.copytree(model_dirs["relu"], model_dir)

    sidecar, runtime = check_model_dir(model_dir)
    assert runtime == "neo-pytorch"
    scorer = Scorer(model_dir, sidecar, runtime, threads=1)
    assert json.loads((tmp_path / "neo-config.json").read_text()) == [str(model_dir), True]
    expected = torch.jit.load(str(model_dir / "model.pth"))(torch.tensor([[1.0, 2.0]])).item()
    assert scorer.score_pairs([(1, 2)]) == pytest.approx([expected], abs=1e-6)
