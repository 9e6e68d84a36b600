"""Names the front ends share with the engine, in a module that imports nothing (no torch).

The TUI's compile screen lays out one row per variant before anything is traced, and its checklist lists the
checks in the engine's order; they read the names from here instead of keeping their own copies.
"""

from __future__ import annotations

VARIANT_NAMES: tuple[str, ...] = ("original", "basic", "relu", "mlp", "full_manual_norm")
"""Every variant of a checkpoint: the reference (``original``) first, then four simplified ones, simplest
first (ties in fidelity go to the earlier one)."""

CHECK_IDS: tuple[str, ...] = (
    "credentials", "neo-model", "build", "image", "neo-compile", "service-role", "project", "ecr-repository",
    "build-image", "endpoint",
)  # fmt: skip
"""Every troubleshooting check, in the order a report lists them (``engine.checklist.CHECKS`` has one spec
for each, in this order)."""
