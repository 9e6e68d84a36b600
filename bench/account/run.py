"""How soon an empty account is reported, and what creating and tearing down costs.

    python bench/account/run.py

Against the embedded sandbox's ``empty-account`` scenario, in this process:
- refused: the account step without a yes, from its start to the error naming every missing input;
- before: today's order without it (checkpoint, variants, then compile), from its start to the compile step's
  "needs a bucket and a SageMaker execution role": the tracing a newcomer waited through first;
- create / teardown: the account step with a yes (four resources), then the teardown of what it made.
Printed as seconds and as the ratio refused / before (below 1.0: the missing inputs are named sooner).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    from ncf_tui.context import RunContext, sandbox_saved_dir
    from ncf_tui.engine.account import AccountError, teardown, teardown_plan
    from ncf_tui.engine.aws import Aws, AwsTarget
    from ncf_tui.engine.errors import NcfError
    from ncf_tui.engine.events import discard
    from ncf_tui.engine.pipeline import Pipeline, RunOptions, agree, refuse
    from ncf_tui.engine.sample import sample_checkpoint_path
    from ncf_tui.engine.state import RunState, StateStore
    from ncf_tui.engine.steps.account import AccountStep
    from ncf_tui.engine.steps.base import StepContext
    from ncf_tui.sandbox.server import Sandbox

    with Sandbox("empty-account", neo_seconds=0.5) as sb, tempfile.TemporaryDirectory() as tmp:
        aws = Aws(AwsTarget(region=sb.region, endpoint_url=sb.endpoint_url, credentials=sb.credentials))
        aws.whoami()  # botocore's data loaded once, outside every figure

        def context(ask: object, name: str) -> tuple[StepContext, RunOptions, StateStore]:
            options = RunOptions(
                checkpoint=sample_checkpoint_path(),
                output_dir=Path(tmp) / name / "out",
                mode="sandbox",
                env={},
                saved_dir=sandbox_saved_dir(sb),
                save_answers=False,
                source_root=sb.source_dir,
                ask=ask,  # type: ignore[arg-type]
                settings_flags={},
            )
            store = StateStore(Path(tmp) / name / "run.json")
            state = RunState(run_id=name, mode="sandbox", checkpoint=str(options.checkpoint))
            ctx = StepContext(options, discard, state, lambda: store.save(state), lambda: aws, threading.Event())
            return ctx, options, store

        ctx, _, _ = context(refuse, "refused")
        t0 = time.perf_counter()
        with contextlib.suppress(AccountError):
            AccountStep().run(ctx)
        refused = time.perf_counter() - t0

        _, options, store = context(refuse, "before")
        state = RunState(run_id="before", mode="sandbox", checkpoint=str(options.checkpoint))
        pipeline = Pipeline(
            options,
            discard,
            store,
            state,
            aws=lambda: aws,
            compile_config=RunContext(env={}, saved_dir=options.saved_dir).compile_config,
        )
        t0 = time.perf_counter()
        with contextlib.suppress(NcfError):
            pipeline.run("compile")
        before = time.perf_counter() - t0

        ctx, _, _ = context(agree, "create")
        t0 = time.perf_counter()
        result = AccountStep().run(ctx)
        created = time.perf_counter() - t0
        ctx.state.steps["account"] = {"status": "done", **result.to_state()}
        t0 = time.perf_counter()
        teardown(aws, teardown_plan(aws, ctx.state.steps))
        torn = time.perf_counter() - t0

    print(f"refused (missing inputs named): {refused:6.2f} s")
    print(f"before (traced, then refused):  {before:6.2f} s")
    print(f"ratio refused / before:         {refused / before:6.2f}")
    print(f"create {len(result.created)} resources:             {created:6.2f} s")
    print(f"teardown:                       {torn:6.2f} s")


if __name__ == "__main__":
    main()
