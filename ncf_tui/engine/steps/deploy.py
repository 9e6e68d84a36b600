"""The opt-in ``deploy`` step: the verified image as a SageMaker endpoint that answers (``engine/deploy.py``).

It runs only when asked (``--deploy``; the wizard asks), because an endpoint costs money on a real account.
While it runs it saves the endpoint's names as partial progress, so a resumed run re-attaches to the
endpoint by name instead of creating another. It asks ``options.ask("attach-policy", policy)`` before
attaching the hosting policy to the execution role; ``options.delete_endpoint`` deletes endpoint, config
and model after the invocations; ``ctx.extras["latency_calls"]`` (default 40) sets the latency series.
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


def _done(ctx: StepContext, name: str) -> Any:
    found = ctx.saved(name)
    if found is None:
        raise BadInputError(f"deploy needs the {name} step's result, and the run has none", hint="run it first")
    return found


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
    """What deploy takes from earlier steps (typed results): verify's image, the settings' region and role,
    compile's target device and chosen variant, whose archive's sidecar gives the id ranges."""
    from ..deploy import DeployInputs

    verify, settings, compiled = _done(ctx, "verify"), _done(ctx, "settings").settings, _done(ctx, "compile")
    if not settings.sagemaker_role:
        raise BadInputError("deploy needs the SageMaker execution role", hint="--set sagemaker_role=ARN")
    chosen = str(compiled.chosen or "")
    variants = ctx.saved("variants")
    ranges = None
    for candidate in variants.candidates if variants is not None else []:
        if candidate.name == chosen:
            ranges = _sidecar_ranges(str(candidate.archive))
    if ranges is None:
        raise BadInputError(f"the id ranges of the chosen variant {chosen!r} cannot be read from its archive")
    return DeployInputs(
        image_uri=str(verify.image_uri),
        region=settings.region or ctx.aws().region,
        role_arn=settings.sagemaker_role,
        target_device=str(compiled.target_device or settings.target_device or "ml_c5"),
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
        ask = ctx.options.ask

        def fix(policy: Any) -> bool:
            return bool(ask("attach-policy", policy))

        delete = bool(ctx.options.delete_endpoint)
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
