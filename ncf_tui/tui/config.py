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

DEFAULT_OUTPUT_DIR = Path("output/models/pruned")


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

    @property
    def mode(self) -> str:
        return "sandbox" if self.sandbox else "aws"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AppConfig:
        return cls(
            sandbox=bool(args.sandbox),
            scenario=args.sandbox_scenario,
            checkpoint=args.checkpoint,
            output_dir=args.output_dir or DEFAULT_OUTPUT_DIR,
            state_dir=args.state.parent if getattr(args, "state", None) else None,
            profile=args.profile,
            region=args.region,
            endpoint_url=args.endpoint_url,
            release=args.tvm_release,
            checklist=bool(args.checklist),
            force=tuple(args.force or ()),
            key_map=getattr(args, "key_map", None),
            gmf_norm=getattr(args, "gmf_norm", None),
            output=getattr(args, "output", None),
        )


def frozen_clock(value: float = 1000.0) -> Callable[[], float]:
    """A clock that never moves (snapshots)."""
    return lambda: value


def wall_clock() -> float:
    return time.monotonic()
