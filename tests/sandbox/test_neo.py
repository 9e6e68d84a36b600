"""SageMaker Neo compilation jobs over HTTP: each outcome, the states they move through, and Stop."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from botocore.exceptions import ClientError

from ncf_tui.sandbox.server import Sandbox
from tests.waits import wait_for

TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}


@pytest.fixture(scope="session")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real model.tar.gz archives made by the engine (basic compiles; original uses F.normalize)."""
    from ncf_tui.engine.variants import export_variants

    return export_variants(out_dir=tmp_path_factory.mktemp("variants"), names=("original", "basic"))


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


class Jobs:
    """Small helper: upload an input, start a job, wait for it."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.s3 = sb.client("s3")
        self.sm = sb.client("sagemaker")

    def start(
        self, name: str, body: bytes | None, *, config: str = '{"input0": [1, 2]}', framework: str = "PYTORCH"
    ) -> str:
        key = f"{self.sb.names.prefix}/models/{name}/model.tar.gz"
        if body is not None:
            self.s3.put_object(Bucket=self.sb.names.bucket, Key=key, Body=body)
        self.sm.create_compilation_job(
            CompilationJobName=name,
            RoleArn=self.sb.names.sagemaker_role_arn,
            InputConfig={
                "S3Uri": f"s3://{self.sb.names.bucket}/{key}",
                "DataInputConfig": config,
                "Framework": framework,
            },
            OutputConfig={
                "S3OutputLocation": f"s3://{self.sb.names.compilation_output(name)}",
                "TargetDevice": "ml_c5",
            },
            StoppingCondition={"MaxRuntimeInSeconds": 900},
        )
        return name

    def wait(self, name: str, seen: Callable[[str], None] | None = None) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            desc = self.sm.describe_compilation_job(CompilationJobName=name)
            if seen:
                seen(desc["CompilationJobStatus"])
            return dict(desc) if desc["CompilationJobStatus"] in TERMINAL else None

        return wait_for(finished, f"job {name} to finish")


@pytest.fixture
def jobs(sandbox: Sandbox) -> Jobs:
    return Jobs(sandbox)


def test_a_compatible_variant_compiles_and_its_output_scores_like_the_input(
    jobs: Jobs, archives: dict[str, Path]
) -> None:
    data = archives["basic"].read_bytes()
    statuses: list[str] = []
    jobs.sb.neo.seconds = 1.0  # long enough to see INPROGRESS when polling every 50 ms
    desc = jobs.wait(
        jobs.start("ncf-basic", data), lambda s: statuses.append(s) if not statuses or statuses[-1] != s else None
    )
    assert desc["CompilationJobStatus"] == "COMPLETED", desc.get("FailureReason")
    assert statuses[0] == "STARTING" and "INPROGRESS" in statuses and statuses[-1] == "COMPLETED"
    assert desc["CompilationStartTime"] <= desc["CompilationEndTime"]
    uri = desc["ModelArtifacts"]["S3ModelArtifacts"]
    output = jobs.sb.names.compilation_output("ncf-basic")
    assert uri == f"s3://{output}/model-ml_c5.tar.gz"  # the input model.tar.gz's stem, then the target
    bucket, key = uri[5:].split("/", 1)
    compiled = jobs.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(compiled)) as tar:
        assert tar.getnames() == ["model.pth"]  # the compiled model alone: Neo knows nothing of our sidecar
    original = torch.jit.load(io.BytesIO(_member(data, "model.pth")))
    optimized = torch.jit.load(io.BytesIO(_member(compiled, "model.pth")))
    x = torch.tensor([[0.0, 0.0], [3.0, 7.0], [10.0, 20.0]])
    assert torch.allclose(original(x), optimized(x), atol=1e-5)
    summary = jobs.sm.list_compilation_jobs()["CompilationJobSummaries"]
    assert [(j["CompilationJobName"], j["CompilationJobStatus"]) for j in summary] == [("ncf-basic", "COMPLETED")]


def test_f_normalize_is_rejected_with_neo_s_operator_message(jobs: Jobs, archives: dict[str, Path]) -> None:
    desc = jobs.wait(jobs.start("ncf-original", archives["original"].read_bytes()))
    assert desc["CompilationJobStatus"] == "FAILED"
    assert desc["FailureReason"] == (
        "ClientError: InputConfiguration: TVM cannot convert the PyTorch model. Invalid model or input-shape "
        "mismatch. Make sure that inputs are lexically ordered and of the correct dimensionality. "
        "The following operators are not implemented: ['aten::linalg_vector_norm']"
    )
    assert not desc.get("ModelArtifacts")
    listing = jobs.s3.list_objects_v2(Bucket=jobs.sb.names.bucket, Prefix=f"{jobs.sb.names.prefix}/compilation-output/")
    assert listing["KeyCount"] == 0


@pytest.mark.parametrize(
    ("case", "body", "kwargs", "reason"),
    [
        ("missing", None, {}, "S3 object does not exist"),
        ("not-a-tar", b"this is not an archive", {}, "Unable to untar input model"),
        ("no-pth", "tar:weights.pt", {}, "No pth file found for PyTorch model"),
        ("two-pth", "tar:a.pth,b.pth", {}, "Exactly one .pth file is allowed"),
        ("not-torchscript", "tar:model.pth", {}, "Framework cannot load PyTorch model"),
        ("bad-config", "basic", {"config": "{input0: [1, 2]"}, "Unable to parse DataInputConfig"),
        ("wrong-shape", "basic", {"config": '{"input0": [2]}'}, "TVM cannot convert the PyTorch model"),
        ("wrong-framework", "basic", {"framework": "TENSORFLOW"}, "Framework TENSORFLOW is not supported"),
    ],
)
def test_bad_inputs_fail_with_neo_s_reason(
    jobs: Jobs, archives: dict[str, Path], case: str, body: Any, kwargs: dict[str, str], reason: str
) -> None:
    if body == "basic":
        body = archives["basic"].read_bytes()
    elif isinstance(body, str) and body.startswith("tar:"):
        body = _tar(dict.fromkeys(body[4:].split(","), b"not a model"))
    desc = jobs.wait(jobs.start(f"ncf-{case}", body, **kwargs))
    assert desc["CompilationJobStatus"] == "FAILED"
    assert desc["FailureReason"].startswith("ClientError: InputConfiguration: ")
    assert reason in desc["FailureReason"]


def test_a_failure_reason_is_cut_to_the_1024_characters_the_api_allows(jobs: Jobs, archives: dict[str, Path]) -> None:
    """botocore's sagemaker model: FailureReason is a string of at most 1,024 characters."""
    config = json.dumps({"input0": [1, 2], "input1": [1, 2], "note": "x" * 900})
    desc = jobs.wait(jobs.start("ncf-long-reason", archives["basic"].read_bytes(), config=config))
    assert desc["CompilationJobStatus"] == "FAILED"
    reason = desc["FailureReason"]
    assert len(reason) == 1024 and reason.startswith("ClientError: InputConfiguration: ") and reason.endswith("...")


