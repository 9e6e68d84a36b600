"""Run the WSGI app under gunicorn: a pre-fork master with one model per worker process.

gunicorn is embedded (BaseApplication) rather than launched as a CLI so that `serve.py serve` is the one
entry point SageMaker, `docker run IMAGE serve` and the tests all use.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from .app import InferenceApp, ModelHolder
from .model import Sidecar


@dataclass(frozen=True)
class ServeOptions:
    model_dir: Path
    host: str
    port: int
    workers: int
    threads: int
    torch_threads: int
    max_body: int
    max_pairs: int
    graceful_timeout: int
    access_log: bool


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: ServeOptions, sidecar: Sidecar, runtime: str) -> None:
        self.options = options
        self.sidecar = sidecar
        self.runtime = runtime
        super().__init__()

    def load_config(self) -> None:
        o = self.options
        settings: dict[str, Any] = {
            "bind": [f"{o.host}:{o.port}"],
            "workers": o.workers,
            # gthread: keep-alive connections, and /ping is answered by a free thread while another
            # thread of the same worker is busy in a long top-k forward (torch releases the GIL).
            "worker_class": "gthread",
            "threads": o.threads,
            "timeout": 60,
            "graceful_timeout": o.graceful_timeout,
            "keepalive": 5,
            "accesslog": None,  # the app writes structured access lines itself
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "ncf-serve",
            # No control socket: it would live in $HOME and collide between servers on one host.
            "control_socket_disable": True,
            "worker_exit": _worker_exit,
        }
        shm = Path("/dev/shm")  # noqa: S108 - gunicorn's advice for containers, not a temp file of ours
        if shm.is_dir():
            settings["worker_tmp_dir"] = str(shm)  # heartbeat file off the (possibly slow) overlay fs
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> InferenceApp:
        """Runs in each worker after the fork: torch is first imported here, never in the master."""
        o = self.options
        # torch's import holds the GIL and the import lock for a second or more; done here, before the
        # worker accepts connections, so /ping stays fast while the model itself loads in the background.
        import torch  # noqa: F401

        holder = ModelHolder(o.model_dir, self.sidecar, self.runtime, o.torch_threads)
        holder.start()
        return InferenceApp(holder, max_body=o.max_body, max_pairs=o.max_pairs, access_log=o.access_log)


def _worker_exit(_server: Any, worker: Any) -> None:
    """A worker stopped while its model still loads exits at once.

    Letting the interpreter finalise under a thread that is inside torch aborts the process
    (`terminate called without an active exception`), which reads like a crash in the log.
    """
    app = getattr(worker, "wsgi", None)
    if isinstance(app, InferenceApp) and app.holder.scorer is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def run(options: ServeOptions, sidecar: Sidecar, runtime: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(options.torch_threads))
    _Gunicorn(options, sidecar, runtime).run()
