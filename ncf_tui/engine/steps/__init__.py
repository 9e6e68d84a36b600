"""The steps of a run, in order: one line each. Adding a step is one module plus one line here.

Only names and import paths live here, so ``STEPS`` costs nothing to import (no torch): the CLI and the TUI
read it instead of copying it. ``step_by_name`` imports a step's module when it is first needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..state import RunState


@dataclass(frozen=True)
class StepSpec:
    name: str
    target: str
    """``module:Class``, relative to this package; a dotted module (``pkg.mod:Class``) is absolute."""
    opt_in: bool = False


REGISTRY: tuple[StepSpec, ...] = (
    StepSpec("account", "account:AccountStep"),
    StepSpec("checkpoint", "checkpoint:CheckpointStep"),
    StepSpec("variants", "variants:VariantsStep"),
    StepSpec("compile", "compile:CompileStep"),
    StepSpec("settings", "settings:SettingsStep"),
    StepSpec("permissions", "permissions:PermissionsStep"),
    StepSpec("build", "build:BuildStep"),
    StepSpec("verify", "verify:VerifyStep"),
    StepSpec("deploy", "deploy:DeployStep", opt_in=True),
)

STEPS: tuple[str, ...] = tuple(s.name for s in REGISTRY)
"""Every step, opt-in ones included, in run order."""
DEFAULT_STEPS: tuple[str, ...] = tuple(s.name for s in REGISTRY if not s.opt_in)
"""What a plain run runs: ``--until`` defaults to the last of these."""


def step_by_name(name: str, registry: Sequence[StepSpec] | None = None) -> Any:
    """The step object for ``name`` (its module imported on first use); KeyError for an unknown name."""
    spec = next((s for s in (REGISTRY if registry is None else registry) if s.name == name), None)
    if spec is None:
        raise KeyError(name)
    return load_step(spec)


@cache
def load_step(spec: StepSpec) -> Any:
    """The step object a registry line names (one per line: steps hold no state of a run)."""
    module_name, _, cls_name = spec.target.partition(":")
    module = importlib.import_module(module_name if "." in module_name else f"{__name__}.{module_name}")
    return getattr(module, cls_name)()


def wanted_steps(
    until: str, also: Iterable[str] = (), registry: Sequence[StepSpec] | None = None
) -> tuple[StepSpec, ...]:
    """The registry lines a run through ``until`` runs, in order: every step up to it that is not opt-in, the
    opt-in ones named in ``also``, and ``until`` itself (naming a step asks for it). KeyError for unknown."""
    lines = tuple(REGISTRY if registry is None else registry)
    names = [s.name for s in lines]
    if until not in names:
        raise KeyError(until)
    asked = set(also) | {until}
    return tuple(s for s in lines[: names.index(until) + 1] if not s.opt_in or s.name in asked)


def saved_result(state: RunState, name: str, registry: Sequence[StepSpec] | None = None) -> Any:
    """The typed result a run state holds for a finished step ``name``; None when it has not finished."""
    entry = state.steps.get(name)
    if not isinstance(entry, dict) or entry.get("status") != "done":
        return None
    return step_by_name(name, registry).result_type.from_state(entry)
