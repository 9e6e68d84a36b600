"""What the SageMaker API path costs over the container itself: p50/p95 of one pair through sagemaker-runtime
InvokeEndpoint (boto3 -> the sandbox -> the container) against the same pair posted to the container's
``/invocations`` directly, on one endpoint the deploy step made from a real run.

    python bench/deploy/run.py [--calls N]

Prints ratios (API path / direct); nothing here is an assertion. On AWS the API path adds the network and
SageMaker's front end instead of the sandbox's; the ratio says what the engine's own side adds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    from ncf_tui.context import RunContext, sandbox_saved_dir
    from ncf_tui.engine.aws import Aws, AwsTarget
    from ncf_tui.engine.deploy import invoke, latency_percentiles
    from ncf_tui.engine.pipeline import Pipeline, RunOptions
    from ncf_tui.engine.sample import sample_checkpoint_path
    from ncf_tui.engine.steps.base import StepContext
    from ncf_tui.engine.steps.deploy import DeployStep
    from ncf_tui.sandbox.server import Sandbox

    with Sandbox() as sb, tempfile.TemporaryDirectory() as tmp:
        aws = Aws(AwsTarget(region=sb.region, endpoint_url=sb.endpoint_url, credentials=sb.credentials))
        saved = sandbox_saved_dir(sb)
        options = RunOptions(checkpoint=sample_checkpoint_path(), output_dir=Path(tmp) / "out", mode="sandbox",
                             env={}, saved_dir=saved, save_answers=False, source_root=sb.source_dir)  # fmt: skip
        p = Pipeline.new(options, lambda _e: None, state_dir=Path(tmp) / "state", aws=lambda: aws,
                         compile_config=RunContext(env={}, saved_dir=saved).compile_config)  # fmt: skip
        p.run("verify")
        ctx = StepContext(options=options, emit=lambda _e: None, state=p.state, save=p.save, aws=p.aws,
                          cancel=threading.Event(), extras={"latency_calls": 2})  # fmt: skip
        result = DeployStep().run(ctx)
        body = result.invocations["pair"]["body"]
        direct = sb.endpoints.address(sb.names.account_id, sb.region, result.endpoint)
        assert direct is not None
        api, raw = [], []
        payload = json.dumps(body).encode()
        for _ in range(args.calls):
            api.append(invoke(aws, result.endpoint, body)[1])
            request = urllib.request.Request(f"{direct}/invocations", data=payload, method="POST")
            request.add_header("Content-Type", "application/json")
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as answer:
                answer.read()
            raw.append((time.perf_counter() - started) * 1000)
        a50, a95 = latency_percentiles(api)
        r50, r95 = latency_percentiles(raw)
        print(f"runtime: {sb.endpoints.runtime_note}")
        print(f"InvokeEndpoint (boto3 -> sandbox -> container): p50 {a50:.2f} ms, p95 {a95:.2f} ms, {args.calls} calls")
        print(f"container /invocations directly:                p50 {r50:.2f} ms, p95 {r95:.2f} ms")
        mean = statistics.mean(api) / statistics.mean(raw)
        print(f"ratio API path / direct: p50 {a50 / r50:.1f}x, p95 {a95 / r95:.1f}x; mean {mean:.1f}x")


if __name__ == "__main__":
    main()
