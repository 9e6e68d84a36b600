"""Log following: our ``LogFollower`` against ``aws logs tail --follow``, reading one stream in the same run.

    python bench/logs/run.py [--lines 100000] [--scenario healthy|flaky-logs] [--seed 7]

A writer puts numbered lines into a sandbox log stream in bursts (random sizes and pauses, some lines
repeated within one millisecond), while two readers follow the stream:

- ours: ``ncf_tui.engine.logs.LogFollower`` (GetLogEvents + nextForwardToken, adaptive 0.2-2 s polling);
- tail: awscli v2's ``aws logs tail --follow`` algorithm (awscli v1 in the venv has no ``logs tail``), as
  in ``awscli/customizations/logs/tail.py``: FilterLogEvents with ``interleaved``, follow ``nextToken``
  while pages come, then sleep 5 s and ask again from the newest timestamp seen, skipping event ids already
  yielded at that timestamp. It runs with botocore's retries, as the CLI does.

It prints, for both: lines read, lost, duplicated, and p50/p95/max latency from the put call to the read.
The sandbox runs in its own process (``python -m ncf_tui.sandbox``) so the server's work does not share the
readers' interpreter.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ncf_tui.engine.aws import Aws, AwsTarget  # noqa: E402
from ncf_tui.engine.logs import LogFollower, reader_client  # noqa: E402

GROUP = "/aws/codebuild/ncf-bench-logs"
STREAM = "bench-stream"
SEQ = re.compile(r"^seq=(\d+) ")


def start_sandbox(scenario: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ncf_tui.sandbox", "--scenario", scenario],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    env: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("export "):
            key, _, value = line[len("export ") :].strip().partition("=")
            env[key] = value
        if line.startswith("# serving"):
            return proc, env
    raise SystemExit("the sandbox did not start")


class Writer:
    def __init__(self, client: Any, lines: int, seed: int) -> None:
        self.client = client
        self.total = lines
        self.rng = random.Random(seed)
        self.put_at: dict[int, float] = {}
        self.bursts = 0

    def run(self) -> None:
        self.client.create_log_group(logGroupName=GROUP)
        self.client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        n = 0
        while n < self.total:
            size = min(self.total - n, self.rng.choice((1, 5, 50, 200, 1000, 2500)))
            ts = int(time.time() * 1000)
            events = []
            for _ in range(size):
                n += 1
                # Some lines are identical in text, and all of a burst share one millisecond.
                text = "same text" if n % 97 == 0 else "x" * self.rng.randint(10, 120)
                events.append({"timestamp": ts, "message": f"seq={n} {text}\n"})
            t0 = time.time()
            self.client.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=events)
            for e in events:
                self.put_at[int(SEQ.match(e["message"]).group(1))] = t0  # type: ignore[union-attr]
            self.bursts += 1
            time.sleep(self.rng.choice((0.0, 0.02, 0.1, 0.3, 0.8, 2.5)))


class Timed:
    """A client whose calls of one operation are timed (to tell the server's share of the latency)."""

    def __init__(self, client: Any, operation: str) -> None:
        self._client = client
        self._operation = operation
        self.seconds: list[float] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name != self._operation:
            return attr

        def timed(**kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(**kwargs)
            finally:
                self.seconds.append(time.perf_counter() - t0)

        return timed


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) >= 2 else float("nan")


class Reads:
    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []
        self.lock = threading.Lock()

    def add(self, message: str, at: float) -> None:
        m = SEQ.match(message)
        if m:
            with self.lock:
                self.seen.append((int(m.group(1)), at))


def aws_logs_tail(client: Any, start_ms: int, reads: Reads, stop: threading.Event) -> None:
    """awscli v2 `aws logs tail GROUP --log-stream-names STREAM --follow`, its follow loop."""
    kwargs: dict[str, Any] = {
        "logGroupName": GROUP,
        "interleaved": True,
        "startTime": start_ms,
        "logStreamNames": [STREAM],
    }
    ids_at: dict[int, set[str]] = defaultdict(set)
    while not stop.is_set():
        try:
            response = client.filter_log_events(**kwargs)
        except client.exceptions.ResourceNotFoundException:
            response = {"events": []}
        now = time.time()
        for event in response["events"]:
            if event["eventId"] not in ids_at[event["timestamp"]]:
                ids_at[event["timestamp"]].add(event["eventId"])
                reads.add(event["message"], now)
        if ids_at:
            newest = max(ids_at)
            ids_at = defaultdict(set, {newest: ids_at[newest]})
        if "nextToken" in response:
            kwargs["nextToken"] = response["nextToken"]
        else:
            if ids_at:
                kwargs["startTime"] = max(ids_at)
            kwargs.pop("nextToken", None)
            stop.wait(5)


def summarize(name: str, reads: Reads, put_at: dict[int, float]) -> dict[str, Any]:
    counts = Counter(seq for seq, _ in reads.seen)
    first: dict[int, float] = {}
    for seq, at in reads.seen:
        first.setdefault(seq, at)
    latencies = sorted(first[s] - put_at[s] for s in first if s in put_at)
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    return {
        "reader": name,
        "read": len(reads.seen),
        "lost": sum(1 for s in put_at if s not in counts),
        "duplicated": sum(c - 1 for c in counts.values() if c > 1),
        "p50": q[49],
        "p95": q[94],
        "max": latencies[-1] if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--scenario", default="healthy")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    proc, env = start_sandbox(args.scenario)
    try:
        creds = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}
        aws = Aws(AwsTarget(region=env["AWS_DEFAULT_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"], credentials=creds))
        import boto3
        from botocore.config import Config

        def client(**retries: Any) -> Any:
            return boto3.session.Session().client(
                "logs",
                region_name=env["AWS_DEFAULT_REGION"],
                endpoint_url=env["AWS_ENDPOINT_URL"],
                config=Config(retries=retries or None),
                **creds,
            )

        put_client = Timed(client(mode="standard", max_attempts=10), "put_log_events")
        writer = Writer(put_client, args.lines, args.seed)
        ours, tail = Reads(), Reads()
        get_client = Timed(reader_client(aws), "get_log_events")
        follower = LogFollower(get_client, GROUP, STREAM, on_line=lambda line: ours.add(line.message, line.read_at))
        stop_tail = threading.Event()
        tail_client = Timed(client(mode="standard"), "filter_log_events")  # awscli v2's default retry mode
        start_ms = int(time.time() * 1000) - 1000
        tail_error: list[BaseException] = []

        def run_tail() -> None:
            try:
                aws_logs_tail(tail_client, start_ms, tail, stop_tail)
            except BaseException as exc:  # the CLI would exit with this error
                tail_error.append(exc)

        tail_thread = threading.Thread(target=run_tail, daemon=True)
        t0 = time.monotonic()
        follower.start()
        tail_thread.start()
        writer.run()
        wrote = time.monotonic() - t0
        follower.complete()
        ended = follower.join(120)
        ours_done = time.monotonic() - t0
        # `aws logs tail` never ends: give it two of its polls after the last put, then stop it.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and len(tail.seen) < args.lines and tail_thread.is_alive():
            time.sleep(0.2)
        stop_tail.set()
        tail_thread.join(10)

        print(
            f"{args.lines} lines in {writer.bursts} bursts over {wrote:.1f} s, scenario {args.scenario}; "
            f"our follower ended by itself: {ended} ({ours_done - wrote:.2f} s after the last put)"
        )
        print(
            f"our follower: {follower.stats.reads} reads, {follower.stats.empty_reads} empty, "
            f"{follower.stats.reconnects} reconnects, {follower.stats.throttled} throttled"
        )
        for what, timed in (
            ("PutLogEvents", put_client),
            ("GetLogEvents", get_client),
            ("FilterLogEvents", tail_client),
        ):
            print(
                f"server round trip, {what}: p50 {pct(timed.seconds, 50):.3f} s, p95 {pct(timed.seconds, 95):.3f} s "
                f"({len(timed.seconds)} calls)"
            )
        if tail_error:
            print(f"aws logs tail stopped with an error: {type(tail_error[0]).__name__}: {tail_error[0]}")
        rows = [
            summarize("ncf-tui LogFollower", ours, writer.put_at),
            summarize("aws logs tail --follow", tail, writer.put_at),
        ]
        print(f"{'reader':<24} {'read':>8} {'lost':>7} {'dup':>5} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
        for r in rows:
            print(
                f"{r['reader']:<24} {r['read']:>8} {r['lost']:>7} {r['duplicated']:>5} "
                f"{r['p50']:>7.3f} {r['p95']:>7.3f} {r['max']:>7.3f}"
            )
        ratio = rows[1]["p95"] / rows[0]["p95"] if rows[0]["p95"] else float("nan")
        print(f"p95 latency, aws logs tail / ours: {ratio:.1f}x")
        ok = rows[0]["lost"] == 0 and rows[0]["duplicated"] == 0 and ended
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
