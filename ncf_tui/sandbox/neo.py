"""SageMaker Neo compilation jobs that really run: STARTING -> INPROGRESS -> COMPLETED | FAILED.

moto marks a new job COMPLETED at once and writes nothing. Here a worker thread per job downloads
the input archive from the sandbox's S3 as the job's role, checks it the way Neo's PyTorch loader does
(a tar.gz holding exactly one ``.pth`` file, a DataInputConfig, the framework), runs the engine's
operator preflight for the emulated TVM release, and on success writes what real Neo writes: one
archive ``<input-stem>-<target>.tar.gz`` (``model-ml_c5.tar.gz`` for ``model.tar.gz`` compiled for
``ml_c5``) under OutputConfig.S3OutputLocation, holding the compiled TorchScript alone (``model.pth``;
``compiled.pt`` in the ``neo-compiled-pt`` scenario, the name older Neo releases used) and nothing of
ncf-tui's: Neo does not know our sidecar. ``ModelArtifacts.S3ModelArtifacts`` names that archive.
FailureReasons use Neo's wording (neo-ai/neo-loader's PyTorch loader, behind SageMaker's
``ClientError: `` prefix) and are cut to the 1,024 characters botocore's ``FailureReason`` shape allows.
Sources for each behaviour: docs/AWS-FIDELITY.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import moto_glue
from .tvm_check import TvmFailure, compile_and_check, tvm_available

DEFAULT_NEO_SECONDS = 1.5
NEO_SECONDS_ENV = "NCF_SANDBOX_NEO_SECONDS"
MODEL_FILE = "model.pth"
"""The compiled TorchScript's name in the output archive (Neo's current PyTorch examples load model.pth)."""
LEGACY_MODEL_FILE = "compiled.pt"
"""The name the SageMaker developer guide's PyTorch model_fn loads ("The compiled model is saved as compiled.pt")."""
FAILURE_REASON_MAX = 1024
"""botocore's sagemaker model: shape FailureReason is a string of at most 1,024 characters."""
_PREFIX = "ClientError: InputConfiguration: "
_CANNOT_CONVERT = (
    "TVM cannot convert the PyTorch model. Invalid model or input-shape mismatch. Make sure that inputs are "
    "lexically ordered and of the correct dimensionality. "
)
"""neo-ai/neo-loader, pytorch_model_loader.py: the message Neo gives when TVM's PyTorch frontend raises."""


class NeoFailure(Exception):
    """A compile that fails the job; the message is the job's FailureReason."""


def failure_reason(text: str) -> str:
    """``text`` as DescribeCompilationJob can carry it: at most FAILURE_REASON_MAX characters."""
    return text if len(text) <= FAILURE_REASON_MAX else text[: FAILURE_REASON_MAX - 3] + "..."


def output_name(input_key: str, target: str) -> str:
    """Neo's output archive name: the input archive's stem, ``-``, the target (``model-ml_c5.tar.gz``).

    AWS documents no name; real outputs show it: aws-samples/aws-greengrass-ml-deployment-sample (Makefile,
    ``.../tf-mobilenetv2-neo-.../output/model-ml_c5.tar.gz``) and neo-ai-dlr's compiled test models
    (``resnet_v1.5_50-ml_c4.tar.gz``, ``automl-ml_m4.tar.gz``)."""
    base = input_key.rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return f"{base or 'model'}-{target}.tar.gz"


def _target(output_config: dict[str, Any]) -> str:
    """TargetDevice, or for a TargetPlatform its OS and architecture (Neo documents no name for that case)."""
    device = str(output_config.get("TargetDevice") or "")
    if device:
        return device
    platform = output_config.get("TargetPlatform") or {}
    parts = [str(platform.get(k, "")).lower() for k in ("Os", "Arch", "Accelerator") if platform.get(k)]
    return "_".join(parts) or "unknown"


def neo_seconds_from_env(default: float = DEFAULT_NEO_SECONDS) -> float:
    raw = os.environ.get(NEO_SECONDS_ENV)
    if not raw:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ValueError(f"{NEO_SECONDS_ENV} must be a number of seconds, got {raw!r}") from None


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise NeoFailure(f"{_PREFIX}S3Uri {uri!r} is not a valid S3 URI (it must start with s3://).")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _parse_data_input_config(raw: str) -> list[int]:
    try:
        config = json.loads(raw)
    except ValueError:
        raise NeoFailure(
            f'{_PREFIX}Unable to parse DataInputConfig {raw!r}: it must be a JSON object such as {{"input0": [1, 2]}}.'
        ) from None
    shapes = list(config.values()) if isinstance(config, dict) else config if isinstance(config, list) else []
    if len(shapes) != 1 or not isinstance(shapes[0], list) or not all(isinstance(d, int) for d in shapes[0]):
        raise NeoFailure(
            f"{_PREFIX}DataInputConfig {raw!r} must name exactly one input with a list of integer dimensions, "
            'such as {"input0": [1, 2]}.'
        )
    return list(shapes[0])


