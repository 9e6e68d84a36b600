"""The permissions step: what the build's role may do, simulated by IAM, and (if agreed) the policy it lacks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import Step, StepContext

if TYPE_CHECKING:
    from ..iam import PermissionReport


@dataclass
class PermissionsResult:
    report: dict[str, Any]
    """``PermissionReport.to_dict()``: role, verdict per action and resource, the policy proposed."""
    attached_at: float | None = None
    """When this run attached the proposed policy (``time.time()``): a build denied soon after may be IAM's
    propagation, not a missing permission."""
    full: PermissionReport | None = field(default=None, compare=False, repr=False)
    """The report itself, in this process only."""

    @property
    def attached(self) -> bool:
        return bool(self.report.get("attached"))

    @property
    def verified(self) -> bool:
        return bool(self.report.get("verified", True))

    def to_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"report": self.report}
        if self.attached_at is not None:
            out["attached_at"] = self.attached_at
        return out

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> PermissionsResult:
        at = data.get("attached_at")
        report = data.get("report")
        return cls(
            dict(report) if isinstance(report, Mapping) else {}, float(at) if isinstance(at, int | float) else None
        )


class PermissionsStep(Step[PermissionsResult]):
    name = "permissions"
    title = "Permissions"
    result_type = PermissionsResult
    needs = ("service_role",)

    def run(self, ctx: StepContext) -> PermissionsResult:
        from ..events import StepEvent
        from ..iam import permissions_step, source_permissions
        from .build import SOURCE_KEY, base_image
        from .settings import settings_of

        settings = settings_of(ctx)
        ask = ctx.options.ask
        report = permissions_step(
            ctx.aws(),
            settings,
            ctx.emit,
            fix=lambda policy: bool(ask("attach-policy", policy)),
            extra=source_permissions(settings.partition, settings.bucket, f"{settings.prefix}/{SOURCE_KEY}"),
            base_image=base_image(ctx, settings, required=False),
        )
        if not report.verified:
            ctx.emit(StepEvent(name=self.name, status="warning", message=report.warning))
        return PermissionsResult(report.to_dict(), time.time() if report.attached else None, report)
