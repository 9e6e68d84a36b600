"""SageMaker hosting in the sandbox: an endpoint is the model's image really running, reached by InvokeEndpoint.

moto keeps the model, the endpoint config and the endpoint, but its endpoint is ``InService`` at once and its
InvokeEndpoint answers canned data. Here, CreateEndpoint leaves the endpoint ``Creating`` while a worker
starts the model's container the way the sagemaker SDK's local mode does (``sagemaker.core.local.image``:
``serve`` as the command, port 8080, the model's ``Environment``, then ``/ping`` until 200): with a Docker
Engine, ``docker run`` of the image the build pushed (local mode itself needs ``docker compose``, which is
not installed here; the container is started with the same command, port and environment); with no Docker
Engine, the image's server (``container/serve.py``) started natively on the model of the build that pushed
the image's tag. ``/ping`` 200 makes the endpoint ``InService``; the container exiting, or no 200 in time,
makes it ``Failed`` with SageMaker's FailureReason wording (the ``did not pass the ping health check``
message users quote in aws/sagemaker-python-sdk#787). The container's output goes to CloudWatch Logs,
group ``/aws/sagemaker/Endpoints/<name>``, stream ``AllTraffic/<instance id>`` (SageMaker developer guide,
"Log groups and streams that Amazon SageMaker sends to Amazon CloudWatch Logs").

InvokeEndpoint forwards the body to the container's ``/invocations`` and answers what it answered; a 4xx/5xx
of the container is SageMaker's ``ModelError`` (botocore's sagemaker-runtime model: HTTP 424, with
``OriginalStatusCode``, ``OriginalMessage``, ``LogStreamArn``). DeleteEndpoint stops the container.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import moto_glue

if TYPE_CHECKING:
    from .cwlogs import LogSink
    from .server import Sandbox

PING_TIMEOUT = float(os.environ.get("NCF_SANDBOX_ENDPOINT_PING_TIMEOUT", "") or 180)
"""Seconds a container has to answer /ping 200 (the SDK's local mode waits HEALTH_CHECK_TIMEOUT_LIMIT)."""
SAGEMAKER_ENV = {"SAGEMAKER_BIND_TO_PORT": "8080", "SAGEMAKER_SAFE_PORT_RANGE": "8081-8089"}
PING_FAILED = (
    "The primary container for production variant {variant} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)
LOG_GROUP = "/aws/sagemaker/Endpoints/{name}"


@dataclass
class _Hosted:
    account_id: str
    region: str
    name: str
    variant: str
    image: str
    environment: dict[str, str]
    instance_id: str = field(default_factory=lambda: "i-" + secrets.token_hex(8))
    port: int = 0
    container: str = ""
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    sink: LogSink | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    runtime: str = ""
    pump: threading.Thread | None = None

    @property
    def stream(self) -> str:
        return f"{self.variant}/{self.instance_id}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


class EndpointHost:
    """Every endpoint of the sandbox: its container, its log stream, and the calls that reach it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sb = sandbox
        self._lock = threading.Lock()
        self._hosted: dict[tuple[str, str, str], _Hosted] = {}
        self.runtime_note = ""

    # ------------------------------------------------------------------------------------ the API

    def created(self, account_id: str, region: str, name: str) -> None:
        """CreateEndpoint went through moto: mark it Creating and start its container in the background."""
        spec = moto_glue.endpoint_container(account_id, region, name)
        moto_glue.set_endpoint_status(account_id, region, name, "Creating")
        hosted = _Hosted(account_id, region, name, spec["variant"], spec["image"], spec["environment"])
        with self._lock:
            old = self._hosted.pop((account_id, region, name), None)
            self._hosted[(account_id, region, name)] = hosted
        if old is not None:
            self._stop(old)
        threading.Thread(target=self._serve, args=(hosted,), name=f"endpoint-{name}", daemon=True).start()

    def deleted(self, account_id: str, region: str, name: str) -> None:
        with self._lock:
            hosted = self._hosted.pop((account_id, region, name), None)
        if hosted is not None:
            self._stop(hosted)

    def invoke(
        self, account_id: str, region: str, name: str, body: bytes, content_type: str, accept: str
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            hosted = self._hosted.get((account_id, region, name))
        status = moto_glue.endpoint_status(account_id, region, name)
        if status is None:
            raise moto_glue.SandboxApiError(
                "ValidationException", f"Endpoint {name} of account {account_id} not found."
            )
        if hosted is None or not hosted.ready.is_set() or status != "InService":
            # AWS's wording for a call to an endpoint that is not InService is not documented; the code is.
            raise moto_glue.SandboxApiError(
                "ValidationException", f"Endpoint {name} of account {account_id} is not in service ({status})."
            )
        request = urllib.request.Request(f"http://127.0.0.1:{hosted.port}/invocations", data=body, method="POST")
        request.add_header("Content-Type", content_type or "application/octet-stream")
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                data, code, kind = answer.read(), int(answer.status), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            data, code, kind = error.read(), int(error.code), ""
        except (urllib.error.URLError, OSError) as error:
            raise moto_glue.SandboxApiError(
                "ModelError", f"Received server error (0) from primary: the container did not answer: {error}"
            ) from None
        if code >= 400:
            # The wording users quote (aws/amazon-sagemaker-examples#1881, philschmid/cdk-samples#5).
            family = "client" if code < 500 else "server"
            arn = f"arn:aws:logs:{region}:{account_id}:log-group:{LOG_GROUP.format(name=name)}"
            console = (
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
                f"group={LOG_GROUP.format(name=name)} in account {account_id}"
            )
            raise moto_glue.ModelError(
                f'Received {family} error ({code}) from primary with message "{data.decode("utf-8", "replace")}". '
                f"See {console} for more information.",
                original_status=code,
                original_message=data.decode("utf-8", "replace"),
                log_stream_arn=f"{arn}:log-stream:{hosted.stream}",
            )
        return (
            200,
            {"Content-Type": kind or "application/json", "x-Amzn-Invoked-Production-Variant": hosted.variant},
            data,
        )

    def address(self, account_id: str, region: str, name: str) -> str | None:
        """``http://127.0.0.1:PORT`` of an InService endpoint's container (benches compare it with the API path)."""
        with self._lock:
            hosted = self._hosted.get((account_id, region, name))
        return f"http://127.0.0.1:{hosted.port}" if hosted is not None and hosted.ready.is_set() else None

    def shutdown(self) -> None:
        with self._lock:
            hosted, self._hosted = list(self._hosted.values()), {}
        for h in hosted:
            self._stop(h)

    # ------------------------------------------------------------------------------------ the container

    def _serve(self, hosted: _Hosted) -> None:
        from .cwlogs import LogSink

        try:
            sink = LogSink(self._sb.internal_client("logs"), LOG_GROUP.format(name=hosted.name), hosted.stream)
            sink.open()
            hosted.sink = sink
        except Exception as exc:  # the logs are AWS's side: a failure here is the sandbox's, said in the reason
            hosted.sink = None
            self._fail(hosted, f"the sandbox could not open the endpoint's log stream: {exc}")
            return
        try:
            if self._sb.docker.mode == "real":
                self._start_docker(hosted)
            else:
                self._start_native(hosted)
            if self._wait_ping(hosted):
                hosted.ready.set()
                moto_glue.set_endpoint_status(hosted.account_id, hosted.region, hosted.name, "InService")
                return
            self._fail(hosted, PING_FAILED.format(variant=hosted.variant))
        except _StartFailed as exc:
            hosted.sink.line(str(exc))
            self._fail(hosted, exc.reason)
        except Exception as exc:  # the worker must always leave the endpoint in a terminal status
            self._fail(hosted, f"sandbox hosting failed: {type(exc).__name__}: {exc}")

    def _fail(self, hosted: _Hosted, reason: str) -> None:
        self._halt(hosted)
        if hosted.sink is not None:
            hosted.sink.close()  # every line readable before anyone sees Failed
        moto_glue.set_endpoint_status(hosted.account_id, hosted.region, hosted.name, "Failed", reason)

    def _model_dir_override(self) -> bool:
        return bool(self._sb.scenario.endpoint_model_unloadable)

    def _start_docker(self, hosted: _Hosted) -> None:
        hosted.runtime = "docker"
        self.runtime_note = "docker run of the pushed image (docker compose is not installed; same command, port, env)"
        pulled = subprocess.run(
            ["docker", "pull", "-q", hosted.image], capture_output=True, text=True, timeout=600, check=False
        )
        if pulled.returncode != 0:
            raise _StartFailed(
                f"CannotStartContainerError. Please ensure the model container for variant {hosted.variant} "
                f"starts correctly when invoked with 'docker run <image> serve'",
                f"docker pull {hosted.image}: {pulled.stderr.strip()}",
            )
        env: list[str] = []
        for key, value in {**hosted.environment, **SAGEMAKER_ENV}.items():
            env += ["-e", f"{key}={value}"]
        volumes: list[str] = []
        if self._model_dir_override():
            hosted.workdir = Path(tempfile.mkdtemp(prefix="ncf-sandbox-endpoint-"))
            volumes = ["-v", f"{hosted.workdir}:/opt/ml/model:ro"]
        name = f"ncf-sandbox-endpoint-{hosted.instance_id}"
        run = subprocess.run(
            ["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8080", *env, *volumes, hosted.image, "serve"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if run.returncode != 0:
            raise _StartFailed(PING_FAILED.format(variant=hosted.variant), f"docker run: {run.stderr.strip()}")
        hosted.container = run.stdout.strip()
        port = (
            subprocess.run(
                ["docker", "port", hosted.container, "8080/tcp"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            .stdout.strip()
            .splitlines()
        )
        hosted.port = int(port[0].rsplit(":", 1)[-1]) if port else 0
        logs = subprocess.Popen(
            ["docker", "logs", "-f", hosted.container],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        hosted.process = logs
        hosted.pump = threading.Thread(target=self._pump, args=(hosted, logs), daemon=True)
        hosted.pump.start()

    def _start_native(self, hosted: _Hosted) -> None:
        hosted.runtime = "native"
        self.runtime_note = "no Docker Engine: the image's server started natively on the build's model"
        work = Path(tempfile.mkdtemp(prefix="ncf-sandbox-endpoint-"))
        hosted.workdir = work
        model_dir = work / "model"
        model_dir.mkdir()
        if not self._model_dir_override():
            self._materialise_model(hosted, model_dir)
        hosted.port = _free_port()
        serve = Path(self._sb.source_dir) / "container" / "serve.py"
        env = {
            **os.environ,
            **hosted.environment,
            **SAGEMAKER_ENV,
            "SAGEMAKER_BIND_TO_PORT": str(hosted.port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        command = [sys.executable, str(serve), "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1"]
        hosted.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        hosted.pump = threading.Thread(target=self._pump, args=(hosted, hosted.process), daemon=True)
        hosted.pump.start()

    def _materialise_model(self, hosted: _Hosted, model_dir: Path) -> None:
        """The model inside the image, natively: the Neo archive and sidecar of the build that pushed the tag
        (the fallback builder keeps no image files, the build's NEO_MODEL_S3_URI names them)."""
        from ncf_tui.engine.artifact import choose_archive, extract_archive, sidecar_key

        repo_tag = hosted.image.split("/", 1)[-1]
        repo, _, tag = repo_tag.partition(":")
        builds, _missing = self._sb.builds.batch_get(self._sb.builds.list_ids(None))
        for build in sorted(builds, key=lambda b: str(b.get("startTime", "")), reverse=True):
            env = {
                v["name"]: v.get("value", "") for v in (build.get("environment") or {}).get("environmentVariables", [])
            }
            if build.get("buildStatus") != "SUCCEEDED" or env.get("IMAGE_REPO_NAME") != repo:
                continue
            if tag and env.get("IMAGE_TAG") not in (tag, None):
                continue
            bucket, _, prefix = str(env.get("NEO_MODEL_S3_URI", "")).removeprefix("s3://").partition("/")
            s3 = self._sb.internal_client("s3")
            key = prefix
            if not key.endswith(".tar.gz"):
                listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("Contents", [])
                found, _why = choose_archive([str(o["Key"]) for o in listed], prefix)
                if found is None:
                    break
                key = found
            archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
                extract_archive(tar, model_dir)
            sidecar = s3.get_object(Bucket=bucket, Key=sidecar_key(key))["Body"].read()
            (model_dir / "ncf-model.json").write_bytes(sidecar)
            return
        raise _StartFailed(
            PING_FAILED.format(variant=hosted.variant),
            f"sandbox: no succeeded build pushed {repo_tag}, so its model is unknown",
        )

    def _pump(self, hosted: _Hosted, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            if hosted.sink is not None:
                hosted.sink.line(raw.decode("utf-8", "replace").rstrip())

    def _wait_ping(self, hosted: _Hosted) -> bool:
        deadline = time.monotonic() + PING_TIMEOUT
        while time.monotonic() < deadline and not hosted.stop.is_set():
            if hosted.port and _ping(hosted.port) == 200:
                return True
            if not self._alive(hosted):
                if hosted.pump is not None:  # the container's last lines reach the log before Failed is said
                    hosted.pump.join(10)
                return False
            hosted.stop.wait(0.25)  # the health check's pace, as SageMaker pings a starting container
        return False

    def _alive(self, hosted: _Hosted) -> bool:
        if hosted.container:
            state = subprocess.run(
                ["docker", "inspect", "--format", "{{.State.Running}}", hosted.container],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            return state.stdout.strip() == "true"
        return hosted.process is not None and hosted.process.poll() is None

    def _halt(self, hosted: _Hosted) -> None:
        hosted.stop.set()
        if hosted.container:
            subprocess.run(["docker", "rm", "-f", hosted.container], capture_output=True, timeout=60, check=False)
            hosted.container = ""
        if hosted.process is not None and hosted.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if hosted.runtime == "native":
                    os.killpg(hosted.process.pid, signal.SIGTERM)
                else:
                    hosted.process.terminate()
            try:
                hosted.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(
                        hosted.process.pid, signal.SIGKILL
                    ) if hosted.runtime == "native" else hosted.process.kill()
        if hosted.workdir is not None:
            shutil.rmtree(hosted.workdir, ignore_errors=True)
            hosted.workdir = None

    def _stop(self, hosted: _Hosted) -> None:
        self._halt(hosted)
        if hosted.sink is not None:
            hosted.sink.close()


class _StartFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
