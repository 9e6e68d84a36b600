"""bench/sample: how long ``python -m ncf_tui.engine.sample --scale ml-1m`` takes to make the seed-scale sample.

Runs it in a child process into a temporary folder and prints its wall time, its CPU time (user + system, what
it costs on an otherwise idle machine; it trains on one thread) and both as a ratio of the one-minute target.
With ``--twice`` it runs again and says whether both runs wrote the same bytes.

    python bench/sample/run.py [--twice]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 60.0


def one_run(out: Path) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ncf_tui.engine.sample", "--scale", "ml-1m", "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(out.iterdir()))).hexdigest()
    return wall, cpu, digest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--twice", action="store_true", help="run again and compare the bytes written")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-sample-"))
    wall, cpu, digest = one_run(root / "a")
    print(f"ml-1m sample, wall time : {wall:6.1f} s   ratio to the {TARGET_S:.0f} s target {wall / TARGET_S:5.2f}x")
    print(f"ml-1m sample, CPU time  : {cpu:6.1f} s   ratio to the {TARGET_S:.0f} s target {cpu / TARGET_S:5.2f}x")
    if args.twice:
        _, _, again = one_run(root / "b")
        print(f"same bytes twice        : {'yes' if again == digest else 'NO'}")


if __name__ == "__main__":
    main()
