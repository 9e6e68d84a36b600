"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ncf_tui.sandbox.server import Sandbox


# ---- sandbox fixtures (owned by the sandbox; add other fixtures outside this block) ----------------
# One sandbox server per test session (moto's state is process-wide and starting it costs ~1 s);
# `sandbox` gives every test a freshly seeded healthy account on it (reset takes a few ms). A test
# that wants a fault calls `sandbox.reset("<scenario>")` itself.
SANDBOX_NEO_SECONDS = 0.6


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    from ncf_tui.sandbox.server import Sandbox

    with Sandbox(neo_seconds=SANDBOX_NEO_SECONDS) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    source_dir = sandbox_server.source_dir
    sandbox_server.reset("healthy")
    try:
        yield sandbox_server
    finally:
        sandbox_server.source_dir = source_dir
        sandbox_server.neo.seconds = SANDBOX_NEO_SECONDS


# ---- end of sandbox fixtures ----------------------------------------------------------------------


# ---- engine fixtures --------------------------------------------------------------------------------
from tests.engine.fixtures import measured_variants, sample_ckpt, sample_path, small_state_dict  # noqa: E402, F401


# ---- isolation: no test may read or write the real user's config or run state ----------------------
def pytest_configure(config: pytest.Config) -> None:
    import os
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="ncf-tui-tests-"))
    os.environ.setdefault("NCF_TUI_CONFIG_DIR", str(root / "config"))
    os.environ.setdefault("NCF_TUI_STATE_DIR", str(root / "state"))
    # The fallback builder for every sandbox build (fast, no images); tests/sandbox/test_real_docker.py
    # asks for the real engine itself, once per session.
    os.environ.setdefault("NCF_SANDBOX_DOCKER", "fallback")
    os.environ.setdefault("NCF_TUI_DATA_DIR", str(root / "data"))
