"""The real Docker Engine behind the sandbox's CodeBuild, when one answers.

- `probe()` says whether a Docker Engine is reachable (`DOCKER_HOST` or the default socket), through the
  real `docker` CLI; `resolve_mode()` turns `NCF_SANDBOX_DOCKER` (auto, real, fallback) into a choice.
- `ensure_stand_in_base()` makes, once per machine, the image the Dockerfile builds FROM: SageMaker's Neo
  PyTorch inference image cannot be pulled here, so a Debian root filesystem (`debootstrap
  --variant=minbase`, `docker import`) with Python, the CPU torch this machine has and a stand-in
  `neopytorch` is tagged with the Neo image's exact name. Docker's image store is the cache.
- `smoke_run()` starts a pushed image as SageMaker hosting does (`docker run IMAGE serve`, port 8080,
  SageMaker's environment variables), checks `/ping` and one `/invocations`, and stops it.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MODE_ENV = "NCF_SANDBOX_DOCKER"
MODES = ("auto", "real", "fallback")
STAND_IN_LABEL = "com.ncf-tui.sandbox.stand-in"
# Bump when the recipe below changes: a cached stand-in with another value is rebuilt.
STAND_IN_RECIPE = "2"
DEBIAN_SUITE = "bookworm"
ROOTFS_TAG = f"ncf-tui-sandbox/debian-minbase:{DEBIAN_SUITE}"
STAND_IN_NOTE = (
    "the base image is a stand-in built on this machine (Debian {suite} minbase, Python, torch {torch} CPU, "
    "numpy, this machine's CA bundle and a stand-in neopytorch) under the Neo image's name: only the Neo "
    "runtime differs from SageMaker's"
)
NEOPYTORCH_STAND_IN = '''"""Stand-in for SageMaker Neo's `neopytorch` (ncf-tui sandbox base image).

The real module ships only in SageMaker's Neo inference images and loads the operators a Neo-compiled
model needs. This one accepts the call the server makes and records it; a model compiled by real Neo
for an ml_* target would not load with it.
"""

STAND_IN = True
calls = []


def config(model_dir=None, neo_runtime=False, **kwargs):
    calls.append({"model_dir": model_dir, "neo_runtime": neo_runtime, **kwargs})
'''

Log = Callable[[str], None]


@dataclass(frozen=True)
class EngineProbe:
    available: bool
    server_version: str = ""
    host: str = ""
    reason: str = ""


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def probe(timeout: float = 15.0) -> EngineProbe:
    """Is a Docker Engine reachable through the `docker` CLI? (the reason when not)"""
    cli = shutil.which("docker")
    if cli is None:
        return EngineProbe(False, reason="no docker CLI on PATH")
    try:
        done = subprocess.run(
            [cli, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return EngineProbe(False, host=docker_host(), reason=f"docker version did not answer: {exc}")
    version = done.stdout.strip()
    if done.returncode != 0 or not version:
        why = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        return EngineProbe(False, host=docker_host(), reason=f"no Docker Engine at {docker_host()}: {why}")
    return EngineProbe(True, server_version=version, host=docker_host())


def requested_mode(value: str | None = None) -> str:
    mode = (value if value is not None else os.environ.get(MODE_ENV, "")).strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{MODE_ENV}={mode!r}: use one of {', '.join(MODES)}")
    return mode


def resolve_mode(value: str | None = None) -> tuple[str, EngineProbe | None, str]:
    """("real" | "fallback", the probe if one ran, why) for a requested mode."""
    mode = requested_mode(value)
    if mode == "fallback":
        return "fallback", None, f"{MODE_ENV}=fallback"
    found = probe()
    if not found.available:
        if mode == "real":
            raise ValueError(f"{MODE_ENV}=real but {found.reason}")
        return "fallback", found, found.reason
    if shutil.which("docker-registry") is None:
        if mode == "real":
            raise ValueError(f"{MODE_ENV}=real but docker-registry is not installed")
        return "fallback", found, "a Docker Engine answers but docker-registry is not installed"
    return "real", found, f"Docker Engine {found.server_version} at {found.host}"


def _docker(*args: str, timeout: float = 600, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _label(image: str, label: str) -> str | None:
    """The image's label value ("" if unset), None if the image is not in the local store."""
    done = _docker("image", "inspect", "--format", "{{json .Config.Labels}}", image, timeout=60)
    if done.returncode != 0:
        return None
    labels = json.loads(done.stdout.strip() or "null") or {}
    return str(labels.get(label, ""))


