"""The first step of a run: ask for everything first, then create what is missing (``engine/account.py``).

Before any tracing: the caller (STS), the region and every input the chosen steps need, each present or to
be created; the caller's rights to create them, simulated; one confirmation (``ask("create-resources",
plan)``, the plan being every resource with its policy documents); then each resource made, tagged and
recorded in the run state as it is made. Refused (``--yes`` not given, no terminal): the run stops here
with every missing input and the flag that names an existing one (exit 3).

The names the run then uses go into ``options.settings_flags`` for inputs the user did not set, so the
compile and settings steps read them as they read any flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Self

from ..events import StepEvent
from .base import Step, StepContext

NAME = "account"


@dataclass
class AccountResult:
    """What the preflight found and what this run created (``created``: ``account.Created`` as dicts)."""

    run_id: str
    account: str
    caller_arn: str
    region: str
    prefix: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Self:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def created_records(self) -> list[Any]:
        from ..account import Created

        return [Created.from_dict(c) for c in self.created]


def chosen_steps(until: str, also: frozenset[str] = frozenset()) -> list[str]:
    """The steps a run through ``until`` runs after this one (the registry's order, opt-in ones if asked)."""
    from . import wanted_steps

    return [s.name for s in wanted_steps(until, also) if s.name != NAME]


def run_steps(ctx: StepContext) -> list[str]:
    """The steps after this one that the run asked for (``Pipeline.run``'s own list when it gave one); run on
    its own (the wizard's connection screen runs ``until="account"``), it prepares for the run the options
    describe."""
    if ctx.wanted and ctx.wanted != (NAME,):
        return [s for s in ctx.wanted if s != NAME]
    return chosen_steps(ctx.options.until, ctx.options.also)


def needs_of(steps: list[str]) -> list[str]:
    """The inputs the given steps declare in ``Step.needs``, in the order the preflight lists them."""
    from ..account import inputs_in_order
    from . import step_by_name

    return inputs_in_order(n for name in steps for n in step_by_name(name).needs)


def preflight_for(aws: Any, options: Any, *, emit: Any = None, check_rights: bool = True) -> Any:
    """``account.preflight`` for a run's ``RunOptions``: its settings sources (flags, env, --config, saved
    answers) and the steps it will run. What the step runs, and what the wizard's connection screen shows."""
    from ..account import preflight
    from ..events import discard
    from ..settings import resolve_settings

    o = options
    settings = resolve_settings(flags=o.settings_flags, env=o.env, config=o.config, saved_dir=o.saved_dir, derived={})
    needs = needs_of(chosen_steps(o.until, getattr(o, "also", frozenset())))
    return preflight(aws, settings, needs, emit=emit or discard, check_rights=check_rights)


def _with_compile_config(ctx: StepContext, aws: Any, settings: Any) -> Any:
    """The bucket, prefix and SageMaker role the front end's compile config names (one of the run's settings
    sources: the compile step will use exactly these), where the settings sources name none."""
    from ..errors import BadInputError

    make = ctx.extras.get("compile_config")
    if make is None or (settings.bucket and settings.sagemaker_role):
        return settings
    try:
        cfg = make(aws)
    except BadInputError:  # the config itself says what is missing: the preflight names it too
        return settings
    for name, value in (("bucket", cfg.bucket), ("prefix", cfg.prefix), ("sagemaker_role", cfg.role_arn)):
        if value and not getattr(settings, name):
            settings = settings.with_value(name, value, "compile config")
    return settings


class AccountStep(Step[AccountResult]):
    name = NAME
    title = "Account"
    result_type = AccountResult
    needs_aws = False
    """It asks for AWS itself, and only when the chosen steps need an input (``--until variants`` needs none)."""
    needs = ()

    def reusable(self, ctx: StepContext, saved: AccountResult) -> bool:
        """A saved result stands while everything it found or made still exists (else: preflight again).

        When it stands, its names go back into ``options.settings_flags`` (a resumed run's later steps read
        them there, as after ``run``). A result that covers fewer inputs than this run needs (a model-only
        ``--until variants`` run, resumed through verify) does not stand: the preflight runs for the rest."""
        from ..account import _exists

        needs = set(needs_of(run_steps(ctx)))
        if not needs <= {i["name"] for i in saved.inputs}:
            return False
        if needs and saved.inputs:  # a model-only run asks AWS nothing, not even whether they still exist
            aws = ctx.aws()
            if not all(_exists(aws, i["kind"], i["value"]) for i in saved.inputs):
                return False
        _apply(ctx.options.settings_flags, saved)
        return True

    def run(self, ctx: StepContext) -> AccountResult:
        from ..account import (
            AccountError,
            Created,
            check_inputs,
            create,
            missing_message,
            plan,
            plan_text,
            preflight,
            require_rights,
        )
        from ..settings import resolve_settings

        o = ctx.options
        flags = o.settings_flags
        needs = needs_of(run_steps(ctx))
        if not needs:  # a model-only run: nothing to ask AWS for
            return AccountResult(ctx.state.run_id, "", "", "", "")
        settings = resolve_settings(flags=flags, env=o.env, config=o.config, saved_dir=o.saved_dir, derived={})
        check_inputs(settings, needs)  # before the AWS target is even made
        aws = ctx.aws()
        settings = _with_compile_config(ctx, aws, settings)
        pre = preflight(aws, settings, needs, emit=ctx.emit)
        run_id = ctx.state.run_id
        earlier = [Created.from_dict(c) for c in ctx.partial(NAME).get("created", [])]
        result = AccountResult(
            run_id,
            pre.account,
            pre.caller_arn,
            pre.region,
            pre.prefix,
            inputs=[asdict(i) for i in pre.inputs],
            created=[asdict(c) for c in earlier],
            values=pre.values(),
        )
        if pre.missing:
            resources = plan(pre, settings, run_id, base_image=ctx.extras.get("base_image") or _base_image(pre, o))
            if not o.ask("create-resources", resources):
                message, hint = missing_message(pre)
                raise AccountError(message, hint=hint)
            require_rights(pre)
            ctx.emit(StepEvent(name=NAME, status="note", message="creating:\n" + plan_text(resources)))

            def record(c: Created) -> None:
                result.created.append(asdict(c))
                ctx.save_partial(NAME, result.to_state())

            create(aws, resources, run_id, emit=ctx.emit, on_created=record)
        _apply(flags, result)
        return result


def _apply(flags: dict[str, str | None], result: AccountResult) -> None:
    """The names the run uses, as flags for the later steps (a value the user gave is never replaced)."""
    for name, value in result.values.items():
        if not flags.get(name):
            flags[name] = value
    if result.prefix and not flags.get("prefix"):
        flags["prefix"] = result.prefix


def _base_image(pre: Any, options: Any) -> str | None:
    """The Neo inference image the build pulls FROM (its pull actions belong in the CodeBuild role's policy)."""
    from ..neo import neo_inference_image
    from ..settings import DEFAULT_TARGET_DEVICE

    device = (options.settings_flags or {}).get("target_device") or DEFAULT_TARGET_DEVICE
    return neo_inference_image(pre.region, str(device))
