"""The opt-in ``deploy`` step: the verified image as a SageMaker endpoint that answers (``engine/deploy.py``).

It runs only when asked (``--deploy``; the wizard asks), because an endpoint costs money on a real account.
While it runs it saves the endpoint's names as partial progress, so a resumed run re-attaches to the
endpoint by name instead of creating another. ``ctx.extras``: ``deploy_fix`` (a callable given the proposed
policy for the execution role, True attaches it), ``delete_endpoint`` (True: delete endpoint, config and
model after the invocations), ``latency_calls`` (default 40).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from ..errors import BadInputError
from .base import Step, StepContext


@dataclass(frozen=True)
class DeployResult:
    endpoint: str
    config: str
    model: str
    status: str
    instance_type: str
    image_uri: str
    reattached: bool = False
    invocations: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    """``{"calls", "p50_ms", "p95_ms"}``."""
    deleted: list[str] = field(default_factory=list)
    elsewhere: dict[str, str] = field(default_factory=dict)
    """``docker_run`` (the line), ``docker_run_file``, ``ecs_task_definition_file``."""
    user_range: tuple[int, int] = (0, 0)
    item_range: tuple[int, int] = (0, 0)
    """The sidecar's id ranges (what a form scoring a user may accept)."""

    def to_state(self) -> dict[str, Any]:
        data = asdict(self)
        data["endpoint_status"] = data.pop("status")  # "status" is the step's own ("done") in the run state
        return {**data, "status": "done"}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            endpoint=str(data["endpoint"]),
            config=str(data["config"]),
            model=str(data["model"]),
            status=str(data.get("endpoint_status") or ""),
            instance_type=str(data.get("instance_type") or ""),
            image_uri=str(data.get("image_uri") or ""),
            reattached=bool(data.get("reattached")),
            invocations=dict(data.get("invocations") or {}),
            latency=dict(data.get("latency") or {}),
            deleted=list(data.get("deleted") or []),
            elsewhere=dict(data.get("elsewhere") or {}),
            user_range=_pair(data.get("user_range")),
            item_range=_pair(data.get("item_range")),
        )


def _pair(value: Any) -> tuple[int, int]:
    try:
        low, high = value
        return int(low), int(high)
    except (TypeError, ValueError):
        return 0, 0


def _done(ctx: StepContext, name: str) -> dict[str, Any]:
    entry = ctx.state.steps.get(name)
    if not isinstance(entry, dict) or entry.get("status") != "done":
        raise BadInputError(f"deploy needs the {name} step's result, and the run has none", hint="run it first")
    return entry