def _run_logged(command: list[str], log: Log, what: str, timeout: float = 1800) -> None:
    log(f"sandbox: {what}: {' '.join(command[:4])}{' ...' if len(command) > 4 else ''}")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    tail: list[str] = []
    for raw in proc.stdout:
        text = raw.decode("utf-8", "replace").rstrip()
        tail = [*tail[-20:], text]
    code = proc.wait(timeout)
    if code != 0:
        raise RuntimeError(f"{what} failed (exit {code}): " + " | ".join(tail[-5:]))


def _host_torch() -> str:
    from importlib.metadata import version

    return version("torch").split("+")[0]


def _make_rootfs(log: Log) -> None:
    if _label(ROOTFS_TAG, STAND_IN_LABEL) is not None:
        log(f"sandbox: Debian root filesystem {ROOTFS_TAG} cached in Docker's image store")
        return
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="ncf-sandbox-rootfs-") as tmp:
        root = Path(tmp) / "root"
        _run_logged(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                DEBIAN_SUITE,
                str(root),
            ],
            log,
            f"making a Debian {DEBIAN_SUITE} root filesystem",
        )
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "--change", f"LABEL {STAND_IN_LABEL}=rootfs", "-", ROOTFS_TAG],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0:
            raise RuntimeError(f"docker import failed: {imported.stderr.strip()}")
    log(f"sandbox: imported the root filesystem as {ROOTFS_TAG}")


def ensure_stand_in_base(image: str, log: Log) -> str:
    """Make sure `image` (the Neo inference image's name) is in the local store; return what it is.

    A real image of that name (pulled by hand) is used as it is; a stand-in of this recipe is reused;
    anything else is built: the Debian root filesystem, then torch (the wheel pip finds for this
    machine's torch version) and the stand-in `neopytorch` installed by a container and committed.
    """
    label = _label(image, STAND_IN_LABEL)
    torch = _host_torch()
    note = STAND_IN_NOTE.format(suite=DEBIAN_SUITE, torch=torch)
    if label is not None and label == "":
        log(f"sandbox: {image} is in the local image store and is not a stand-in: using it as it is")
        return "real"
    if label == STAND_IN_RECIPE:
        log(f"sandbox: {note} (cached)")
        return "stand-in"
    started = time.monotonic()
    old = _docker("image", "inspect", "--format", "{{.Id}}", image, timeout=60).stdout.strip() if label else ""
    log(f"sandbox: {image} cannot be pulled here; making a stand-in under its name, once per machine")
    _make_rootfs(log)
    with tempfile.TemporaryDirectory(prefix="ncf-sandbox-base-") as tmp:
        wheels = Path(tmp) / "wheels"
        _run_logged(
            [sys.executable, "-m", "pip", "download", "-q", "--dest", str(wheels), f"torch=={torch}", "numpy"],
            log,
            f"fetching torch {torch}, numpy and their dependencies as wheels",
        )
        # This machine's CA bundle, so that the image reaches the package registries this machine reaches
        # (a build's `pip install`); SageMaker's image carries its own.
        host_ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
        if host_ca.is_file():
            shutil.copyfile(host_ca, Path(tmp) / "ca-certificates.crt")
        (Path(tmp) / "neopytorch").mkdir()
        (Path(tmp) / "neopytorch" / "__init__.py").write_text(NEOPYTORCH_STAND_IN)
        name = f"ncf-sandbox-base-{os.getpid()}-{int(time.time())}"
        script = (
            "set -e; python3 -m venv /opt/neo; "
            "/opt/neo/bin/pip install -q --no-cache-dir --no-index --find-links /wheels torch numpy; "
            "if [ -f /stand-in/ca-certificates.crt ]; then "
            "cp /stand-in/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt; "
            "printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > /etc/pip.conf; fi; "
            "cp -r /stand-in/neopytorch \"$(/opt/neo/bin/python -c 'import sysconfig; "
            'print(sysconfig.get_paths()["purelib"])\')"/; '
            "find /opt/neo -depth -name __pycache__ -type d -exec rm -rf {} +; "
            '/opt/neo/bin/python -c "import torch, neopytorch; print(torch.__version__)"'
        )
        try:
            _run_logged(
                ["docker", "run", "--name", name, "-v", f"{wheels}:/wheels:ro", "-v", f"{tmp}:/stand-in:ro",
                 ROOTFS_TAG, "/bin/sh", "-c", script],
                log,
                "installing torch and the stand-in neopytorch",
            )  # fmt: skip
            changes = [
                "ENV PATH=/opt/neo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                f"LABEL {STAND_IN_LABEL}={STAND_IN_RECIPE}",
                f'LABEL com.ncf-tui.sandbox.stand-in.for="{image}"',
                'CMD ["python"]',
            ]
            args = ["commit"]
            for change in changes:
                args += ["--change", change]
            committed = _docker(*args, name, image, timeout=600)
            if committed.returncode != 0:
                raise RuntimeError(f"docker commit failed: {committed.stderr.strip()}")
        finally:
            _docker("rm", "-f", name, timeout=60)
    if old:  # an older recipe's stand-in: keep the disk tidy
        _docker("image", "rm", old, timeout=120)
    log(f"sandbox: {note} (made in {time.monotonic() - started:.0f} s)")
    return "stand-in"


