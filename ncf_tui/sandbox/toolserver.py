"""A warm `aws` (and, without a Docker Engine, a warm `docker`) for the sandbox's CodeBuild runner.

A CodeBuild build of the project's buildspec calls the AWS CLI six times, and a cold `aws` spends about half a
second importing awscli and botocore before it sends a byte. This process imports them once; each call on the
build's PATH is a tiny client (`CLIENT`) that hands its argv, environment, working directory and its three
standard file descriptors over a Unix socket, and the server forks a child that becomes that call: the same
awscli code, the same arguments, environment and streams, the exit code sent back. Nothing of one call
survives into the next (each is a fresh fork of the imported-but-unused parent).

If the server is gone, the client runs the cold tool itself, so a build never depends on this process.
A client that dies (the build was stopped: CodeBuild's runner kills the phase's process group) closes the
socket, and its child, watching the socket, exits at once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Any

WARM_ENV = "NCF_SANDBOX_WARM_TOOLS"
"""Set to 0 to run every call cold (to measure what the server saves: bench/)."""

_HEADER = struct.Struct("!I")

# The client runs as `python -IS <this file> <tool> <args...>`: isolated, no site import, so it starts in
# milliseconds. It is written next to the shims; on any failure to reach the server it execs the cold tool.
CLIENT = r"""
import json, os, socket, struct, sys
tool, args = sys.argv[1], sys.argv[2:]
cold = json.loads(os.environ.pop("NCF_SANDBOX_COLD_" + tool.upper()))
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.environ.pop("NCF_SANDBOX_TOOLSERVER"))
    body = json.dumps({"tool": tool, "argv": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(s, [struct.pack("!I", len(body))], [0, 1, 2])
    s.sendall(body)
except OSError:
    os.execv(cold[0], cold + args)
got = b""
while len(got) < 4:
    chunk = s.recv(4 - len(got))
    if not chunk:
        sys.stderr.write("sandbox: the warm " + tool + " ended without an exit status\n")
        os._exit(255)
    got += chunk
os._exit(struct.unpack("!i", got)[0])
"""


def package_pythonpath() -> str:
    """PYTHONPATH with the folder that holds `ncf_tui` first: what a process started by the sandbox (the warm
    server, a cold `docker` builder) needs to import this package from a checkout as from an install."""
    root = str(Path(__file__).resolve().parents[2])
    inherited = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{inherited}" if inherited else root


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _std_streams() -> None:
    """Fresh sys.std* on fds 0-2 (the parent's objects wrap the server's own, now replaced, streams)."""
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=False)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)


def _run_tool(tool: str, argv: list[str]) -> int:
    if tool == "aws":
        import awscli
        from awscli.clidriver import main as aws_main

        # What `import awscli` and the `aws` script do to the environment, done again for this call's own.
        paths = []
        if "AWS_DATA_PATH" in os.environ:
            paths = [
                str(Path(os.path.expandvars(p)).expanduser()) for p in os.environ["AWS_DATA_PATH"].split(os.pathsep)
            ]
        paths.append(str(Path(awscli.__file__).resolve().parent / "data"))
        os.environ["AWS_DATA_PATH"] = os.pathsep.join(paths)
        if os.environ.get("LC_CTYPE", "") == "UTF-8":
            os.environ["LC_CTYPE"] = "en_US.UTF-8"
        sys.argv = ["aws", *argv]
        return int(aws_main() or 0)
    from .docker_builder import main as docker_main

    sys.argv = ["docker", *argv]
    return int(docker_main(argv) or 0)


def _child(conn: socket.socket) -> None:
    """In the forked child: become the call, send its exit status, and leave without running anything else."""
    code = 255
    try:
        header, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
        if len(fds) != 3 or len(header) != _HEADER.size:
            os._exit(255)
        (length,) = _HEADER.unpack(header)
        call: dict[str, Any] = json.loads(_recv_exact(conn, length))
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(call["cwd"])
        os.environ.clear()
        os.environ.update(call["env"])
        _std_streams()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

        def watch() -> None:
            # The client holds the socket until it has our status; EOF before that means it was killed.
            with contextlib.suppress(OSError):
                conn.recv(1)
            os._exit(143)

        threading.Thread(target=watch, daemon=True).start()
        try:
            code = _run_tool(str(call["tool"]), [str(a) for a in call["argv"]])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except KeyboardInterrupt:
            code = 130
        except BaseException as error:  # the cold tool would print its traceback and exit 1
            import traceback

            traceback.print_exception(error)
            code = 1
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            conn.sendall(struct.pack("!i", code))
    finally:
        os._exit(code)


def serve(listener: socket.socket, parent_gone: int) -> None:
    """Import the tools, then fork a child for each connection until the sandbox that started us is gone (its
    end of the `parent_gone` pipe closes, even if it was killed)."""
    import select

    import awscli.clidriver

    from . import docker_builder  # noqa: F401  (imported for the children)

    awscli.clidriver.create_clidriver()  # imports the CLI's plugins and customizations; the driver is dropped
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished children are reaped by the kernel
    while True:
        ready, _, _ = select.select([listener.fileno(), parent_gone], [], [])
        if parent_gone in ready:
            return
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            os.close(parent_gone)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the call may wait for its own subprocesses
            _child(conn)
        conn.close()


class ToolServer:
    """One warm server for a sandbox's builds, started on first use; `close()` stops it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Any = None
        self._dir: Path | None = None
        self._keep: int | None = None

    def _ensure(self) -> Path:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None and self._dir is not None:
                return self._dir
            import subprocess
            import tempfile

            self._forget()  # a server that died: its pipe and folder go before a new one starts
            self._dir = Path(tempfile.mkdtemp(prefix="ncf-tools-"))
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self._dir / "socket"))
            listener.listen(64)
            gone_r, self._keep = os.pipe()  # both ends non-inheritable: only the server gets the read end
            env = {**os.environ, "PYTHONPATH": package_pythonpath()}
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "ncf_tui.sandbox.toolserver", str(listener.fileno()), str(gone_r)],
                    pass_fds=[listener.fileno(), gone_r],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            finally:
                listener.close()
                os.close(gone_r)
            return self._dir

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (tests)."""
        proc = self._proc
        return int(proc.pid) if proc is not None and proc.poll() is None else None

    def write_shim(self, path: Path, tool: str, cold: list[str], env: dict[str, str] | None = None) -> None:
        """An executable `path` that runs `tool` warm, or `cold` (argv prefix) if the server cannot answer."""
        import shlex

        directory = self._ensure()
        assigns = {
            **(env or {}),
            "NCF_SANDBOX_TOOLSERVER": str(directory / "socket"),
            f"NCF_SANDBOX_COLD_{tool.upper()}": json.dumps(cold),
        }
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in assigns.items())
        client_file = path.with_name(".warm-client.py")
        if not client_file.exists():
            client_file.write_text(CLIENT)
        client = shlex.quote(str(client_file))
        path.write_text(f'#!/bin/sh\n{prefix} exec {shlex.quote(sys.executable)} -IS {client} {tool} "$@"\n')
        path.chmod(0o755)

    def close(self) -> None:
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        """Stop the server (if any) and remove its pipe and folder; the caller holds the lock."""
        if self._keep is not None:
            os.close(self._keep)  # the server sees EOF and returns
            self._keep = None
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=10)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])), int(sys.argv[2]))
