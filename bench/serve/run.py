"""Benchmark the container's server against the servers a user would pick instead, measured in one run.

    python bench/serve/run.py [--checkpoint PATH ...] [--duration 3] [--warmup 1] [--connections 8]
                              [--servers ncf-serve,torchserve,mms,baseline] [--workers N]
                              [--wrk-cpu last|N|none] [--variant full_manual_norm]

Each checkpoint (default: the bundled sample, plus the seed-scale ml-1m sample when
`python -m ncf_tui.engine.sample --scale ml-1m` has made it) goes through the engine's own variant export;
the same `model.pth` is then served on loopback by:

- `ncf-serve`: container/serve.py, the image's server (gunicorn, one process per worker);
- `torchserve`: TorchServe, the model server of AWS's PyTorch inference containers, with
  `torchserve_handler.py` doing what ours does (pairs, batches, top-k over all items);
- `mms`: multi-model-server with `sagemaker-inference`, the stack of SageMaker's Neo PyTorch images,
  with `mms_handler.py` (skipped, with the reason, when it cannot run here);
- `baseline`: the seed's kind of server, Flask's development server with the eager model (`baseline.py`).

TorchServe and MMS come from the optional extra: `pip install -e '.[bench]'` (an anchor that is not
installed or does not start is a line saying why, not a crash). The load comes from `wrk` (Debian's
package) with `bodies.lua` POSTing pre-made JSON bodies, pinned with `taskset` to its own core (the last
one), the servers pinned to the others, all with the same worker count (one per server core) and one
torch thread per worker. Per scenario and server: a warm-up of `--warmup` s, then `--duration` s
measured, the servers back to back: single pairs and batches of 64 over `--connections` keep-alive
connections, top-10 over all items for one user over one connection (a latency figure). Before any of
it, every server gets `--server-warmup` s of pairs and of batches (the anchors' JVMs compile their hot
paths only after thousands of requests).

Prints per scenario and server: req/s, p50 and p99 (wrk's), errors (non-2xx and socket errors), the
server's CPU time per answered request (user + system over its process tree: JVM, Python workers,
gunicorn master), and its memory after the load (RSS summed over the tree; PSS alongside, which counts
pages shared between forked workers once); then the ratios of ncf-serve against each anchor and the
issue's goals. The header gives the load average: on a machine shared with other work the latencies
and req/s move with it, the ratios measured in one run much less, and CPU per request least.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SERVE = REPO / "container" / "serve.py"
SCENARIOS = ("single pair", "batch of 64", "top-10 of all items")
SERVERS = ("ncf-serve", "torchserve", "mms", "baseline")


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float = float("nan")  # the server's CPU time per answered request

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Server:
    name: str
    url: str  # the inference URL wrk POSTs to
    process: subprocess.Popen[bytes]
    ping: str
    rss_mb: float = 0.0
    pss_mb: float = 0.0


# ------------------------------------------------------------------------------------------------ helpers


def free_port(below: int = 0) -> int:
    """A free loopback port; `below` for servers that refuse higher ones (MMS takes ports under 32767)."""
    for _ in range(200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", random.randrange(20000, below) if below else 0))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port under {below}")


def venv_tool(name: str) -> str | None:
    """A console script of this interpreter's environment (the venv may not be on PATH)."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else shutil.which(name)


def run_tool(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): {tail[0]}")


