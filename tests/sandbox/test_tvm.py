"""With the optional `tvm` extra installed, Neo jobs really compile with TVM (skipped otherwise)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import torch

from ncf_tui.sandbox.neo import compile_archive
from ncf_tui.sandbox.server import Sandbox
from ncf_tui.sandbox.tvm_check import TvmFailure, compile_and_check, tvm_available
from tests.waits import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not tvm_available(), reason="apache-tvm (the `tvm` extra) is not installed"),
]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.jit.ScriptModule]:
    from ncf_tui.engine.variants import export_variants

    out = export_variants(out_dir=tmp_path_factory.mktemp("tvm"), names=("basic", "full_manual_norm"))
    modules = {}
    for name, path in out.items():
        with tarfile.open(path) as tar:
            handle = tar.extractfile("model.pth")
            assert handle is not None
            modules[name] = torch.jit.load(io.BytesIO(handle.read()))
    return modules


@pytest.mark.parametrize("name", ["basic", "full_manual_norm"])
def test_every_shipped_variant_compiles_with_tvm(traced: dict[str, torch.jit.ScriptModule], name: str) -> None:
    assert compile_and_check(traced[name], [1, 2]).startswith("TVM ")


def test_a_module_tvm_cannot_take_fails_with_tvm_s_message(tmp_path: Path) -> None:
    class Weird(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = torch.fft.fft(x).real.sum(-1)
            return out

    module = torch.jit.trace(Weird(), torch.zeros(1, 2))
    with pytest.raises(TvmFailure):
        compile_and_check(module, [1, 2])


def test_a_neo_job_reports_the_tvm_compile(sandbox: Sandbox, tmp_path: Path) -> None:
    from ncf_tui.engine.variants import export_variants

    archive = export_variants(out_dir=tmp_path, names=("basic",))["basic"]
    s3, sm = sandbox.client("s3"), sandbox.client("sagemaker")
    s3.put_object(Bucket=sandbox.names.bucket, Key="in/model.tar.gz", Body=archive.read_bytes())
    sm.create_compilation_job(
        CompilationJobName="tvm-job",
        RoleArn=sandbox.names.sagemaker_role_arn,
        InputConfig={
            "S3Uri": f"s3://{sandbox.names.bucket}/in/model.tar.gz",
            "DataInputConfig": '{"input0": [1, 2]}',
            "Framework": "PYTORCH",
        },
        OutputConfig={"S3OutputLocation": f"s3://{sandbox.names.bucket}/out", "TargetDevice": "ml_c5"},
        StoppingCondition={"MaxRuntimeInSeconds": 900},
    )
    desc = wait_for(
        lambda: (
            (d := sm.describe_compilation_job(CompilationJobName="tvm-job"))["CompilationJobStatus"]
            in ("COMPLETED", "FAILED")
            and d
        ),
        "the TVM job to finish",
        every=0.1,
    )
    assert desc["CompilationJobStatus"] == "COMPLETED", desc.get("FailureReason")
    body = s3.get_object(Bucket=sandbox.names.bucket, Key="out/model-ml_c5.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == ["model.pth"]
    # Neo's archive carries no compiler note (nothing of ours); the worker's own note says TVM checked it.
    _archive, note = compile_archive(archive.read_bytes(), '{"input0": [1, 2]}', "PYTORCH")
    assert "compiled and checked with TVM" in note