def _read_archive(data: bytes) -> bytes:
    """The one ``.pth`` file of the input archive, as Neo's PyTorch loader finds it (any other file is ignored)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            pth = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".pth")]
            if not pth:
                raise NeoFailure(
                    f"{_PREFIX}No pth file found for PyTorch model. "
                    "Please make sure the framework you select is correct."
                )
            if len(pth) > 1:
                raise NeoFailure(f"{_PREFIX}Exactly one .pth file is allowed for PyTorch models.")
            model = tar.extractfile(pth[0])
            return model.read() if model else b""
    except (tarfile.TarError, EOFError, OSError):
        raise NeoFailure(f"{_PREFIX}Unable to untar input model. Please confirm the model is a tar.gz file.") from None


def compile_archive(
    data: bytes, data_input_config: str, framework: str, model_file: str = MODEL_FILE
) -> tuple[bytes, str]:
    """Compile one input archive as the sandbox's Neo does; returns (output archive, compiler note).

    The output archive holds ``model_file`` (the compiled TorchScript) and nothing else."""
    if framework.upper() != "PYTORCH":
        raise NeoFailure(
            f"{_PREFIX}Framework {framework} is not supported by the sandbox's Neo, which compiles "
            "PyTorch (TorchScript) models: set Framework to PYTORCH."
        )
    shape = _parse_data_input_config(data_input_config)
    model_bytes = _read_archive(data)
    with warnings.catch_warnings():
        # torch 2.x marks the TorchScript API deprecated; it is still what Neo consumes.
        warnings.simplefilter("ignore", DeprecationWarning)
        compiled, compiler = _compile_torchscript(model_bytes, shape)
    return _make_archive({model_file: compiled}), compiler


def _compile_torchscript(model_bytes: bytes, shape: list[int]) -> tuple[bytes, str]:

    import torch

    from ncf_tui.engine.preflight import DEFAULT_TVM_RELEASE, preflight_file

    with tempfile.TemporaryDirectory(prefix="ncf-neo-") as tmp:
        model_path = Path(tmp) / MODEL_FILE
        model_path.write_bytes(model_bytes)
        try:
            module = torch.jit.load(str(model_path), map_location="cpu")  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise NeoFailure(f"{_PREFIX}Framework cannot load PyTorch model. {_first_line(exc)}") from None
        verdict = preflight_file(model_path, DEFAULT_TVM_RELEASE)
        if not verdict.accepted:
            raise NeoFailure(f"{_PREFIX}{_CANNOT_CONVERT}{verdict.message}")
        module.eval()
        try:
            with torch.no_grad():
                reference = module(torch.zeros(shape, dtype=torch.float32))
        except Exception as exc:
            raise NeoFailure(f"{_PREFIX}{_CANNOT_CONVERT}{_first_line(exc)}") from None
        optimized = torch.jit.optimize_for_inference(torch.jit.freeze(module))
        with torch.no_grad():
            check = optimized(torch.zeros(shape, dtype=torch.float32))
        if not torch.allclose(reference, check, atol=1e-5):
            raise NeoFailure(f"{_PREFIX}Compilation changed the model's output; refusing to write it.")
        compiler = f"ncf-tui sandbox Neo (TorchScript freeze + optimize_for_inference; TVM {DEFAULT_TVM_RELEASE} ops"
        if tvm_available():
            try:
                compiler += f"; compiled and checked with {compile_and_check(module, shape)}"
            except TvmFailure as exc:
                raise NeoFailure(f"{_PREFIX}{_CANNOT_CONVERT}{exc}") from None
        compiler += ")"
        buffer = io.BytesIO()
        torch.jit.save(optimized, buffer)
    return buffer.getvalue(), compiler


def _make_archive(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mtime = int(time.time())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class _Job:
    account_id: str
    region: str
    name: str
    stop: threading.Event
    thread: threading.Thread | None = None


class NeoWorker:
    """Runs every compilation job of the sandbox in its own daemon thread."""

    def __init__(
        self,
        s3_client: Callable[[dict[str, str]], Any],
        seconds: float = DEFAULT_NEO_SECONDS,
        model_file: Callable[[], str] = lambda: MODEL_FILE,
    ) -> None:
        # s3_client(credentials) -> an S3 client acting with those credentials (the job's role).
        self._s3 = s3_client
        self.seconds = seconds
        # The compiled model's name inside the output archive (the scenario's, read when a job compiles).
        self._model_file = model_file
        self._jobs: dict[tuple[str, str, str], _Job] = {}
        self._lock = threading.Lock()

    def created(self, account_id: str, region: str, name: str) -> None:
        job = _Job(account_id, region, name, threading.Event())
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"neo-{name}", daemon=True)
        with self._lock:
            self._jobs[(account_id, region, name)] = job
        job.thread.start()

    def active(self, account_id: str, region: str) -> int:
        """Jobs of the account in the region still running (STARTING, INPROGRESS or STOPPING)."""
        with self._lock:
            return sum(
                1
                for (acct, reg, _), job in self._jobs.items()
                if acct == account_id and reg == region and job.thread is not None and job.thread.is_alive()
            )

    def stop(self, account_id: str, region: str, name: str) -> None:
        status = moto_glue.describe_compilation_job(account_id, region, name)["CompilationJobStatus"]
        with self._lock:
            job = self._jobs.get((account_id, region, name))
        if job is None or status not in ("STARTING", "INPROGRESS"):
            raise moto_glue.SandboxApiError(
                "ValidationException",
                f"Compilation job {name} is in status {status} and cannot be stopped.",
            )
        job.stop.set()
        moto_glue.update_compilation_job(account_id, region, name, status="STOPPING")

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every running job and wait for the threads (used by reset and close)."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            job.stop.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)

    def _wait(self, job: _Job, until: float) -> bool:
        """Sleep until `until` (monotonic); True if the job was stopped meanwhile."""
        return job.stop.wait(max(0.0, until - time.monotonic()))

    def _run(self, job: _Job) -> None:
        start = time.monotonic()
        update = moto_glue.update_compilation_job
        try:
            if self._wait(job, start + self.seconds * 0.25):
                update(job.account_id, job.region, job.name, status="STOPPED", ended=True)
                return
            update(job.account_id, job.region, job.name, status="INPROGRESS", started=True)
            outcome = self._compile(job)
            if self._wait(job, start + self.seconds):
                update(job.account_id, job.region, job.name, status="STOPPED", ended=True)
                return
            if isinstance(outcome, NeoFailure):
                update(
                    job.account_id,
                    job.region,
                    job.name,
                    status="FAILED",
                    failure_reason=failure_reason(str(outcome)),
                    ended=True,
                )
            else:
                uri, digest, config = outcome
                update(
                    job.account_id,
                    job.region,
                    job.name,
                    status="COMPLETED",
                    artifacts_uri=uri,
                    artifact_digest=digest,
                    derived_data_input_config=config,
                    ended=True,
                )
        except moto_glue.SandboxApiError:
            return  # the job vanished (the sandbox was reset under it)
        except Exception as exc:  # a sandbox bug must still end the job, never leave it INPROGRESS
            try:
                update(
                    job.account_id,
                    job.region,
                    job.name,
                    status="FAILED",
                    failure_reason=failure_reason(
                        f"InternalServerError: the sandbox's compiler crashed: {_first_line(exc)}"
                    ),
                    ended=True,
                )
            except moto_glue.SandboxApiError:
                return

    def _compile(self, job: _Job) -> NeoFailure | tuple[str, str, str]:
        desc = moto_glue.describe_compilation_job(job.account_id, job.region, job.name)
        input_config = desc.get("InputConfig") or {}
        output_config = desc.get("OutputConfig") or {}
        # Neo reads and writes S3 as the job's execution role, so a role without the rights really fails.
        role = moto_glue.assume_role_credentials(
            job.account_id, job.region, str(desc.get("RoleArn", "")), f"SageMaker-{job.name}"[:64]
        )
        s3 = self._s3(role)
        try:
            bucket, key = split_s3_uri(str(input_config.get("S3Uri", "")))
            try:
                data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                if code == "AccessDenied":
                    raise NeoFailure(
                        f"{_PREFIX}Unable to download the model from {input_config.get('S3Uri')}: Access Denied. "
                        "Please make sure the role given to SageMaker can s3:GetObject it."
                    ) from None
                if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
                    raise NeoFailure(
                        f"{_PREFIX}S3 object does not exist: {input_config.get('S3Uri')}. Please check the "
                        "S3Uri of the model artifacts."
                    ) from None
                raise NeoFailure(f"{_PREFIX}Unable to download the model from S3: {_first_line(exc)}") from None
            archive, _compiler = compile_archive(
                data,
                str(input_config.get("DataInputConfig", "")),
                str(input_config.get("Framework", "")),
                self._model_file(),
            )
            out_bucket, out_prefix = split_s3_uri(str(output_config.get("S3OutputLocation", "")))
            name = output_name(key, _target(output_config))
            out_key = f"{out_prefix.rstrip('/')}/{name}".lstrip("/")
            try:
                s3.put_object(Bucket=out_bucket, Key=out_key, Body=archive)
            except Exception as exc:
                raise NeoFailure(
                    f"ClientError: OutputConfiguration: Unable to upload the compiled model to "
                    f"s3://{out_bucket}/{out_key}: {_first_line(exc)}"
                ) from None
        except NeoFailure as failure:
            return failure
        return (
            f"s3://{out_bucket}/{out_key}",
            hashlib.sha256(archive).hexdigest(),
            str(input_config.get("DataInputConfig", "")),
        )