# ----------------------------------------------------------------------------------------- smoke run

SAGEMAKER_ENV = {
    # What SageMaker hosting passes a single-container model (docs/AWS-FIDELITY.md has the sources).
    "SAGEMAKER_BIND_TO_PORT": "8080",
    "SAGEMAKER_SAFE_PORT_RANGE": "8081-8089",
}


@dataclass
class SmokeResult:
    image: str
    ok: bool
    ping_status: int = 0
    ping_seconds: float = 0.0
    invocation: dict[str, Any] = field(default_factory=dict)
    pair: tuple[int, int] = (0, 0)
    runtime_line: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pair"] = list(self.pair)
        return data


def _request(url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")  # noqa: S310
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (http://127.0.0.1)
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def smoke_run(image: str, pair: tuple[int, int], log: Log, timeout: float = 180.0) -> SmokeResult:
    """`docker run IMAGE serve` as SageMaker would, `/ping` until 200, one `/invocations`, then stop."""
    result = SmokeResult(image=image, ok=False, pair=pair)
    pulled = _docker("pull", "-q", image, timeout=600)
    if pulled.returncode != 0:
        result.message = f"docker pull {image} failed: {pulled.stderr.strip()}"
        return result
    env: list[str] = []
    for key, value in SAGEMAKER_ENV.items():
        env += ["-e", f"{key}={value}"]
    started = time.monotonic()
    run = _docker("run", "-d", "--rm", "-p", "127.0.0.1::8080", *env, image, "serve", timeout=120)
    if run.returncode != 0:
        result.message = f"docker run failed: {run.stderr.strip()}"
        return result
    container = run.stdout.strip()
    try:
        port = _docker("port", container, "8080/tcp", timeout=30).stdout.strip().splitlines()
        address = port[0].strip() if port else ""
        if not address:
            result.message = "the container published no port 8080"
            return result
        base = f"http://{address}"
        deadline = started + timeout
        status = 0
        while time.monotonic() < deadline:
            try:
                status, _ = _request(f"{base}/ping", timeout=2)
            except (urllib.error.URLError, OSError):
                status = 0
            if status == 200:
                break
            alive = _docker("inspect", "--format", "{{.State.Running}}", container, timeout=30)
            if alive.stdout.strip() != "true":
                break
            time.sleep(0.2)  # polling a container's readiness; not a test wait
        result.ping_status = status
        result.ping_seconds = round(time.monotonic() - started, 2)
        logs = _docker("logs", container, timeout=30)
        lines = (logs.stdout + logs.stderr).splitlines()
        result.runtime_line = next((line for line in lines if '"runtime"' in line), lines[0] if lines else "")
        if status != 200:
            result.message = f"/ping never answered 200 (last {status}); container log: " + " | ".join(lines[-5:])
            return result
        body = json.dumps({"user_id": pair[0], "item_id": pair[1]}).encode()
        code, answer = _request(f"{base}/invocations", body, timeout=30)
        try:
            result.invocation = {"status": code, **json.loads(answer)}
        except ValueError:
            result.invocation = {"status": code, "body": answer.decode("utf-8", "replace")[:200]}
        result.ok = code == 200
        result.message = (
            f"/ping 200 after {result.ping_seconds:.1f} s; /invocations {pair} -> {code}"
            if result.ok
            else f"/invocations answered {code}: {answer[:200]!r}"
        )
        return result
    finally:
        _docker("stop", "-t", "10", container, timeout=60)
        log(f"sandbox: smoke run of {image}: {result.message}")
