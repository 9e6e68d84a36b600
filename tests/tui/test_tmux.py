"""``ncf-tui --sandbox`` for real, in tmux, walked to the image in ECR the way a person would.

A real terminal (tmux's), the installed entry point, keys sent one at a time and the screen read back with
``capture-pane``: what this checks is what a person sees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

WIDTH, HEIGHT = 120, 35


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name
        self.exited = f"{name}-exited"
        """The tmux channel the pane signals once ``ncf-tui`` has exited (``tmux wait-for``)."""

    def screen(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.3)

    def wait_for_exit(self, timeout: float = 600) -> str:
        """Until the process has exited (the pane signals the channel, tmux wakes us); its last screen."""
        subprocess.run(["tmux", "wait-for", self.exited], check=True, timeout=timeout)
        return self.screen()

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            if "Traceback" in shown:
                break
            time.sleep(0.25)
        raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen()}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    entry = Path(sys.executable).with_name("ncf-tui")
    assert entry.exists(), "install the project (pip install -e .) so the ncf-tui entry point exists"
    name = f"ncf-tui-test-{os.getpid()}"
    env = {
        "NCF_TUI_STATE_DIR": str(tmp_path / "state"),
        "NCF_TUI_CONFIG_DIR": str(tmp_path / "config"),
        "NCF_SANDBOX_NEO_SECONDS": "1",
        "TERM": "xterm-256color",
    }
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    # the pane stays open after the app exits so its last screen and exit code can be read
    # a short pause first: tmux sizes the new window just after starting its shell
    # then it signals the channel the test waits on (tmux remembers a signal nobody waits for yet)
    command = (
        f"cd {tmp_path} && sleep 1 && env {exports} {entry} --sandbox --output-dir out; echo EXIT=$?; "
        f"tmux wait-for -S {name}-exited; sleep 30"
    )
    subprocess.run(["tmux", "new", "-d", "-s", name, "-x", str(WIDTH), "-y", str(HEIGHT), command], check=True)
    try:
        yield Tmux(name)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_a_person_walks_the_sandbox_to_an_image(tmux: Tmux) -> None:
    shown = tmux.wait_for("connected as", 30)
    assert "SANDBOX" in shown.splitlines()[0]  # the header says so on every screen
    assert "123456789012" in shown
    tmux.keys("Enter")
    shown = tmux.wait_for("is an NCF checkpoint", 60)
    assert "sample_ncf_pruned.pt" in shown and "Sparsity per layer" in shown
    tmux.keys("Enter")
    shown = tmux.wait_for("of 5 pass", 120)
    assert "linalg_vector_norm" in shown  # why the original is rejected, under its row
    assert "SANDBOX" in shown.splitlines()[0]
    tmux.keys("Enter")
    shown = tmux.wait_for("chosen:", 120)
    assert "★ full_manual_norm" in shown and "NEO_MODEL_S3_URI" in shown
    tmux.keys("Enter")
    tmux.wait_for("local checks pass", 20)
    tmux.keys("Enter")
    tmux.wait_for("valid in this account", 60)
    tmux.keys("Enter")
    shown = tmux.wait_for("permissions allowed", 60)
    assert "ecr:PutImage" in shown
    tmux.keys("Enter")
    shown = tmux.wait_for("the image is in ECR", 180)
    assert "ncf-recommender:latest" in shown and "sha256:" in shown
    assert "SANDBOX" in shown.splitlines()[0]
    tmux.keys("F3")  # enter would go on to the Deploy screen's question; the checklist is f3 from any screen
    tmux.wait_for("▸Checklist", 10)
    tmux.keys("C-q")
    shown = tmux.wait_for_exit()  # closing the sandbox takes a while on a busy machine: wait for the exit itself
    assert "EXIT=0" in shown, shown
