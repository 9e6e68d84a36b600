"""The sandbox build with the warm tools against the same build with every `aws` and `docker` call cold.

    python bench/warm_tools/run.py [--runs N]

Each run is a whole `ncf-tui --headless --sandbox --yes --json` in a fresh process and fresh folders (the
fallback builder, as the suite's builds use), alternating NCF_SANDBOX_WARM_TOOLS=1 and =0 so both see the
same machine. Printed: the median build step and whole run of each, and warm/cold ratios (lower is better).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(warm: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="ncf-bench-build-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "NCF_SANDBOX_WARM_TOOLS": "1" if warm else "0",
            "NCF_SANDBOX_DOCKER": "fallback",
            "NCF_TUI_NO_TUI": "1",
            "NCF_TUI_CONFIG_DIR": str(root / "config"),
            "NCF_TUI_STATE_DIR": str(root / "state"),
            "NCF_TUI_DATA_DIR": str(root / "data"),
        }
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ncf_tui.cli", "--headless", "--sandbox", "--yes", "--json"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"a run failed (exit {done.returncode}): {done.stderr[-2000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    (build,) = [
        e for e in events if e.get("event") == "step" and e.get("name") == "build" and e.get("status") == "done"
    ]
    return float(build["elapsed"]), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind (default 3)")
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(args.runs):
        for warm in (False, True):
            results[warm].append(one_run(warm))
    med = {
        warm: (statistics.median(b for b, _ in r), statistics.median(w for _, w in r)) for warm, r in results.items()
    }
    for warm in (False, True):
        kind = "warm" if warm else "cold"
        print(f"{kind}: build step {med[warm][0]:.2f} s, whole run {med[warm][1]:.2f} s (median of {args.runs})")
    print(f"warm/cold: build step {med[True][0] / med[False][0]:.2f}x, whole run {med[True][1] / med[False][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
