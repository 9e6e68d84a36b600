"""The Neo inference image comes from the sagemaker SDK's table; each answer is cached on disk under the SDK's
version, so a run after the first does not import the SDK (seconds of CPU) to ask again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOOKUP = """
import sys
from ncf_tui.engine.neo import neo_inference_image
print(neo_inference_image(sys.argv[1], sys.argv[2]))
print("sagemaker.core" in sys.modules)
"""


def _lookup(cache: Path, region: str = "eu-west-1", device: str = "ml_c5") -> tuple[str, bool]:
    env = {**os.environ, "NCF_TUI_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", LOOKUP, region, device], capture_output=True, text=True, env=env, check=True
    )
    uri, imported = done.stdout.split()
    return uri, imported == "True"


def test_the_second_lookup_reads_the_cache_and_never_imports_the_sdk(tmp_path: Path) -> None:
    first, imported = _lookup(tmp_path)
    assert imported, "the first lookup asks the SDK"
    assert first == "802834080501.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-inference-pytorch:2.0-cpu-py3"
    again, imported = _lookup(tmp_path)
    assert (again, imported) == (first, False)
    (key,) = json.loads((tmp_path / "neo-images.json").read_text())
    assert key.startswith("sagemaker-core ") and "eu-west-1" in key and "ml_c5" in key


def test_another_sdk_version_or_region_asks_the_sdk_again(tmp_path: Path) -> None:
    cache = tmp_path / "neo-images.json"
    cache.write_text(json.dumps({"sagemaker-core 0.0.1 | eu-west-1 | ml_c5 | 2.0": "stale.example/image:old"}))
    uri, imported = _lookup(tmp_path)
    assert imported and uri.startswith("802834080501.dkr.ecr.eu-west-1.amazonaws.com/")
    other, imported = _lookup(tmp_path, region="ap-southeast-2")
    assert imported and other.startswith("355873309152.dkr.ecr.ap-southeast-2.amazonaws.com/")
    assert len(json.loads(cache.read_text())) == 3


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"x": 1}'])
def test_a_damaged_cache_is_only_a_slower_lookup(tmp_path: Path, content: str) -> None:
    (tmp_path / "neo-images.json").write_text(content)
    uri, imported = _lookup(tmp_path)
    assert imported and uri.endswith("/sagemaker-inference-pytorch:2.0-cpu-py3")
    assert _lookup(tmp_path) == (uri, False), "and the lookup is cached again"
