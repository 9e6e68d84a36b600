"""What a finished Neo job and ncf-tui leave in S3, made without waiting for Neo (for the build's tests).

Neo's archive ``<stem>-<target>.tar.gz`` holds the compiled model alone (``model.pth``, or ``compiled.pt``
as older Neo named it); ncf-tui's ``ncf-model.json`` is its own object in the same folder. The model here
is the engine's traced ``model.pth`` (a build only copies it; the server loads either).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any


def tar_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def traced_parts(archive: Path) -> tuple[bytes, dict[str, Any]]:
    """(model.pth bytes, sidecar) of an engine-made variant archive."""
    with tarfile.open(archive) as tar:
        model, side = tar.extractfile("model.pth"), tar.extractfile("ncf-model.json")
        assert model is not None and side is not None
        return model.read(), json.loads(side.read())


def put_neo_output(
    sb: Any,
    folder: str,
    traced_archive: Path,
    *,
    model_file: str = "model.pth",
    name: str = "model-ml_c5.tar.gz",
    sidecar: bool = True,
) -> tuple[str, str]:
    """Write a Neo output and (unless ``sidecar`` is False) ncf-tui's sidecar under ``folder`` (bucket/prefix).

    Returns (the archive's bucket/key, the model's sha256)."""
    bucket, _, prefix = folder.partition("/")
    model, meta = traced_parts(traced_archive)
    sha = hashlib.sha256(model).hexdigest()
    s3 = sb.client("s3")
    key = f"{prefix}/{name}" if prefix else name
    s3.put_object(Bucket=bucket, Key=key, Body=tar_bytes({model_file: model}))
    if sidecar:
        meta.update(compiled=True, model_file=model_file, model_sha256=sha, neo_framework_version="2.0")
        side_key = f"{prefix}/ncf-model.json" if prefix else "ncf-model.json"
        s3.put_object(Bucket=bucket, Key=side_key, Body=json.dumps(meta).encode())
    return f"{bucket}/{key}", sha


def engine_sidecar(sb: Any, job_name: str, variant: str, traced_archive: Path) -> Any:
    """Write ncf-model.json beside a finished sandbox Neo job's output with the engine's own code, as a
    compile step does once the job completes; returns the engine's ``Job`` record (sidecar_uri set)."""
    from ncf_tui.engine.neo import Candidate, CompileConfig, Job, write_sidecar

    from .engine.aws_kit import aws_for

    desc = sb.client("sagemaker").describe_compilation_job(CompilationJobName=job_name)
    job = Job(
        variant=variant,
        job_name=job_name,
        input_uri=desc["InputConfig"]["S3Uri"],
        output_uri=desc["OutputConfig"]["S3OutputLocation"],
        status=desc["CompilationJobStatus"],
        artifact_uri=desc["ModelArtifacts"]["S3ModelArtifacts"],
    )
    cfg = CompileConfig(bucket=sb.names.bucket, prefix=sb.names.prefix, role_arn=sb.names.sagemaker_role_arn)
    write_sidecar(aws_for(sb), job, Candidate(variant, str(traced_archive), True), cfg, lambda _event: None)
    assert job.sidecar_uri, "the Neo output holds no compiled model"
    return job