def wait_ping(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"exited with {process.returncode}: {' | '.join(tail)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"not healthy after {timeout:.0f} s ({url})")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's whole process group (TorchServe's launcher, JVM and Python workers alike)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(pid: int) -> list[int]:
    tree, todo, found = _children(), [pid], []
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its live descendants (JVM and Python workers alike)."""
    ticks = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over `pid` and its descendants, from /proc (Linux)."""
    rss, pss = 0, 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key == "Rss":
                    rss += int(value.split()[0])
                elif key == "Pss":
                    pss += int(value.split()[0])
        except OSError:
            continue
    return rss / 1024, pss / 1024


# ---------------------------------------------------------------------------------------------- the load


def make_bodies(num_users: int, num_items: int, out: Path) -> dict[str, Path]:
    rng = random.Random(0)

    def pair() -> dict[str, int]:
        return {"user_id": rng.randrange(num_users), "item_id": rng.randrange(num_items)}

    lines = {
        "single pair": [json.dumps(pair()) for _ in range(2000)],
        "batch of 64": [json.dumps({"instances": [pair() for _ in range(64)]}) for _ in range(200)],
        "top-10 of all items": [json.dumps({"user_id": rng.randrange(num_users), "top_k": 10}) for _ in range(500)],
    }
    files = {}
    for n, (scenario, bodies) in enumerate(lines.items()):
        files[scenario] = out / f"bodies-{n}.jsonl"
        files[scenario].write_text("\n".join(bodies) + "\n")
    return files


def run_wrk(url: str, bodies: Path, connections: int, seconds: float, wrk_cpu: int | None) -> Result:
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "5s"]
    command += ["-s", str(HERE / "bodies.lua"), url, "--", str(bodies)]
    if wrk_cpu is not None:
        command = ["taskset", "-c", str(wrk_cpu), *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("NCF-BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
    stats = json.loads(line.removeprefix("NCF-BENCH "))
    errors = sum(stats[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Result(
        requests=stats["requests"] - stats["status"],
        errors=errors,
        seconds=stats["duration_us"] / 1e6,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
    )


# ------------------------------------------------------------------------------------------- the servers


@dataclass
class Plan:
    model_dir: Path
    checkpoint: Path
    variant: str
    workers: int
    torch_threads: int
    server_cpus: list[int] | None
    work: Path


def _popen(plan: Plan, name: str, command: list[str], env: dict[str, str] | None = None) -> tuple:
    if plan.server_cpus is not None:
        command = ["taskset", "-c", ",".join(map(str, plan.server_cpus)), *command]
    log = plan.work / f"{name}.log"
    # a temp dir of its own: TorchServe and MMS both keep their pid file (/tmp/.model_server.pid, which
    # refuses a second server) and their workers' sockets there
    tmp = plan.work / f"{name}-tmp"
    tmp.mkdir(exist_ok=True)
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(plan.torch_threads), **(env or {})}
    full_env["TMPDIR"] = str(tmp)
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=plan.work, start_new_session=True
        )
    return process, log


def start_ncf_serve(plan: Plan) -> Server:
    port = free_port()
    command = [sys.executable, str(SERVE), "serve", "--model-dir", str(plan.model_dir), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(plan.workers)]
    process, log = _popen(plan, "ncf-serve", command, {"NCF_TORCH_THREADS": str(plan.torch_threads)})
    base = f"http://127.0.0.1:{port}"
    wait_ping(f"{base}/ping", process, log)
    return Server("ncf-serve", f"{base}/invocations", process, f"{base}/ping")


def start_baseline(plan: Plan) -> Server:
    port = free_port()
    command = [sys.executable, str(HERE / "baseline.py"), "--port", str(port), "--variant", plan.variant]
    command += ["--checkpoint", str(plan.checkpoint)]
    process, log = _popen(plan, "baseline", command)
    base = f"http://127.0.0.1:{port}"
    wait_ping(f"{base}/ping", process, log)
    return Server("baseline", f"{base}/invocations", process, f"{base}/ping")


def anchor_files(plan: Plan, folder: str, handler: str) -> Path:
    """The model, its sidecar and the anchor's handler in one folder, stamped now: the exported archive
    holds mtime 0 (it is reproducible), which the archivers' zip files cannot store."""
    code = plan.work / folder
    code.mkdir(parents=True, exist_ok=True)
    for source in (plan.model_dir / "model.pth", plan.model_dir / "ncf-model.json", HERE / "anchor_model.py"):
        shutil.copyfile(source, code / source.name)
    shutil.copyfile(HERE / handler, code / handler)
    return code


def start_torchserve(plan: Plan) -> Server:
    torchserve, archiver = venv_tool("torchserve"), venv_tool("torch-model-archiver")
    if torchserve is None or archiver is None:
        raise RuntimeError("not installed: pip install -e '.[bench]' (torchserve, torch-model-archiver)")
    store = plan.work / "torchserve-store"
    store.mkdir(exist_ok=True)
    code = anchor_files(plan, "torchserve-code", "torchserve_handler.py")
    extra = f"{code / 'ncf-model.json'},{code / 'anchor_model.py'}"
    run_tool(
        [
            *(archiver, "--model-name", "ncf", "--version", "1", "--serialized-file", str(code / "model.pth")),
            *("--handler", str(code / "torchserve_handler.py"), "--extra-files", extra),
            *("--export-path", str(store), "--force"),
        ]
    )
    ports = [free_port() for _ in range(5)]
    config = plan.work / "torchserve.properties"
    config.write_text(
        "\n".join(
            [
                f"inference_address=http://127.0.0.1:{ports[0]}",
                f"management_address=http://127.0.0.1:{ports[1]}",
                f"metrics_address=http://127.0.0.1:{ports[2]}",
                f"grpc_inference_port={ports[3]}",
                f"grpc_management_port={ports[4]}",
                f"default_workers_per_model={plan.workers}",
                "disable_token_authorization=true",
                "install_py_dep_per_model=false",
                "disable_system_metrics=true",
                f"model_store={store}",
                "load_models=ncf=ncf.mar",
            ]
        )
        + "\n"
    )
    command = [torchserve, "--start", "--foreground", "--ncs", "--ts-config", str(config)]
    command += ["--model-store", str(store), "--models", "ncf=ncf.mar", "--disable-token-auth"]
    env = {"LOG_LOCATION": str(plan.work / "ts-logs"), "METRICS_LOCATION": str(plan.work / "ts-logs")}
    env["NCF_TORCH_THREADS"] = str(plan.torch_threads)
    process, log = _popen(plan, "torchserve", command, env)
    base = f"http://127.0.0.1:{ports[0]}"
    wait_ping(f"{base}/ping", process, log)
    # /ping answers once the frontend is up; the model's workers may still be loading
    _wait_workers_ready(f"http://127.0.0.1:{ports[1]}/models/ncf", plan.workers, process, log)
    return Server("torchserve", f"{base}/predictions/ncf", process, f"{base}/ping")


def _wait_workers_ready(url: str, workers: int, process: subprocess.Popen[bytes], log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        with urllib.request.urlopen(url, timeout=5) as response:
            described = json.loads(response.read())
        models = described if isinstance(described, list) else [described]  # TorchServe: a list; MMS: one
        states = [w.get("status") for m in models for w in m.get("workers", [])]
        if states.count("READY") >= workers:
            return
        time.sleep(0.25)
    raise RuntimeError(f"workers not READY after 180 s; see {log}")


def start_mms(plan: Plan) -> Server:
    """multi-model-server with sagemaker-inference's handler service, as SageMaker's Neo PyTorch images run it.

    The model directory is laid out the way sagemaker-inference's `model_server` lays it out (model-archiver
    `--archive-format no-archive`), with our config file instead of its /etc/sagemaker-mms.properties.
    """
    mms = venv_tool("multi-model-server")
    if mms is None or importlib.util.find_spec("sagemaker_inference") is None:
        raise RuntimeError("not installed: pip install -e '.[bench]' (multi-model-server, sagemaker-inference)")
    store = plan.work / "mms-store"
    code = anchor_files(plan, "mms-store/ncf", "mms_handler.py")
    # What MMS's model-archiver writes with `--archive-format no-archive` (the layout sagemaker-inference's
    # model_server makes). Its package is not installed: it is also named model_archiver and would shadow
    # TorchServe's torch-model-archiver in one environment.
    manifest = {
        "runtime": "python",
        "model": {"modelName": "ncf", "handler": "mms_handler:handle"},
        "modelServerVersion": "1.0",
        "implementationVersion": "1.0",
        "specificationVersion": "1.0",
    }
    (code / "MAR-INF").mkdir()
    (code / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))
    ports = [free_port(below=32767) for _ in range(2)]
    config = plan.work / "mms.properties"
    config.write_text(
        "\n".join(
            [
                f"inference_address=http://127.0.0.1:{ports[0]}",
                f"management_address=http://127.0.0.1:{ports[1]}",
                f"default_workers_per_model={plan.workers}",
                "decode_input_request=false",  # sagemaker-inference's default-mms.properties
                f"model_store={store}",
                "load_models=ncf=ncf",
            ]
        )
        + "\n"
    )
    command = [mms, "--start", "--foreground", "--mms-config", str(config)]
    env = {"LOG_LOCATION": str(plan.work / "mms-logs"), "METRICS_LOCATION": str(plan.work / "mms-logs")}
    env["NCF_TORCH_THREADS"] = str(plan.torch_threads)
    process, log = _popen(plan, "mms", command, env)
    base = f"http://127.0.0.1:{ports[0]}"
    wait_ping(f"{base}/ping", process, log)
    _wait_workers_ready(f"http://127.0.0.1:{ports[1]}/models/ncf", plan.workers, process, log)
    return Server("mms", f"{base}/predictions/ncf", process, f"{base}/ping")


STARTERS: dict[str, Callable[[Plan], Server]] = {
    "ncf-serve": start_ncf_serve,
    "torchserve": start_torchserve,
    "mms": start_mms,
    "baseline": start_baseline,
}


# ---------------------------------------------------------------------------------------------- the run


def export_model(checkpoint: Path, variant: str, work: Path) -> tuple[Path, dict[str, int]]:
    """The engine's own variant export, unpacked as the image holds it in /opt/ml/model."""
    from ncf_tui.engine.artifact import extract_archive
    from ncf_tui.engine.variants import export_variants

    archive = export_variants(checkpoint, out_dir=work / "variants", names=(variant,))[variant]
    model_dir = work / "model"
    model_dir.mkdir()
    with tarfile.open(archive) as tar:
        extract_archive(tar, model_dir)
    sidecar = json.loads((model_dir / "ncf-model.json").read_text())
    return model_dir, {"num_users": sidecar["num_users"], "num_items": sidecar["num_items"]}


def default_checkpoints() -> list[Path]:
    """The bundled sample, and the seed-scale sample where `--scale ml-1m` writes it, when it exists.

    `ml1m_checkpoint_path` is the engine's answer to where that is (checkpoint issue); read through
    getattr so the benchmark also runs on a tree from before it.
    """
    from ncf_tui.engine import sample

    found = [sample.sample_checkpoint_path()]
    locate = getattr(sample, "ml1m_checkpoint_path", None)
    if callable(locate):
        path = Path(locate())
        if path.is_file():
            found.append(path)
        else:
            print(
                f"bench/serve: no seed-scale sample at {path}; make it with "
                "`python -m ncf_tui.engine.sample --scale ml-1m`",
                file=sys.stderr,
            )
    return found


def bench_checkpoint(checkpoint: Path, args: argparse.Namespace, cpus: tuple[list[int] | None, int | None]) -> dict:
    server_cpus, wrk_cpu = cpus
    workers = args.workers or (len(server_cpus) if server_cpus else os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="ncf-bench-serve-") as tmp:
        work = Path(tmp)
        model_dir, sizes = export_model(checkpoint, args.variant, work)
        bodies = make_bodies(sizes["num_users"], sizes["num_items"], work)
        plan = Plan(model_dir, checkpoint, args.variant, workers, 1, server_cpus, work)
        servers: dict[str, Server] = {}
        skipped: dict[str, str] = {}
        try:
            for name in args.servers:
                try:
                    servers[name] = STARTERS[name](plan)
                    print(f"  {name:<10} up", file=sys.stderr)
                except Exception as exc:  # a missing anchor is a row in the table, not a crash
                    skipped[name] = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                    print(f"  {name:<10} skipped: {skipped[name]}", file=sys.stderr)
            # once per server before any measurement: a JVM (TorchServe's and MMS's frontends) compiles
            # its hot paths only after thousands of requests, and a warm server is what production runs
            for server in servers.values():
                for scenario in SCENARIOS[:2]:
                    run_wrk(server.url, bodies[scenario], args.connections, args.server_warmup, wrk_cpu)
            results: dict[str, dict[str, Result]] = {name: {} for name in servers}
            load = [os.getloadavg()[0]]
            # scenario by scenario, the servers back to back: a change in the machine's load (other
            # processes share these cores) hits every side of a ratio alike
            for scenario in SCENARIOS:
                connections = 1 if scenario.startswith("top-10") else args.connections
                for name, server in servers.items():
                    run_wrk(server.url, bodies[scenario], connections, args.warmup, wrk_cpu)
                    cpu_before = cpu_seconds(server.process.pid)
                    result = run_wrk(server.url, bodies[scenario], connections, args.duration, wrk_cpu)
                    if result.requests:
                        result.cpu_ms = (cpu_seconds(server.process.pid) - cpu_before) * 1000 / result.requests
                    results[name][scenario] = result
                    rss, pss = memory_mb(server.process.pid)
                    server.rss_mb, server.pss_mb = max(server.rss_mb, rss), max(server.pss_mb, pss)
                    print(f"  {name:<10} {scenario:<20} done", file=sys.stderr)
            load.append(os.getloadavg()[0])
        finally:
            for server in servers.values():
                stop(server.process)
    return {
        "sizes": sizes,
        "results": results,
        "skipped": skipped,
        "servers": servers,
        "workers": workers,
        "load": load,
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def report(checkpoint: Path, run: dict, args: argparse.Namespace, cpus: tuple[list[int] | None, int | None]) -> None:
    sizes, results, skipped, servers = run["sizes"], run["results"], run["skipped"], run["servers"]
    server_cpus, wrk_cpu = cpus
    pinning = f"servers on CPU {server_cpus}, wrk on CPU {wrk_cpu}" if wrk_cpu is not None else "no pinning"
    print(
        f"\n{checkpoint.name}: {sizes['num_users']:,} users x {sizes['num_items']:,} items, variant {args.variant}\n"
        f"{os.cpu_count()} cores, {pinning}; {run['workers']} worker(s) per server; "
        f"{2 * args.server_warmup:.0f} s of warm-up per server, then per scenario {args.warmup:.0f} s more and "
        f"{args.duration:.0f} s measured; {args.connections} connections (top-10: 1)\n"
        f"load average {run['load'][0]:.1f} at the start, {run['load'][-1]:.1f} at the end\n"
    )
    head = f"{'scenario':<21}{'server':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    print(f"{head}{'CPU ms/req':>12}{'RSS MB':>9}{'PSS MB':>9}")
    for scenario in SCENARIOS:
        for name in results:
            r, s = results[name][scenario], servers[name]
            print(
                f"{scenario:<21}{name:<12}{r.rps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}"
                f"{r.cpu_ms:>12.2f}{s.rss_mb:>9.0f}{s.pss_mb:>9.0f}"
            )
    for name, why in skipped.items():
        print(f"{'(all)':<21}{name:<12} not measured: {why}")
    if "ncf-serve" not in results:
        return
    ours = results["ncf-serve"]
    for anchor in (n for n in results if n != "ncf-serve"):
        print(f"\nncf-serve / {anchor}:")
        for scenario in SCENARIOS:
            a, o = results[anchor][scenario], ours[scenario]
            print(
                f"  {scenario:<21} req/s x{ratio(o.rps, a.rps):.2f}   p50 x{ratio(a.p50_ms, o.p50_ms):.2f} faster   "
                f"p99 x{ratio(a.p99_ms, o.p99_ms):.2f} faster   CPU per request x{ratio(a.cpu_ms, o.cpu_ms):.2f} less"
            )
    print("\ngoals (ncf-serve; req/s is also how much of a shared core each server got, CPU per request is not):")
    if "torchserve" in results:
        ts = results["torchserve"]
        single, batch = ours["single pair"], ours["batch of 64"]
        for label, o, t, goal in (
            ("single pairs ", single, ts["single pair"], 3),
            ("batches of 64", batch, ts["batch of 64"], 1.5),
        ):
            print(
                f"  {label} x{ratio(o.rps, t.rps):.2f} TorchServe's req/s, x{ratio(t.cpu_ms, o.cpu_ms):.2f} less CPU "
                f"per request (goal >= {goal})"
            )
        print(f"  single pairs  p99 {single.p99_ms:.2f} ms (goal < 5)")
    top = ours["top-10 of all items"]
    print(f"  top-10 of {sizes['num_items']:,} items p50 {top.p50_ms:.2f} ms (goal < 5)")


def choose_cpus(wrk_cpu: str) -> tuple[list[int] | None, int | None]:
    """wrk on its own core (the last), the servers on the others; no pinning on one core or `--wrk-cpu none`."""
    cores = sorted(os.sched_getaffinity(0))
    if wrk_cpu == "none" or len(cores) < 2 or shutil.which("taskset") is None:
        return None, None
    pinned = cores[-1] if wrk_cpu == "last" else int(wrk_cpu)
    return [c for c in cores if c != pinned], pinned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, action="append", help="a checkpoint to serve (repeatable)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per scenario and server")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each measurement")
    parser.add_argument(
        "--server-warmup", type=float, default=3.0, help="seconds of pairs, then of batches, per server at start"
    )
    parser.add_argument("--connections", type=int, default=8, help="connections for pairs and batches")
    parser.add_argument("--workers", type=int, default=0, help="workers per server (default: the servers' cores)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}")
    parser.add_argument("--wrk-cpu", default="last", help="the core wrk is pinned to: last (default), N or none")
    parser.add_argument("--variant", default="full_manual_norm")
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in args.servers if s not in STARTERS]
    if unknown:
        parser.error(f"unknown server(s) {unknown}; choose from {', '.join(SERVERS)}")
    if shutil.which("wrk") is None:
        print("bench/serve: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    checkpoints = [path.resolve() for path in args.checkpoint or default_checkpoints()]  # servers run elsewhere
    missing = [str(p) for p in checkpoints if not p.is_file()]
    if missing:
        print(f"bench/serve: no such checkpoint: {', '.join(missing)}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("ncf_tui") is None:
        sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    cpus = choose_cpus(args.wrk_cpu)
    runs = []
    for checkpoint in checkpoints:
        print(f"{checkpoint}:", file=sys.stderr)
        runs.append((checkpoint, bench_checkpoint(checkpoint, args, cpus)))
    for checkpoint, run in runs:
        report(checkpoint, run, args, cpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
