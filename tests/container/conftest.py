"""Fixtures for the container tests: model directories packaged by the engine, and real server processes."""

from __future__ import annotations

import signal
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncf_tui.engine.artifact import extract_archive

from .container_kit import CONTAINER, SERVED_VARIANTS, Server, start_server, wait_healthy

sys.path.insert(0, str(CONTAINER))  # the server's `ncf_serve` (and `serve`), importable as in the image


@pytest.fixture(scope="session")
def model_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`model.tar.gz` for every served variant, made once per session by the engine's packaging."""
    from ncf_tui.engine.variants import export_variants

    out = tmp_path_factory.mktemp("variants")
    return export_variants(None, out_dir=out, names=SERVED_VARIANTS)


@pytest.fixture(scope="session")
def model_dirs(model_archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each archive unpacked as SageMaker does into /opt/ml/model."""
    dirs = {}
    for name, archive in model_archives.items():
        target = tmp_path_factory.mktemp(f"model-{name}")
        with tarfile.open(archive) as tar:
            extract_archive(tar, target)
        dirs[name] = target
    return dirs


@pytest.fixture(scope="module")
def servers(model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """One server per variant, started together so their start-ups overlap."""
    logs = tmp_path_factory.mktemp("server-logs")
    started = {name: start_server(d, logs / f"{name}.log", wait=False) for name, d in model_dirs.items()}
    try:
        for server in started.values():
            wait_healthy(server)
        yield started
    finally:
        for server in started.values():
            server.process.send_signal(signal.SIGTERM)  # all at once: their graceful exits overlap
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def server(servers: dict[str, Server]) -> Server:
    """The variant the wizard usually chooses, for the endpoint-by-endpoint tests."""
    return servers["full_manual_norm"]
