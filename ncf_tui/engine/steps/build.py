"""The build step: the repository's container and buildspec uploaded, the CodeBuild project made to say what
the build needs, one build started (or re-attached to) and watched to its end."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BadInputError, Cancelled
from .base import Step, StepContext

if TYPE_CHECKING:
    from ..codebuild import BuildResult
    from ..logs import BuildValues
    from ..settings import Settings
    from .permissions import PermissionsResult

SOURCE_KEY = "source/ncf-tui-source.zip"
"""Where, under the settings' bucket and prefix, the build's source zip goes."""
PROPAGATION_WINDOW = 600.0
"""A denial this many seconds after attaching the fix may be IAM's propagation, not a missing permission."""
PROPAGATION_WAITS = (10.0, 20.0, 40.0)
EARLY_PHASES = frozenset({"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD"})
_DENIED = re.compile(r"AccessDenied|Access Denied|not authorized to perform|\(403\)|403 Forbidden|Forbidden\b")


@dataclass
class BuildStepResult:
    build_id: str
    values: BuildValues
    """What the buildspec reported on its ``NCF-TUI:`` lines (model sha256, image URI and digest)."""
    duration: float | None = None
    build: BuildResult | None = field(default=None, compare=False, repr=False)
    """The whole build (phases, log tail), in this process only."""

    def to_state(self) -> dict[str, Any]:
        return {"build_id": self.build_id, "values": self.values.as_dict(), "duration": self.duration}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> BuildStepResult:
        from ..logs import BuildValues

        saved = data.get("values") or {}
        values = BuildValues(
            model_sha256=saved.get("model_sha256"),
            image_uri=saved.get("image_uri"),
            image_digest=saved.get("image_digest"),
            docker_server=saved.get("docker_server"),
            errors=list(saved.get("errors") or []),
        )
        d = data.get("duration")
        return cls(str(data.get("build_id") or ""), values, float(d) if isinstance(d, int | float) else None)


def base_image(ctx: StepContext, settings: Settings, *, required: bool = True) -> str | None:
    """The Neo inference image the Dockerfile builds FROM: the compile step's lookup, else looked up now."""
    from ..neo import CompileResult, neo_inference_image

    compiled: CompileResult | None = ctx.saved("compile")
    if compiled is not None and compiled.inference_image:
        return compiled.inference_image
    device = (compiled.target_device if compiled is not None else "") or settings.target_device or "ml_c5"
    image = neo_inference_image(settings.region, device)
    if not image and required:
        raise BadInputError(
            f"no SageMaker Neo PyTorch inference image is known for {settings.region} / {device}",
            hint="the Dockerfile builds FROM it: install the sagemaker SDK, or pick a region Neo serves",
        )
    return image


def denied_early(result: BuildResult) -> bool:
    """The build failed before its BUILD phase, with an access denial in its phase context or its log."""
    if result.failed_phase not in EARLY_PHASES:
        return False
    texts = [p.context for p in result.phases] + list(result.log_tail)
    return any(_DENIED.search(text) for text in texts)


class BuildStep(Step[BuildStepResult]):
    name = "build"
    title = "Build"
    result_type = BuildStepResult
    needs = ("bucket", "service_role", "project_name", "IMAGE_REPO_NAME")

    def run(self, ctx: StepContext) -> BuildStepResult:
        from ..codebuild import BuildCancelled, BuildFailed, watch_build
        from ..logs import LogPosition
        from .settings import settings_of

        settings = settings_of(ctx)
        aws = ctx.aws()
        entry = ctx.partial(self.name)
        o = ctx.options

        def position(pos: LogPosition) -> None:
            # Kept with the build id, written with the next save (a resumed run follows the log from here).
            build = ctx.state.steps.get(self.name) or {}
            build["log_position"] = pos.to_dict()
            ctx.state.steps[self.name] = build

        try:
            if entry.get("build_id") and entry.get("status") == "running":
                saved_pos = entry.get("log_position")
                result = watch_build(
                    aws,
                    entry["build_id"],
                    ctx.emit,
                    ctx.cancel,
                    stop_on_cancel=o.stop_on_cancel,
                    log_position=LogPosition.from_dict(saved_pos) if saved_pos else None,
                    on_log_position=position,
                )
            else:
                result = self._start(ctx, settings, position)
        except BuildFailed as exc:
            ctx.save_partial(
                self.name, {"build_id": exc.result.build_id, "failed_phase": exc.result.failed_phase}, "failed"
            )
            raise
        except BuildCancelled as exc:
            if exc.result.status == "STOPPED":  # stopped on CodeBuild: a resume starts a new build
                ctx.save_partial(self.name, {"build_id": exc.result.build_id}, "stopped")
            ctx.save()
            raise Cancelled("cancelled while building") from None
        return BuildStepResult(result.build_id, result.values, result.duration, result)

    def _start(self, ctx: StepContext, settings: Settings, position: Callable[[Any], None]) -> BuildResult:
        from ..codebuild import DEFAULT_IMAGE, ProjectSpec, ensure_project, start_build, upload_source

        aws = ctx.aws()
        o = ctx.options
        source = upload_source(aws, settings.bucket, f"{settings.prefix}/{SOURCE_KEY}", o.source_root)
        spec = ProjectSpec(
            name=settings.project_name,
            service_role_arn=settings.service_role,
            source=source,
            environment_variables={
                **settings.codebuild_environment(),
                "NEO_BASE_IMAGE": str(base_image(ctx, settings)),
            },
            image=settings.build_image or DEFAULT_IMAGE,
            privileged_mode=True,
        )
        ensure_project(aws, spec, ctx.emit, lambda changes: bool(o.ask("update-project", changes)))
        return self._through_propagation(
            ctx,
            lambda: start_build(
                aws,
                settings.project_name,
                ctx.emit,
                ctx.cancel,
                stop_on_cancel=o.stop_on_cancel,
                # This run's variables, whatever another run set on the shared project meanwhile.
                environment_overrides=settings.codebuild_environment(),
                on_started=lambda build_id: ctx.save_partial(self.name, {"build_id": build_id}),
                on_log_position=position,
            ),
        )

    def _through_propagation(self, ctx: StepContext, start: Callable[[], BuildResult]) -> BuildResult:
        """Start the build; if it fails early with AccessDenied within minutes of this run attaching a policy to
        its role, start it again (bounded, saying so): IAM is eventually consistent, so a change the
        simulation already sees may not have reached the build yet."""
        from ..codebuild import BuildFailed
        from ..events import StepEvent
        from ..polling import Poller

        permissions: PermissionsResult | None = ctx.saved("permissions")
        attached_at = permissions.attached_at if permissions is not None else None
        for attempt, delay in enumerate((*PROPAGATION_WAITS, None), start=1):
            try:
                return start()
            except BuildFailed as exc:
                since = time.time() - attached_at if attached_at is not None else None
                if delay is None or since is None or since > PROPAGATION_WINDOW or not denied_early(exc.result):
                    raise
                ctx.emit(
                    StepEvent(
                        name=self.name,
                        status="warning",
                        message=f"build {exc.result.build_id} was denied access in {exc.result.failed_phase} "
                        f"{since:.0f} s after the policy was attached; IAM changes take time "
                        f"to reach every service (eventual consistency): starting it again in {delay:.0f} s "
                        f"(attempt {attempt + 1} of {len(PROPAGATION_WAITS) + 1})",
                    )
                )
                if Poller(cancel=ctx.cancel).sleep(delay):
                    raise Cancelled("cancelled while waiting for IAM to propagate") from None
        raise AssertionError("unreachable")
