"""Headless mode on a real terminal (a pseudo-terminal): the live per-variant table while Neo compiles."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path


def test_live_compile_table_on_a_terminal(tmp_path: Path) -> None:
    main, secondary = pty.openpty()
    env = {**os.environ, "NCF_TUI_STATE_DIR": str(tmp_path / "s"), "NCF_SANDBOX_NEO_SECONDS": "2",
           "COLUMNS": "110", "LINES": "40", "TERM": "xterm-256color"}  # fmt: skip
    env.pop("CI", None)  # CI=true turns the live table off on purpose; this test is about the terminal
    proc = subprocess.Popen(
        [sys.executable, "-m", "ncf_tui.cli", "--headless", "--sandbox", "--until", "compile",
         "--force", "original", "--output-dir", str(tmp_path / "o")],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env, close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(main)
    assert proc.wait(30) == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    # The table's rows: a mark, the variant, its Neo status, and the failure reason under the failed row.
    assert re.search(r"★\s+full_manual_norm\s+completed", screen), screen[-2000:]
    assert re.search(r"✘\s+original\s+failed", screen)
    assert "└ ClientError: InputConfiguration: TVM cannot convert the PyTorch model" in screen
    assert "└ chosen: most faithful variant that compiled" in screen
    assert "Traceback" not in screen
