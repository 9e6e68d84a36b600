"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
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

# ---- isolation: no test may read or write the real user's config, run state or AWS account --------
# Every variable the product reads from the environment that a developer (or CI) may have exported: the
# product's own (NCF_TUI_*, NCF_SANDBOX_*) and the AWS SDK's (AWS_*: credentials, profile, region,
# endpoints, config files). Inherited values are removed; the few the tests need are set to paths of
# their own. pytest_configure does it for the whole process (session fixtures and the subprocesses they
# start see it); the autouse fixture gives every test its own config and state folders on top of that.
_ISOLATED_PREFIXES = ("NCF_TUI_", "NCF_SANDBOX_", "AWS_")


def _isolated_environment(root: Path) -> dict[str, str]:
    return {
        "NCF_TUI_CONFIG_DIR": str(root / "config"),
        "NCF_TUI_STATE_DIR": str(root / "state"),
        # Generated samples are a cache: one folder for the session, never the user's data folder.
        "NCF_TUI_DATA_DIR": str(root / "data"),
        # So are the Neo image lookups (the sagemaker SDK's table, seconds of import): one for the session.
        "NCF_TUI_CACHE_DIR": str(root / "cache"),
        # The fallback builder for every sandbox build (fast, no images); tests/sandbox/test_real_docker.py
        # asks for the real engine itself, once per session.
        "NCF_SANDBOX_DOCKER": "fallback",
        # No ~/.aws: no profile, region or credentials leak in from the developer's files.
        "AWS_CONFIG_FILE": str(root / "aws-config-none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "aws-credentials-none"),
        # No instance metadata service either: a lookup that finds no credentials fails at once instead
        # of waiting for 169.254.169.254 to time out (and never reaches a real instance's role).
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _inherited(environ: Mapping[str, str]) -> list[str]:
    return [name for name in environ if name.startswith(_ISOLATED_PREFIXES)]


def pytest_configure(config: pytest.Config) -> None:
    import os
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="ncf-tui-tests-"))
    for name in _inherited(os.environ):
        del os.environ[name]
    os.environ.update(_isolated_environment(root))


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test's own config and state folders (not its tmp_path, which stays the test's alone)."""
    import os

    root = tmp_path_factory.mktemp("env")
    for name in _inherited(os.environ):
        monkeypatch.delenv(name)
    caches = {name: os.environ[name] for name in ("NCF_TUI_DATA_DIR", "NCF_TUI_CACHE_DIR") if name in os.environ}
    for name, value in _isolated_environment(root).items():
        monkeypatch.setenv(name, value)
    for name, value in caches.items():  # keep the session's sample and image-lookup caches
        monkeypatch.setenv(name, value)
    return root
