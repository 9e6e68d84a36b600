"""The steps of a run, in order: one line each. Adding a step is one module plus one line here.

Only names and import paths live here, so ``STEPS`` costs nothing to import (no torch): the CLI and the TUI
read it instead of copying it. ``step_by_name`` imports a step's module when it is first needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class StepSpec:
    name: str
    target: str
    """``module:Class``, relative to this package."""
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


@cache
def step_by_name(name: str) -> Any:
    """The step object for ``name`` (its module imported on first use); KeyError for an unknown name."""
    spec = next((s for s in REGISTRY if s.name == name), None)
    if spec is None:
        raise KeyError(name)
    module_name, _, cls_name = spec.target.partition(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, cls_name)()
