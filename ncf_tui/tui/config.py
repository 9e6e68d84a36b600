"""What the wizard is started with: plain data, no Textual, so the CLI and tests build it cheaply.

Everything that would make a screen differ from one run to the next (the run id, the clock, the folder the
file picker opens on, the state folder) comes from here, so tests and SVG snapshots are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from ..context import RunContext

DEFAULT_OUTPUT_DIR = Path("output/models/pruned")
UNTIL_SCREEN = {
    "checkpoint": "checkpoint",
    "variants": "variants",
    "compile": "variants",
    "settings": "settings",
    "permissions": "permissions",
    "build": "build",
    "verify": "build",
    "deploy": "deploy",
}
"""The wizard screen that shows each engine step (``--until STEP`` makes it the last screen)."""


@dataclass
class AppConfig:
    """The wizard's inputs (from flags, or from a test's app factory)."""

    sandbox: bool = False
    scenario: str | None = None
    checkpoint: Path | None = None
    output_dir: Path = DEFAULT_OUTPUT_DIR
    state_dir: Path | None = None
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    release: str | None = None
    checklist: bool = False
    offer_resume: bool = True
    start_dir: Path | None = None
    """Where the checkpoint picker opens (default: the checkpoint's folder, else the working folder)."""
    run_id: str | None = None
    """Fixed run id (tests and snapshots); None makes a fresh one per run."""
    clock: Callable[[], float] = field(default=time.monotonic)
    """Seconds, for elapsed times and the spinner; tests pass a frozen clock."""
    sandbox_instance: Any = None
    """An already running ``ncf_tui.sandbox.server.Sandbox`` to use instead of starting one (tests)."""
    animate: bool = True
    """False freezes spinners (snapshots)."""
    force: tuple[str, ...] = ()
    """Variants to submit to Neo even though the preflight rejects them (``--force``)."""
    saved_dir: Path | None = None
    """Folder of the saved answers (config.toml); None is the user's config folder."""
    env: dict[str, str] | None = None
    """Environment the settings are resolved from; None is the process environment (tests pass {})."""
    key_map: Path | None = None
    """``--key-map``: names a checkpoint's tensors for layouts ncf-tui does not know."""
    gmf_norm: str | None = None
    output: str | None = None
    """``--gmf-norm`` and ``--output``; None: read from the checkpoint, else asked on the checkpoint screen."""
    config_file: Path | None = None
    """``--config``: a TOML file of answers, a settings source as in a headless run (the form's defaults)."""
    settings_flags: dict[str, str | None] = field(default_factory=dict)
    """``--set`` (and ``--region``): the first settings source, as in a headless run."""
    until: str | None = None
    """``--until``: the last step the wizard runs and shows."""
    resume: bool = False
    """``--resume``: continue the unfinished run (``--state``'s, else the latest) without asking."""
    state_file: Path | None = None
    yes: bool = False
    """``--yes``: agree to every confirmation the engine asks (setting fixes, the policy, the project update)."""
    deploy: bool = False
    """``--deploy``: the Deploy screen creates the endpoint without asking first (it costs money on AWS)."""
    timings: bool = True
    """False shows measured milliseconds as ``--`` (snapshots: they differ on every run); the counts stay."""
    context: RunContext | None = None
    """The composed run context (``ncf_tui.context``); None builds one from the fields above."""

    @property
    def mode(self) -> str:
        return "sandbox" if self.sandbox else "aws"

    @property
    def last_screen(self) -> str | None:
        """The screen ``--until`` ends on (None: every screen)."""
        if self.until is None:
            return None
        return UNTIL_SCREEN.get(self.until, "build")

    def clamp(self, step: str) -> str:
        """``step``, or ``--until``'s step when that comes first: the wizard runs no further than asked."""
        from ..engine.steps import STEPS

        if self.until is None or step not in STEPS or self.until not in STEPS:
            return step
        return step if STEPS.index(step) <= STEPS.index(self.until) else self.until

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AppConfig:
        """The wizard's inputs from flags, through the one composition every front end uses: a flag the wizard
        cannot honour (``--json``, ``--fix``, ``--leave-running``) is refused there with exit 2."""
        from ..context import compose

        ctx = compose(args, "wizard")
        if ctx.resume:
            ctx.resume_store()  # no run to resume: say so before the wizard opens
        return cls.from_context(ctx, checklist=bool(getattr(args, "checklist", False)))

    @classmethod
    def from_context(cls, ctx: RunContext, **extra: Any) -> AppConfig:
        return cls(
            sandbox=ctx.sandbox_mode,
            scenario=ctx.scenario,
            checkpoint=ctx.checkpoint,
            output_dir=ctx.output_dir or DEFAULT_OUTPUT_DIR,
            state_dir=ctx.state.parent if ctx.state is not None else None,
            profile=ctx.profile,
            region=ctx.region,
            endpoint_url=ctx.endpoint_url,
            release=ctx.release,
            force=tuple(sorted(ctx.force)),
            key_map=ctx.key_map,
            gmf_norm=ctx.gmf_norm,
            output=ctx.output,
            config_file=ctx.config,
            settings_flags=dict(ctx.flags),
            until=ctx.until,
            resume=ctx.resume,
            state_file=ctx.state,
            yes=ctx.yes,
            deploy=ctx.deploy,
            context=ctx,
            **extra,
        )

    def make_context(self) -> RunContext:
        """This config's run context (the one ``from_args`` composed, else one built from the fields)."""
        from ..context import RunContext

        if self.context is None:
            self.context = RunContext(
                front_end="wizard",
                sandbox_mode=self.sandbox,
                scenario=self.scenario,
                profile=self.profile,
                region=self.region,
                endpoint_url=self.endpoint_url,
                flags=dict(self.settings_flags),
                config=self.config_file,
                env=self.env,
                saved_dir=self.saved_dir,
                state=self.state_file,
                resume=self.resume,
                until=self.until,
                yes=self.yes,
                deploy=self.deploy,
                checkpoint=self.checkpoint,
                output_dir=self.output_dir,
                release=self.release,
                force=frozenset(self.force),
                key_map=self.key_map,
                gmf_norm=self.gmf_norm,
                output=self.output,
            )
        return self.context


def frozen_clock(value: float = 1000.0) -> Callable[[], float]:
    """A clock that never moves (snapshots)."""
    return lambda: value


def wall_clock() -> float:
    return time.monotonic()
