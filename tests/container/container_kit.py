"""Helpers for the container tests: start `container/serve.py` as a real process and talk to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.waits import HANG

REPO = Path(__file__).resolve().parents[2]
CONTAINER = REPO / "container"
SERVE = CONTAINER / "serve.py"
SERVED_VARIANTS = ("basic", "relu", "mlp", "full_manual_norm")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A real `serve.py` process on a loopback port, its output captured in a file."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def post(self, body: bytes | str, content_type: str = "application/json") -> requests.Response:
        return self.session.post(
            f"{self.url}/invocations", data=body, headers={"Content-Type": content_type}, timeout=30
        )

    def post_json(self, payload: object) -> requests.Response:
        return self.post(json.dumps(payload))

    def stop(self) -> int:
        self.session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def start_server(
    model_dir: Path,
    log_path: Path,
    *,
    args: tuple[str, ...] = ("--workers", "1"),
    env: dict[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
) -> Server:
    """Start `python container/serve.py serve ...` and wait until /ping answers 200."""
    port = free_port() if port is None else port
    command = [sys.executable, str(SERVE), "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1", *args]
    if "SAGEMAKER_BIND_TO_PORT" not in (env or {}):
        command += ["--port", str(port)]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NCF_TORCH_THREADS": "1", **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
    server = Server(process, port, log_path)
    if wait:
        wait_healthy(server)
    return server


def wait_healthy(server: Server, timeout: float = HANG) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if requests.get(f"{server.url}/ping", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"server not healthy after {timeout} s:\n{server.log()}")
