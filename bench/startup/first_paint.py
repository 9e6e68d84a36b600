"""Time to the wizard's first paint, against the 1.5 s target.

    python bench/startup/first_paint.py [--runs N]

Two measures, each in fresh processes:
- terminal: ``ncf-tui --sandbox`` started in a real terminal (tmux, 120x35), from launch until its header is
  on the screen, read back with ``capture-pane`` every 10 ms: what a person waits for.
- in-process: interpreter start to Textual's ``Ready`` event (the first screen rendered), with the heavy
  modules (torch, moto, boto3, sagemaker) listed if any were imported by then (the app imports them in
  workers started after the first paint, so none should be).
Each figure is printed with its ratio to the target (below 1.0 meets it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TARGET = 1.5
ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import time
    T0 = time.perf_counter()
    import json, sys, threading
    from ncf_tui.tui.app import NcfApp
    from ncf_tui.tui.config import AppConfig

    class Probe(NcfApp):
        def on_ready(self) -> None:
            elapsed = time.perf_counter() - T0
            heavy = [m for m in ("torch", "moto", "boto3", "sagemaker") if m in sys.modules]
            print(json.dumps({"ready": elapsed, "heavy_loaded": heavy}), flush=True)
            self.exit(0)

    Probe(AppConfig(sandbox=True, offer_resume=False)).run(headless=True, size=(120, 35))
    """
)


def in_process(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=ROOT, timeout=60)
        line = next((x for x in out.stdout.splitlines() if x.startswith("{")), None)
        if line is None:
            raise SystemExit(f"the probe printed nothing: {out.stderr[-2000:]}")
        data = json.loads(line)
        times.append(float(data["ready"]))
        if data["heavy_loaded"]:
            print(f"  note: imported by the first paint: {', '.join(data['heavy_loaded'])}")
    return times


def terminal(runs: int) -> list[float]:
    entry = Path(sys.executable).with_name("ncf-tui")
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            name = f"ncf-first-paint-{os.getpid()}-{i}"
            command = f"cd {tmp} && NCF_TUI_STATE_DIR={tmp}/state {entry} --sandbox; sleep 5"
            t0 = time.perf_counter()
            subprocess.run(["tmux", "new", "-d", "-s", name, "-x", "120", "-y", "35", command], check=True)
            try:
                while True:
                    shown = subprocess.run(
                        ["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True
                    ).stdout
                    if "ncf-tui" in shown and "Connect" in shown:
                        times.append(time.perf_counter() - t0)
                        break
                    if time.perf_counter() - t0 > 30:
                        raise SystemExit(f"no first paint after 30 s; the screen shows:\n{shown}")
                    time.sleep(0.01)
            finally:
                subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
            time.sleep(0.5)
    return times


def report(label: str, times: list[float]) -> None:
    median = statistics.median(times)
    worst = max(times)
    print(
        f"{label:<12} median {median:.2f} s  worst {worst:.2f} s  over {len(times)} runs  "
        f"ratio to the {TARGET} s target: {median / TARGET:.2f} (worst {worst / TARGET:.2f})"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    print(f"first paint of `ncf-tui --sandbox`; target {TARGET} s; {os.cpu_count()} CPUs")
    report("in-process", in_process(args.runs))
    if shutil.which("tmux"):
        report("terminal", terminal(args.runs))
    else:
        print("terminal     skipped: tmux is not installed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
