"""bench/compile: the compile stage on the sandbox, concurrent (ours) vs one variant at a time (the seed's way).

Both runs use the same sandbox, the same four Neo-compatible archives and the same simulated Neo job length;
the only difference is whether the jobs run side by side under one poller or one after another. Prints both
wall times, their ratio (target <= 0.35x) and how many API calls the poller made per job-minute.

    python bench/compile/run.py [--neo-seconds 4] [--rounds 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neo-seconds", type=float, default=4.0, help="simulated length of one Neo job")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()

    from ncf_tui.engine.aws import Aws, AwsTarget
    from ncf_tui.engine.checkpoint import load_checkpoint
    from ncf_tui.engine.events import discard
    from ncf_tui.engine.neo import Candidate, CompileConfig, compile_step
    from ncf_tui.engine.sample import sample_checkpoint_path
    from ncf_tui.engine.steps.variants import variants_step
    from ncf_tui.sandbox.server import Sandbox

    out = Path(tempfile.mkdtemp(prefix="bench-compile-"))
    variants = variants_step(load_checkpoint(sample_checkpoint_path()), out, discard)
    cands = [
        Candidate(
            v.name,
            str(v.archive),
            v.preflight.accepted,
            v.preflight.message,
            v.fidelity.as_dict() if v.fidelity else None,
        )
        for v in variants
        if v.preflight.accepted
    ]
    with Sandbox(neo_seconds=args.neo_seconds) as sb:
        aws = Aws(AwsTarget(region=sb.region, endpoint_url=sb.endpoint_url, credentials=sb.credentials))
        d = sb.project_defaults()

        def cfg() -> CompileConfig:
            return CompileConfig(bucket=d["bucket"], prefix=d["prefix"], role_arn=d["sagemakerRoleArn"], poll_min=0.5)

        conc, seq, calls, job_minutes = [], [], 0, 0.0
        for r in range(args.rounds):
            t = time.perf_counter()
            res = compile_step(aws, cands, cfg(), f"20990101-000000-c{r:03d}", discard)
            conc.append(time.perf_counter() - t)
            calls += res.api_calls
            job_minutes += sum((j.ended or 0) - (j.started or 0) for j in res.jobs.values()) / 60
            t = time.perf_counter()
            for i, c in enumerate(cands):
                compile_step(aws, [c], cfg(), f"20990101-000000-s{r:02d}{i}", discard)
            seq.append(time.perf_counter() - t)
    c, s = min(conc), min(seq)
    print(f"variants compiled      : {len(cands)} (simulated Neo job {args.neo_seconds:.1f} s)")
    print(f"concurrent (ncf-tui)   : {c:6.2f} s")
    print(f"one at a time (seed)   : {s:6.2f} s")
    print(f"ratio concurrent/seq   : {c / s:6.2f}x   (target <= 0.35x)")
    print(f"API calls per job-min  : {calls / job_minutes:6.1f}   ({calls} calls over {job_minutes:.2f} job-minutes)")


if __name__ == "__main__":
    main()
