"""Smoke-test the image's server natively, since no container can run here.

The image's files (as COPY/ADD put them) are laid out under a temporary root, and the server the image
would start (`serve.py`, preferably the one its ENTRYPOINT/CMD names) runs from there with this
Python against `<root>/opt/ml/model`. So a Dockerfile that forgets the model, or a helper module of
the server, fails here as the image would fail in SageMaker. One `/ping` and one `/invocations`, then
SIGTERM, as SageMaker stops a container.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .plan import BuildError, StageState

MODEL_DIR = "/opt/ml/model"
SERVER_NAME = "serve.py"
TIMEOUT_ENV = "NCF_SANDBOX_SMOKE_TIMEOUT"
PROBE = {"user_id": 0, "item_id": 0}


def find_server(final: StageState) -> str | None:
    """The image path of the server script, preferring the one ENTRYPOINT/CMD runs."""
    candidates = sorted(p for p, e in final.fs.items() if e.kind == "file" and posixpath.basename(p) == SERVER_NAME)
    if not candidates:
        return None
    command = [*(final.entrypoint or []), *(final.cmd or [])]
    for word in command:
        resolved = posixpath.normpath(posixpath.join(final.workdir, word))
        if resolved in candidates:
            return resolved
    return candidates[0]


def materialise(final: StageState, root: Path) -> None:
    """Write the image's known files under `root` (copies, never links, so modes stay the image's)."""
    for path in sorted(final.fs):
        entry = final.fs[path]
        target = root / path.lstrip("/")
        if entry.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind == "symlink":
            link = entry.link
            if link.startswith("/"):
                link = os.path.relpath(root / link.lstrip("/"), target.parent)
            target.symlink_to(link)
            continue
        if entry.data is not None:
            target.write_bytes(entry.data)
        elif entry.source is not None:
            shutil.copyfile(entry.source, target)
        target.chmod(entry.mode | 0o400)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _image_env(final: StageState, root: Path) -> dict[str, str]:
    """The image's ENV with absolute paths that exist in the image mapped under `root` (PATH left alone)."""
    out: dict[str, str] = {}
    for key, value in final.env.items():
        if key == "PATH":
            continue
        parts = [
            str(root / part.lstrip("/")) if part.startswith("/") and (root / part.lstrip("/")).exists() else part
            for part in value.split(":")
        ]
        out[key] = ":".join(parts)
    return out


def _score_of(body: object) -> float | None:
    """The score in a response: `{"score": s}`, `{"scores": [s]}`, `{"predictions": [s]}` or a number."""
    if isinstance(body, bool):
        return None
    if isinstance(body, int | float):
        return float(body)
    if isinstance(body, list) and body:
        return _score_of(body[0])
    if isinstance(body, dict):
        for key in ("score", "scores", "predictions", "prediction"):
            if key in body:
                return _score_of(body[key])
    return None


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def run_smoke_test(final: StageState, work: Path, note: Callable[[str], None]) -> None:
    """Run the server from the image's files, probe it, stop it; raise BuildError if it misbehaves."""
    server = find_server(final)
    if server is None:
        note(f"sandbox: no {SERVER_NAME} in the image: smoke test skipped")
        return
    root = work / "rootfs"
    materialise(final, root)
    model_dir = root / MODEL_DIR.lstrip("/")
    if MODEL_DIR not in final.fs:
        note(f"sandbox: the Dockerfile copies nothing into {MODEL_DIR}")
    port = _free_port()
    timeout = float(os.environ.get(TIMEOUT_ENV, "") or 60)
    script = root / server.lstrip("/")
    command = [sys.executable, str(script), "serve", "--model-dir", str(model_dir), "--port", str(port)]
    env = {**os.environ, "SAGEMAKER_MODEL_SERVER_WORKERS": "1", **_image_env(final, root)}
    env["SAGEMAKER_BIND_TO_PORT"] = str(port)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    workdir = root / final.workdir.lstrip("/")
    note(f"sandbox: smoke test: python {server} serve --model-dir {MODEL_DIR} --port {port} (image files under {root})")
    log = work / "server.log"
    started = time.monotonic()
    with log.open("wb") as log_handle:
        process = subprocess.Popen(
            command,
            cwd=workdir if workdir.is_dir() else root,
            env=env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so leftover workers can be reaped
        )
    try:
        _wait_for_ping(process, port, timeout=timeout, started=started, log=log, note=note)
        _probe_invocations(port, log, note)
    finally:
        _stop(process, note)


def _fail(message: str, log: Path, note: Callable[[str], None]) -> BuildError:
    for line in _tail(log):
        note(f"server: {line}")
    return BuildError(f"smoke test failed: {message}")


def _wait_for_ping(
    process: subprocess.Popen[bytes],
    port: int,
    *,
    timeout: float,
    started: float,
    log: Path,
    note: Callable[[str], None],
) -> None:
    url = f"http://127.0.0.1:{port}/ping"
    last = "no answer"
    while time.monotonic() - started < timeout:
        code = process.poll()
        if code is not None:
            raise _fail(f"the server exited with code {code} before /ping answered 200", log, note)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    note(f"GET /ping -> 200 after {time.monotonic() - started:.1f}s")
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            last = str(getattr(error, "reason", error))
        time.sleep(0.25)
    raise _fail(f"GET /ping did not answer 200 within {timeout:.0f}s (last: {last})", log, note)


def _probe_invocations(port: int, log: Path, note: Callable[[str], None]) -> None:
    body = json.dumps(PROBE).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:300]
        raise _fail(f"POST /invocations -> {error.code} {detail}", log, note) from None
    except (urllib.error.URLError, OSError) as error:
        raise _fail(f"POST /invocations failed: {error}", log, note) from None
    text = raw.decode(errors="replace")
    try:
        score = _score_of(json.loads(text))
    except json.JSONDecodeError:
        score = None
    if score is None or not 0.0 <= score <= 1.0:
        raise _fail(f"POST /invocations -> {status} {text[:300]}: expected a score in [0, 1]", log, note)
    note(f"POST /invocations {json.dumps(PROBE)} -> {status} {text.strip()[:200]}")


def _stop(process: subprocess.Popen[bytes], note: Callable[[str], None]) -> None:
    if process.poll() is not None:
        _reap_group(process.pid)
        return
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=15)
        note(f"server stopped with SIGTERM (exit {code})")
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        note("server ignored SIGTERM for 15s and was killed")
    _reap_group(process.pid)


def _reap_group(pgid: int) -> None:
    """Kill what is left of the server's process group (workers a dead master left behind)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
