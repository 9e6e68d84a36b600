"""Do the variants traced here load and score the same under torch 2.0, the FrameworkVersion sent to Neo?

    python bench/compat/run.py --python /path/to/torch20/bin/python [--pairs 2000]

ncf-tui traces its variants with the local torch (2.13 here) and tells Neo ``FrameworkVersion`` 2.0, the
newest PyTorch the sagemaker SDK's ``neo-pytorch`` table lists; Neo and its inference image load the trace
with torch 2.0. This script (a check to run by hand, not CI) traces every variant of the bundled sample in
this environment, scores the same id pairs here and in the other interpreter, and prints per variant
whether it loaded and the largest score difference.

An interpreter with torch 2.0 (torch 2.0.1 has CPU wheels for Python 3.8 to 3.11, about 200 MB):

    python3.11 -m venv /tmp/torch20
    /tmp/torch20/bin/pip install torch==2.0.1 --index-url https://download.pytorch.org/whl/cpu

That interpreter needs torch alone: the child script below imports nothing of ncf-tui (nor numpy).
Exit status 0 when every variant loads and agrees within ``--atol``; 1 otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
import torch
work = sys.argv[1]
spec = json.load(open(work + "/spec.json"))
x = torch.tensor(spec["pairs"], dtype=torch.float32)
out = {"torch": torch.__version__, "python": sys.version.split()[0], "variants": {}}
for name in spec["variants"]:
    try:
        module = torch.jit.load(work + "/" + name + "/model.pth", map_location="cpu").eval()
        with torch.no_grad():
            scores = module(x).reshape(-1)
        out["variants"][name] = {"scores": [float(v) for v in scores]}
    except Exception as exc:
        out["variants"][name] = {"error": type(exc).__name__ + ": " + str(exc).splitlines()[0]}
print(json.dumps(out))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", required=True, help="an interpreter that has torch 2.0 (see --help)")
    parser.add_argument("--pairs", type=int, default=2000, help="id pairs scored per variant (default 2000)")
    parser.add_argument("--atol", type=float, default=1e-6, help="largest score difference accepted (default 1e-6)")
    args = parser.parse_args(argv)
    if not Path(args.python).is_file():
        print(f"compat: --python {args.python} is not a file", file=sys.stderr)
        return 2

    sys.path.insert(0, str(REPO))
    import torch

    from ncf_tui.engine.artifact import extract_archive
    from ncf_tui.engine.variants import VARIANT_NAMES, export_variants

    with tempfile.TemporaryDirectory(prefix="ncf-compat-") as tmp:
        work = Path(tmp)
        archives = export_variants(None, out_dir=work / "archives", names=VARIANT_NAMES)
        sidecar: dict[str, int] = {}
        for name, archive in archives.items():
            with tarfile.open(archive) as tar:
                extract_archive(tar, work / name)
            sidecar = json.loads((work / name / "ncf-model.json").read_text())
        rng = random.Random(7)
        pairs = [
            [float(rng.randint(0, int(sidecar["num_users"]) - 1)), float(rng.randint(0, int(sidecar["num_items"]) - 1))]
            for _ in range(args.pairs)
        ]
        (work / "spec.json").write_text(json.dumps({"pairs": pairs, "variants": list(archives)}))
        (work / "child.py").write_text(CHILD)

        here: dict[str, list[float]] = {}
        x = torch.tensor(pairs, dtype=torch.float32)
        for name in archives:
            module = torch.jit.load(str(work / name / "model.pth"), map_location="cpu").eval()  # type: ignore[no-untyped-call]
            with torch.no_grad():
                here[name] = [float(v) for v in module(x).reshape(-1)]

        proc = subprocess.run(
            [args.python, str(work / "child.py"), str(work)], capture_output=True, text=True, check=False, timeout=600
        )
        if proc.returncode != 0:
            print(f"compat: {args.python} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        there = json.loads(proc.stdout.strip().splitlines()[-1])

    print(
        f"traced with torch {torch.__version__.split('+')[0]}; loaded with torch {there['torch']} "
        f"(Python {there['python']}); {args.pairs} pairs per variant"
    )
    print(f"{'variant':<18} {'loads':<6} {'max |Δscore|':>13}")
    ok = True
    for name, scores in here.items():
        got = there["variants"].get(name, {"error": "not run"})
        if "error" in got:
            ok = False
            print(f"{name:<18} {'no':<6} {got['error']}")
            continue
        diff = max(abs(a - b) for a, b in zip(scores, got["scores"], strict=True))
        ok &= diff <= args.atol
        print(f"{name:<18} {'yes':<6} {diff:>13.3g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
