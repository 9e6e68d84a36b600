"""The run state file: what each finished step produced, so ``--resume`` redoes nothing and duplicates nothing.

One JSON file per run, written atomically (a temporary file in the same folder, fsync, rename), so a crash
never leaves half a file. A file that cannot be read is set aside (renamed ``*.corrupt-<time>``) and
reported, never crashed on and never silently overwritten. Nothing secret is ever written here: the state
holds names, paths, ids, statuses and figures only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import BadInputError

STATE_VERSION = 1
STATE_DIR_ENV = "NCF_TUI_STATE_DIR"


def default_state_dir() -> Path:
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_state_dir("ncf-tui"))


def new_run_id() -> str:
    """``YYYYMMDD-HHMMSS-xxxx``: sortable, readable in a job name, unique enough per account."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass
class RunState:
    run_id: str
    mode: str  # "aws" | "sandbox"
    checkpoint: str
    checkpoint_sha256: str = ""
    output_dir: str = ""
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    steps: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    version: int = STATE_VERSION

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r}, expected {STATE_VERSION}")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for required in ("run_id", "mode", "checkpoint"):
            if not isinstance(known.get(required), str):
                raise ValueError(f"missing {required}")
        if not isinstance(known.get("steps", {}), dict):
            raise ValueError("steps is not an object")
        return cls(**known)


class CorruptState(BadInputError):
    """A state file that cannot be read (it has been set aside)."""


_HELD: dict[str, int] = {}
"""Lock files this process holds, by path: flock is per open file, so a second open in-process would
otherwise refuse its own run."""


class StateLocked(BadInputError):
    """Another ncf-tui process holds this state file's lock: two runs on one state would interleave."""


class StateStore:
    """Reads and writes one run's state file; ``lock()`` makes this process its only user."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def lock(self) -> None:
        """Take the lock file beside the state (``fcntl.flock``, exclusive, never waiting); held until this
        process ends. Refuses with ``StateLocked`` (exit 2) while another process holds it."""
        if self._lock_fd is not None:
            return
        key = str(self.lock_path.resolve())
        if key in _HELD:  # this process holds it already (a resume after a new run in one session)
            self._lock_fd = _HELD[key]
            return
        try:
            import fcntl
        except ImportError:  # no flock on this platform: one run per state file is then the user's care
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise StateLocked(
                f"another ncf-tui run{' (pid ' + holder + ')' if holder else ''} is using the state {self.path}",
                hint="wait for it to finish, or give this run its own --state file",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = _HELD[key] = fd

    @classmethod
    def for_run(cls, run_id: str, state_dir: Path | None = None) -> StateStore:
        return cls((state_dir or default_state_dir()) / f"run-{run_id}.json")

    def load(self) -> RunState | None:
        """The saved state, None when there is no file; a corrupt file is set aside and reported."""
        if not self.path.exists():
            return None
        try:
            return RunState.from_dict(json.loads(self.path.read_text("utf-8")))
        except (ValueError, TypeError, UnicodeDecodeError, OSError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            try:
                self.path.replace(aside)
            except OSError:
                aside = self.path
            raise CorruptState(
                f"the run state {self.path} is unreadable ({str(exc)[:120]}); it was set aside as {aside.name}",
                hint="start a new run, or pass --state with another file",
            ) from None

    def save(self, state: RunState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                f.write(state.to_json())
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self.path)
        finally:
            tmp.unlink(missing_ok=True)


def latest_run(mode: str, state_dir: Path | None = None, *, unfinished: bool = False) -> StateStore | None:
    """The newest run state of this mode in the state folder (only unfinished ones with ``unfinished``);
    unreadable files are skipped here (loading one reports it). None when there is none."""
    folder = state_dir or default_state_dir()
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("run-*.json"), reverse=True):
        try:
            data = json.loads(path.read_text("utf-8"))
        except (ValueError, OSError):
            continue
        if isinstance(data, dict) and data.get("mode") == mode and not (unfinished and data.get("finished")):
            return StateStore(path)
    return None
