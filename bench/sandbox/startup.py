"""Sandbox startup time, memory, reset time and call latency, against bare moto measured in the same run.

    python bench/sandbox/startup.py [--runs N]

Each start is measured in a fresh interpreter (imports included), as `ncf-tui --sandbox` pays it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, statistics, sys, time
    t0 = time.perf_counter()
    kind = sys.argv[1]
    if kind == "sandbox":
        from ncf_tui.sandbox.server import Sandbox
        sb = Sandbox().start()
        url, creds = sb.endpoint_url, sb.credentials
    else:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        creds = {"aws_access_key_id": "AKIATESTTESTTESTTEST", "aws_secret_access_key": "x"}
    started = time.perf_counter() - t0

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    rss_started = rss_mb()
    import boto3
    sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1", **creds)
    sts.get_caller_identity()
    calls = []
    for _ in range(50):
        t = time.perf_counter(); sts.get_caller_identity(); calls.append(time.perf_counter() - t)
    resets = []
    if kind == "sandbox":
        for _ in range(20):
            t = time.perf_counter(); sb.reset(); resets.append(time.perf_counter() - t)
    print(json.dumps({"start_s": started, "rss_mb": rss_started, "rss_after_calls_mb": rss_mb(),
                      "call_ms": statistics.median(calls) * 1000,
                      "reset_ms": statistics.median(resets) * 1000 if resets else None}))
    """
)


def measure(kind: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, kind], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = {kind: [measure(kind) for _ in range(args.runs)] for kind in ("moto", "sandbox")}

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    print(f"runs per kind: {args.runs} (fresh interpreter each, imports included)")
    print(f"{'':24}{'bare moto':>12}{'sandbox':>12}{'ratio':>8}")
    for key, label in (
        ("start_s", "start (s)"),
        ("rss_mb", "RSS at start (MB)"),
        ("rss_after_calls_mb", "RSS after calls (MB)"),
        ("call_ms", "sts call (ms, median)"),
    ):
        a, b = med("moto", key), med("sandbox", key)
        print(f"{label:24}{a:12.3f}{b:12.3f}{b / a:8.2f}")
    print(f"{'reset (ms, median)':24}{'':>12}{med('sandbox', 'reset_ms'):12.3f}")


if __name__ == "__main__":
    main()
