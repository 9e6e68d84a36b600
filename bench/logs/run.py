"""Log following: our ``LogFollower`` against ``aws logs tail --follow``, reading one stream in the same run.

    python bench/logs/run.py [--lines 30000] [--scenarios healthy,flaky-logs,logs-5xx] [--idle 30] [--seed 7]

A writer puts numbered lines into a sandbox log stream in bursts (random sizes and pauses, some lines
repeated within one millisecond), while two readers follow the stream:

- ours: ``ncf_tui.engine.logs.LogFollower`` (GetLogEvents + nextForwardToken, 0.5 s while lines flow,
  stretching to 5 s when idle);
- tail: awscli v2's ``aws logs tail --follow`` algorithm (awscli v1 in the venv has no ``logs tail``), as
  in ``awscli/customizations/logs/tail.py``: FilterLogEvents with ``interleaved``, follow ``nextToken``
  while pages come, then sleep 5 s and ask again from the newest timestamp seen, skipping event ids already
  yielded at that timestamp. It runs with botocore's retries, as the CLI does.

It prints, for both and under each scenario: lines read, lost, duplicated, p50/p95/max latency from the put
call to the read (and p95 from the put's return: the reader's own share, without the server's ingestion),
and the read calls per second while lines flow and once the stream has been idle for half
of ``--idle`` seconds (GetLogEvents and FilterLogEvents share the account's per-second quota with every
other reader). The budget: p95 <= 0.5 s, <= 2 calls/s flowing, <= 0.2 calls/s idle. Each scenario's
sandbox runs in its own process (``python -m ncf_tui.sandbox``) so the server's work does not share the
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
        self.stored_at: dict[int, float] = {}
        """When the put that carried each line returned: the line is in CloudWatch from then on."""
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
            t1 = time.time()
            for e in events:
                seq = int(SEQ.match(e["message"]).group(1))  # type: ignore[union-attr]
                self.put_at[seq], self.stored_at[seq] = t0, t1
            self.bursts += 1
            time.sleep(self.rng.choice((0.0, 0.02, 0.1, 0.3, 0.8, 2.5)))


class Timed:
    """A client whose calls of one operation are timed (to tell the server's share of the latency)."""

    def __init__(self, client: Any, operation: str) -> None:
        self._client = client
        self._operation = operation
        self.seconds: list[float] = []
        self.at: list[float] = []
        """When each call was made (answered or failed), ``time.monotonic()``."""

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name != self._operation:
            return attr

        def timed(**kwargs: Any) -> Any:
            self.at.append(time.monotonic())
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


def summarize(name: str, reads: Reads, put_at: dict[int, float], stored_at: dict[int, float]) -> dict[str, Any]:
    counts = Counter(seq for seq, _ in reads.seen)
    first: dict[int, float] = {}
    for seq, at in reads.seen:
        first.setdefault(seq, at)

    def quantiles(since: dict[int, float]) -> tuple[list[float], list[float]]:
        latencies = sorted(first[s] - since[s] for s in first if s in since)
        q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
        return latencies, q

    latencies, q = quantiles(put_at)
    _, stored = quantiles(stored_at)
    return {
        "reader": name,
        "read": len(reads.seen),
        "lost": sum(1 for s in put_at if s not in counts),
        "duplicated": sum(c - 1 for c in counts.values() if c > 1),
        "p50": q[49],
        "p95": q[94],
        "max": latencies[-1] if latencies else float("nan"),
        "p95_stored": stored[94],
    }


def rate(at: list[float], start: float, end: float) -> float:
    """Calls per second made within [start, end)."""
    return sum(1 for t in at if start <= t < end) / (end - start) if end > start else float("nan")


def run_scenario(scenario: str, lines: int, seed: int, idle: float) -> tuple[list[dict[str, Any]], bool]:
    proc, env = start_sandbox(scenario)
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
                config=Config(retries=retries or None, user_agent_extra=extra),
                **creds,
            )

        extra = "ncf-sandbox-internal"  # the writer plays CodeBuild: its puts are never faulted
        put_client = Timed(client(mode="standard", max_attempts=10), "put_log_events")
        extra = "ncf-bench-reader"
        writer = Writer(put_client, lines, seed)
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
        wrote_at = time.monotonic()
        # The stream is now idle (a long silent docker step): both readers keep polling it.
        follower_idle_end = wrote_at + idle
        while time.monotonic() < follower_idle_end and follower.error is None:
            time.sleep(0.2)
        follower.complete()
        ended = follower.join(120)
        stop_tail.set()
        tail_thread.join(10)
        flowing = (t0, wrote_at)
        idle_window = (wrote_at + idle / 2, wrote_at + idle)
        print(
            f"[{scenario}] {lines} lines in {writer.bursts} bursts over {wrote_at - t0:.1f} s, then {idle:.0f} s idle; "
            f"our follower: {follower.stats.reads} reads ({follower.stats.empty_reads} empty), "
            f"{follower.stats.reconnects} reconnects, {follower.stats.throttled} throttled, "
            f"{follower.stats.server_errors} 5xx; ended by itself: {ended}"
        )
        for what, timed in (
            ("PutLogEvents", put_client),
            ("GetLogEvents", get_client),
            ("FilterLogEvents", tail_client),
        ):
            print(
                f"[{scenario}] server round trip, {what}: p50 {pct(timed.seconds, 50):.3f} s, "
                f"p95 {pct(timed.seconds, 95):.3f} s ({len(timed.seconds)} calls)"
            )
        if tail_error:
            print(f"[{scenario}] aws logs tail stopped with an error: {type(tail_error[0]).__name__}: {tail_error[0]}")
        rows = []
        for name, reads, timed in (
            ("ncf-tui LogFollower", ours, get_client),
            ("aws logs tail --follow", tail, tail_client),
        ):
            row = summarize(name, reads, writer.put_at, writer.stored_at)
            row.update(scenario=scenario, flowing=rate(timed.at, *flowing), idle=rate(timed.at, *idle_window))
            rows.append(row)
        ok = rows[0]["lost"] == 0 and rows[0]["duplicated"] == 0 and ended and follower.error is None
        return rows, ok
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=30_000)
    parser.add_argument("--scenarios", default="healthy,flaky-logs,logs-5xx")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds both readers watch the idle stream")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    ok = True
    for scenario in args.scenarios.split(","):
        got, fine = run_scenario(scenario.strip(), args.lines, args.seed, args.idle)
        rows += got
        ok = ok and fine
    print()
    print(
        f"{'scenario':<11} {'reader':<23} {'read':>7} {'lost':>6} {'dup':>4} {'p50 s':>6} {'p95 s':>6} {'max s':>6} "
        f"{'p95 after put s':>15} {'calls/s flowing':>15} {'calls/s idle':>12}"
    )
    for r in rows:
        print(
            f"{r['scenario']:<11} {r['reader']:<23} {r['read']:>7} {r['lost']:>6} {r['duplicated']:>4} "
            f"{r['p50']:>6.3f} {r['p95']:>6.3f} {r['max']:>6.3f} {r['p95_stored']:>15.3f} "
            f"{r['flowing']:>15.2f} {r['idle']:>12.2f}"
        )
    for ours, tail in zip(rows[::2], rows[1::2], strict=True):
        print(
            f"{ours['scenario']}: p95 latency aws logs tail / ours {tail['p95'] / ours['p95']:.1f}x; "
            f"calls/s flowing ours / budget 2: {ours['flowing'] / 2:.2f}; "
            f"idle ours / budget 0.2: {ours['idle'] / 0.2:.2f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
