"""The compile step: every eligible variant compiled by its own SageMaker Neo job, the most faithful chosen."""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import TYPE_CHECKING

from ..errors import BadInputError
from ..neo import CompileResult
from .base import Step, StepContext

if TYPE_CHECKING:
    from ..neo import Job
    from .variants import VariantsResult


class CompileStep(Step[CompileResult]):
    name = "compile"
    title = "Compile"
    result_type = CompileResult
    needs = ("bucket", "prefix", "sagemaker_role")

    def run(self, ctx: StepContext) -> CompileResult:
        from ..neo import compile_step, jobs_from_state, neo_inference_image

        make_config = ctx.extras.get("compile_config")
        if make_config is None:
            raise BadInputError("the compile step needs a bucket, a prefix and a SageMaker role")
        aws = ctx.aws()
        cfg = make_config(aws)
        if ctx.options.force:
            cfg.force = frozenset(ctx.options.force)
        variants: VariantsResult = ctx.result("variants")
        # Jobs an interrupted run created: re-attached by name, never launched twice.
        known = jobs_from_state(ctx.partial(self.name).get("jobs"))

        def on_jobs(jobs: dict[str, Job]) -> None:
            ctx.save_partial(self.name, {"jobs": {k: asdict(v) for k, v in jobs.items()}})

        image: dict[str, str | None] = {}
        lookup = threading.Thread(
            target=lambda: image.update(uri=neo_inference_image(aws.region, cfg.target_device)),
            name="neo-image-uri",
            daemon=True,
        )
        lookup.start()  # the sagemaker SDK takes seconds to import: overlap it with the jobs
        result = compile_step(
            aws,
            variants.candidates,
            cfg,
            ctx.run_id,
            ctx.emit,
            cancel=ctx.cancel,
            known_jobs=known,
            on_jobs=on_jobs,
            stop_on_cancel=ctx.options.stop_on_cancel,
        )
        lookup.join(timeout=30)
        result.inference_image = image.get("uri")
        result.target_device = cfg.target_device
        return result
