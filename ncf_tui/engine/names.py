"""Names the front ends share with the engine, in a module that imports nothing (no torch).

The TUI's compile screen lays out one row per variant before anything is traced; it reads the names from here
instead of keeping its own copy.
"""

from __future__ import annotations

VARIANT_NAMES: tuple[str, ...] = ("original", "basic", "relu", "mlp", "full_manual_norm")
"""Every variant of a checkpoint: the reference (``original``) first, then four simplified ones, simplest
first (ties in fidelity go to the earlier one)."""
