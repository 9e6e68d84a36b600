"""The settings step: the five build variables and their friends, resolved, validated and (if agreed) fixed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Step, StepContext

if TYPE_CHECKING:
    from ..settings import Settings


@dataclass
class SettingsResult:
    settings: Settings

    def to_state(self) -> dict[str, Any]:
        return {"values": self.settings.as_dict()}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> SettingsResult:
        from ..settings import Settings

        s = Settings()
        for name, value in (data.get("values") or {}).items():
            s = s.with_value(name, value, "state")
        return cls(s)


class SettingsStep(Step[SettingsResult]):
    name = "settings"
    title = "Settings"
    result_type = SettingsResult

    def run(self, ctx: StepContext) -> SettingsResult:
        from ..neo import CompileResult
        from ..settings import save, saved_config_path, settings_step

        o = ctx.options
        compiled: CompileResult | None = ctx.saved("compile")
        settings = settings_step(
            ctx.aws(),
            ctx.emit,
            flags=o.settings_flags,
            env=o.env,
            config=o.config,
            saved_dir=o.saved_dir,
            derived={"NEO_MODEL_S3_URI": compiled.neo_model_s3_uri if compiled is not None else ""},
            fix=lambda issue: bool(o.ask("setting-fix", issue)),
        )
        if o.save_answers:
            save(settings, saved_config_path(o.saved_dir, o.env))
        return SettingsResult(settings)


def settings_of(ctx: StepContext) -> Settings:
    """The settings the settings step settled (for the steps after it)."""
    from ..errors import BadInputError

    done: SettingsResult | None = ctx.saved("settings")
    if done is None:
        raise BadInputError("the settings step has not run")
    return done.settings
