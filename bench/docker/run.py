"""The headless sandbox run with the real Docker Engine against the same run with the fallback builder.

    python bench/docker/run.py [--keep-image]

Runs `ncf-tui --headless --sandbox --json --yes` twice in fresh state directories (NCF_SANDBOX_DOCKER=real,
then fallback) and prints, from the build's own events: build start to pushed image (the BUILD phase
start to the `NCF-TUI: image-digest` line), the image's size in the local store, the smoke run's time to
the first `/ping` 200, and the ratio of the two whole runs. Whether the stand-in base was made in this run
or taken from Docker's cache is printed too (the first run on a machine makes it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def headless(mode: str, work: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "NCF_SANDBOX_DOCKER": mode,
        "NCF_TUI_STATE_DIR": str(work / "state"),
        "NCF_TUI_CONFIG_DIR": str(work / "config"),
    }
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "ncf_tui.cli", "--headless", "--sandbox", "--json", "--yes", "--output-dir", str(work)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed with {proc.returncode}: {proc.stderr[-2000:]}")
    build_start = next(_ts(e["ts"]) for e in events if e["event"] == "build" and e["phase"] == "BUILD")
    pushed = next(_ts(e["ts"]) for e in events if e["event"] == "log" and "NCF-TUI: image-digest" in e["line"])
    logs = " ".join(e["line"] for e in events if e["event"] == "log")
    image = next(e for e in events if e["event"] == "image")
    smoke = next((e for e in events if e["event"] == "smoke"), None)
    return {
        "seconds": seconds,
        "build_to_push": pushed - build_start,
        "image": image["uri"],
        "base": "made" if "(made in" in logs else "cached",
        "ping": smoke["ping_seconds"] if smoke else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-image", action="store_true", help="leave the pushed image in the local store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ncf-bench-docker-") as tmp:
        real = headless("real", Path(tmp) / "real")
        fallback = headless("fallback", Path(tmp) / "fallback")
    size = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", str(real["image"])],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"real Docker: build start to pushed image {real['build_to_push']:.1f} s (stand-in base {real['base']})")
    print(f"real Docker: image {real['image']} is {int(size or 0) / 1e9:.2f} GB in the local store")
    print(f"real Docker: smoke run, docker run to the first /ping 200: {real['ping']} s")
    print(f"fallback: build start to pushed manifest {fallback['build_to_push']:.1f} s")
    print(
        f"whole headless run: real {real['seconds']:.1f} s, fallback {fallback['seconds']:.1f} s, "
        f"ratio real/fallback {real['seconds'] / fallback['seconds']:.2f}"
    )
    if not args.keep_image:
        local = str(real["image"]).rsplit("/", 1)[-1]  # the buildspec's own tag, IMAGE_REPO_NAME:IMAGE_TAG
        subprocess.run(["docker", "image", "rm", "-f", str(real["image"]), local], capture_output=True, check=False)
        subprocess.run(["docker", "image", "prune", "-f"], capture_output=True, check=False)


if __name__ == "__main__":
    main()