def test_the_neo_compiled_pt_scenario_names_the_model_as_older_neo_did(
    sandbox: Sandbox, archives: dict[str, Path]
) -> None:
    sandbox.reset("neo-compiled-pt")
    jobs = Jobs(sandbox)
    desc = jobs.wait(jobs.start("ncf-old-neo", archives["basic"].read_bytes()))
    assert desc["CompilationJobStatus"] == "COMPLETED", desc.get("FailureReason")
    bucket, key = desc["ModelArtifacts"]["S3ModelArtifacts"][5:].split("/", 1)
    assert key.endswith("/model-ml_c5.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(jobs.s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        assert tar.getnames() == ["compiled.pt"]


def test_stop_moves_a_running_job_to_stopping_then_stopped(jobs: Jobs, archives: dict[str, Path]) -> None:
    jobs.sb.neo.seconds = 30.0
    name = jobs.start("ncf-stop-me", archives["basic"].read_bytes())
    jobs.sm.stop_compilation_job(CompilationJobName=name)
    assert jobs.sm.describe_compilation_job(CompilationJobName=name)["CompilationJobStatus"] in ("STOPPING", "STOPPED")
    desc = jobs.wait(name)
    assert desc["CompilationJobStatus"] == "STOPPED"
    with pytest.raises(ClientError) as err:
        jobs.sm.stop_compilation_job(CompilationJobName=name)
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_unknown_jobs_and_roles_are_refused(jobs: Jobs) -> None:
    with pytest.raises(ClientError) as err:
        jobs.sm.stop_compilation_job(CompilationJobName="ghost")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as err:
        jobs.sm.create_compilation_job(
            CompilationJobName="no-role",
            RoleArn="arn:aws:iam::123456789012:role/ghost",
            InputConfig={"S3Uri": "s3://b/k", "DataInputConfig": "{}", "Framework": "PYTORCH"},
            OutputConfig={"S3OutputLocation": "s3://b/o", "TargetDevice": "ml_c5"},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "Could not assume role" in err.value.response["Error"]["Message"]


def test_neo_reads_s3_as_the_job_s_role(jobs: Jobs, archives: dict[str, Path]) -> None:
    """The execution role may read the models bucket only: an input elsewhere fails as access denied."""
    jobs.s3.create_bucket(Bucket="someone-elses-bucket")
    jobs.s3.put_object(Bucket="someone-elses-bucket", Key="model.tar.gz", Body=archives["basic"].read_bytes())
    jobs.sm.create_compilation_job(
        CompilationJobName="ncf-elsewhere",
        RoleArn=jobs.sb.names.sagemaker_role_arn,
        InputConfig={
            "S3Uri": "s3://someone-elses-bucket/model.tar.gz",
            "DataInputConfig": '{"input0": [1, 2]}',
            "Framework": "PYTORCH",
        },
        OutputConfig={"S3OutputLocation": f"s3://{jobs.sb.names.compilation_output('x')}", "TargetDevice": "ml_c5"},
        StoppingCondition={"MaxRuntimeInSeconds": 900},
    )
    desc = jobs.wait("ncf-elsewhere")
    assert desc["CompilationJobStatus"] == "FAILED"
    assert "Access Denied" in desc["FailureReason"]