def _sidecar_ranges(archive: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = tar.extractfile("ncf-model.json")
            sidecar = json.load(io.TextIOWrapper(member, "utf-8")) if member else {}
        users, items = sidecar["user_id_range"], sidecar["item_id_range"]
        return (int(users[0]), int(users[1])), (int(items[0]), int(items[1]))
    except (OSError, KeyError, ValueError, TypeError, tarfile.TarError):
        return None


def deploy_inputs(ctx: StepContext) -> Any:
    """What deploy takes from earlier steps: the ONE place that reads them.

    Until the other steps return typed results, this reads ``ctx.state.steps[...]`` dicts (verify's
    ``image_uri``, settings' ``values``, compile's ``target_device`` and ``chosen``, variants' candidates);
    switching to ``ctx.result(name)`` changes only this function."""
    from ..deploy import DeployInputs

    verify, settings, compile_ = _done(ctx, "verify"), _done(ctx, "settings"), _done(ctx, "compile")
    values = settings.get("values") or {}
    region = str(values.get("AWS_DEFAULT_REGION") or "")
    role = str(values.get("sagemaker_role") or "")
    if not role:
        raise BadInputError("deploy needs the SageMaker execution role", hint="--set sagemaker_role=ARN")
    chosen = str(compile_.get("chosen") or "")
    ranges = None
    for candidate in (ctx.state.steps.get("variants") or {}).get("candidates", []):
        if candidate.get("name") == chosen:
            ranges = _sidecar_ranges(str(candidate.get("archive")))
    if ranges is None:
        raise BadInputError(f"the id ranges of the chosen variant {chosen!r} cannot be read from its archive")
    return DeployInputs(
        image_uri=str(verify["image_uri"]),
        region=region or ctx.aws().region,
        role_arn=role,
        target_device=str(compile_.get("target_device") or values.get("target_device") or "ml_c5"),
        user_range=ranges[0],
        item_range=ranges[1],
        run_id=ctx.state.run_id,
        output_dir=Path(ctx.state.output_dir),
        variant=chosen,
    )


class DeployStep(Step[DeployResult]):
    name: ClassVar[str] = "deploy"
    title: ClassVar[str] = "Deploy"
    result_type: ClassVar[type[Any]] = DeployResult
    opt_in: ClassVar[bool] = True
    needs: ClassVar[tuple[str, ...]] = ("sagemaker_role",)

    def reusable(self, ctx: StepContext, saved: DeployResult) -> bool:
        """A saved deploy stands while its endpoint is still InService (or was deleted on purpose)."""
        if saved.deleted:
            return True
        from ..deploy import _describe

        described = _describe(ctx.aws(), saved.endpoint)
        return described is not None and described.get("EndpointStatus") == "InService"

    def run(self, ctx: StepContext) -> DeployResult:
        from ..deploy import (
            DeployError,
            EndpointNames,
            check_deploy_permissions,
            create_endpoint,
            delete_endpoint,
            invoke_all,
            wait_in_service,
            write_elsewhere,
        )
        from ..ecr import instance_type_for

        inputs = deploy_inputs(ctx)
        aws = ctx.aws()
        saved = ctx.partial(self.name)
        names = EndpointNames(
            model=str(saved.get("model") or EndpointNames.for_run(inputs.run_id).model),
            config=str(saved.get("config") or EndpointNames.for_run(inputs.run_id).config),
            endpoint=str(saved.get("endpoint") or EndpointNames.for_run(inputs.run_id).endpoint),
        )
        fix = ctx.extras.get("deploy_fix") or (lambda _policy: False)
        delete = bool(ctx.extras.get("delete_endpoint"))
        check_deploy_permissions(aws, inputs, names, ctx.emit, fix)
        ctx.save_partial(self.name, {"endpoint": names.endpoint, "config": names.config, "model": names.model})
        reattached = create_endpoint(aws, inputs, names, ctx.emit)
        try:
            state = wait_in_service(aws, names, ctx.emit, ctx.cancel)
            calls = int(ctx.extras.get("latency_calls") or 40)
            invocations = invoke_all(aws, inputs, names.endpoint, ctx.emit, calls=calls)
        except DeployError:
            if delete:  # asked to leave nothing: a failed endpoint costs nothing but still holds its name
                delete_endpoint(aws, names, ctx.emit, ctx.cancel)
                ctx.state.steps.pop(self.name, None)
                ctx.save()
            raise
        elsewhere = write_elsewhere(inputs)
        deleted = delete_endpoint(aws, names, ctx.emit, ctx.cancel) if delete else []
        return DeployResult(
            endpoint=names.endpoint,
            config=names.config,
            model=names.model,
            status="Deleted" if deleted else state.status,
            instance_type=instance_type_for(inputs.target_device),
            image_uri=inputs.image_uri,
            reattached=reattached,
            invocations={k: v for k, v in invocations.to_dict().items() if k != "latency"},
            latency=invocations.latency,
            deleted=deleted,
            elsewhere=elsewhere,
            user_range=inputs.user_range,
            item_range=inputs.item_range,
        )


def run_after(pipeline: Any, *, delete: bool = False, fix: Any = None, latency_calls: int = 40) -> DeployResult:
    """Run the deploy step after a pipeline's last default step (what ``--deploy`` does until the pipeline
    runs the registry's opt-in steps itself): the run stays unfinished while it runs, so ``--resume``
    re-attaches to the endpoint by name; a saved deploy that is still ``reusable`` is skipped."""
    import time

    from ..events import StepEvent
    from .base import StepContext

    step = DeployStep()
    ctx = StepContext(
        options=pipeline.options,
        emit=pipeline.emit,
        state=pipeline.state,
        save=pipeline.save,
        aws=pipeline.aws,
        cancel=pipeline.cancel,
        extras={"delete_endpoint": delete, "deploy_fix": fix, "latency_calls": latency_calls},
    )
    entry = pipeline.state.steps.get(step.name)
    if isinstance(entry, dict) and entry.get("status") == "done" and not delete:
        saved = DeployResult.from_state(entry)
        if step.reusable(ctx, saved):
            pipeline.emit(StepEvent(name=step.name, status="skipped", message=f"endpoint {saved.endpoint} in service"))
            return saved
    pipeline.state.finished = False
    pipeline.save()
    started = time.monotonic()
    pipeline.emit(StepEvent(name=step.name, status="started"))
    try:
        result = step.run(ctx)
    except BaseException as exc:
        from ..errors import Cancelled

        status = "cancelled" if isinstance(exc, Cancelled | KeyboardInterrupt) else "failed"
        pipeline.emit(
            StepEvent(
                name=step.name,
                status=status,
                elapsed=round(time.monotonic() - started, 3),
                message="" if status == "cancelled" else str(exc),
            )
        )
        pipeline.save()
        raise
    pipeline.state.steps[step.name] = result.to_state()
    pipeline.state.finished = True
    pipeline.save()
    pipeline.emit(StepEvent(name=step.name, status="done", elapsed=round(time.monotonic() - started, 3)))
    return result
