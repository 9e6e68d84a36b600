"""Benchmark the container's server against a baseline of the seed's kind, measured in the same run.

    python bench/serve/run.py [--duration 4] [--concurrency 8] [--variant full_manual_norm]

Both servers serve the same variant of the bundled sample model on loopback, measured in turn,
driven by this process (a separate process from either server) with the same load: single pairs and
batches of 64 with `--concurrency` keep-alive connections, top-10 over all items with one connection
(a latency figure). Prints requests/s, p50 and p99 per scenario and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASELINE = Path(__file__).resolve().with_name("baseline.py")
SERVE = REPO / "container" / "serve.py"


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(payload: bytes) -> bytes:
    head = (
        "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class Connection:
    """A keep-alive HTTP/1.1 client on a raw socket: little client overhead, so the server is measured."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        return sock

    def send(self, raw: bytes) -> int:
        """Send one request, read one response; return its status (reconnecting once if the server closed)."""
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = self._connect()
            try:
                self.sock.sendall(raw)
                return self._read_response()
            except (ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _read_response(self) -> int:
        assert self.sock is not None
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            rest += chunk
        self.buffer = rest[length:]
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def drive(port: int, bodies: list[bytes], concurrency: int, duration: float, warmup: float = 1.0) -> Result:
    """`concurrency` threads, each on its own connection, send requests back to back for `duration` s."""
    raws = [http_request(b) for b in bodies]
    start_at = time.perf_counter() + warmup
    stop_at = start_at + duration
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency

    def worker(n: int) -> None:
        conn = Connection(port)
        rng = random.Random(n)
        try:
            while True:
                raw = raws[rng.randrange(len(raws))]
                began = time.perf_counter()
                if began >= stop_at:
                    return
                status = conn.send(raw)
                ended = time.perf_counter()
                if began >= start_at:
                    if status == 200:
                        latencies[n].append((ended - began) * 1000)
                    else:
                        errors[n] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [x for per in latencies for x in per]
    return Result(len(flat), sum(errors), duration, flat)


def wait_ping(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status_line = sock.recv(64).split(b"\r\n", 1)[0].split()
                if len(status_line) > 1 and status_line[1] == b"200":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} not healthy after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def make_bodies(num_users: int, num_items: int) -> dict[str, list[bytes]]:
    rng = random.Random(0)
    single = [
        json.dumps({"user_id": rng.randrange(num_users), "item_id": rng.randrange(num_items)}).encode()
        for _ in range(2000)
    ]
    batch = [
        json.dumps(
            {
                "instances": [
                    {"user_id": rng.randrange(num_users), "item_id": rng.randrange(num_items)} for _ in range(64)
                ]
            }
        ).encode()
        for _ in range(200)
    ]
    top10 = [json.dumps({"user_id": rng.randrange(num_users), "top_k": 10}).encode() for _ in range(500)]
    return {"single pair": single, "batch of 64": batch, "top-10 of all items": top10}


def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with Path(os.devnull).open("wb") as devnull:
        process = subprocess.Popen(command, stdout=devnull, stderr=devnull, env=env, cwd=REPO)
    wait_ping(port, process)
    return process


def bench_both(
    ports: dict[str, int], bodies: dict[str, list[bytes]], args: argparse.Namespace
) -> dict[str, dict[str, Result]]:
    """Scenario by scenario, baseline then ours back to back, so a change in the machine's load
    (other processes share these cores) hits both sides of a ratio alike."""
    results: dict[str, dict[str, Result]] = {name: {} for name in ports}
    for scenario, payloads in bodies.items():
        concurrency = 1 if scenario.startswith("top-10") else args.concurrency
        for name, port in ports.items():
            results[name][scenario] = drive(port, payloads, concurrency, args.duration)
            print(f"  {name:<10} {scenario:<20} done", file=sys.stderr)
    return results


def export_model(variant: str, work: Path) -> tuple[Path, dict[str, int]]:
    from ncf_tui.engine.variants import export_variants

    archive = export_variants(None, out_dir=work / "variants", names=(variant,))[variant]
    model_dir = work / "model"
    model_dir.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    sidecar = json.loads((model_dir / "ncf-model.json").read_text())
    return model_dir, {"num_users": sidecar["num_users"], "num_items": sidecar["num_items"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="connections for pairs and batches")
    parser.add_argument("--variant", default="full_manual_norm")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ncf-bench-serve-") as tmp:
        model_dir, sizes = export_model(args.variant, Path(tmp))
        bodies = make_bodies(sizes["num_users"], sizes["num_items"])
        ports = {"baseline": free_port(), "ncf-serve": free_port()}
        baseline_cmd = [sys.executable, str(BASELINE), "--port", str(ports["baseline"]), "--variant", args.variant]
        ours_cmd = [sys.executable, str(SERVE), "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1"]
        ours_cmd += ["--port", str(ports["ncf-serve"])]
        processes = [start(baseline_cmd, ports["baseline"]), start(ours_cmd, ports["ncf-serve"])]
        try:
            results = bench_both(ports, bodies, args)
        finally:
            for process in processes:
                stop(process)

    print(
        f"\nvariant {args.variant}, {sizes['num_users']} users x {sizes['num_items']} items, "
        f"{os.cpu_count()} cores, {args.duration:.0f} s per scenario, "
        f"{args.concurrency} connections (top-10: 1)\n"
    )
    print(f"{'scenario':<21}{'server':<11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for scenario in bodies:
        for server in ("baseline", "ncf-serve"):
            r = results[server][scenario]
            print(
                f"{scenario:<21}{server:<11}{r.rps:>9.0f}{r.percentile(0.5):>9.2f}"
                f"{r.percentile(0.99):>9.2f}{r.errors:>8}"
            )
    print("\nncf-serve / baseline:")
    for scenario in bodies:
        ours, base = results["ncf-serve"][scenario], results["baseline"][scenario]
        print(
            f"  {scenario:<21} req/s x{ours.rps / base.rps:.2f}   "
            f"p50 x{base.percentile(0.5) / ours.percentile(0.5):.2f} faster"
        )
    top = results["ncf-serve"]["top-10 of all items"].percentile(0.5)
    print(f"\ntop-10 p50 for one user: {top:.2f} ms (target <= 5 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
