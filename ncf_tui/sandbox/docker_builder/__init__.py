"""The sandbox's `docker`: a Docker-CLI look-alike for builds where no Docker engine answers.

CodeBuild builds in the sandbox run `buildspec.yml`, whose `docker` commands land here through a
`docker` shim on PATH (`python -m ncf_tui.sandbox.docker_builder "$@"`). It implements exactly the
commands of docs/CONTRACTS.md with Docker's wording and exit codes: `login` (token checked with ECR),
`build` (Dockerfile parsed, COPY sources checked through `.dockerignore`, the image's server
smoke-tested natively, layers recorded as reproducible tars), `tag`, `push` (blobs uploaded through
ECR's layer API, manifest registered with `put_image`) and `image inspect`, plus `images`.
State between commands lives in `$NCF_SANDBOX_DOCKER_STATE`.

Public API: `main(argv) -> int` (exit code); the module runs as `python -m ncf_tui.sandbox.docker_builder`.
"""

from __future__ import annotations

from .cli import BANNER, NO_DAEMON, main
from .state import STATE_ENV

__all__ = ["BANNER", "NO_DAEMON", "STATE_ENV", "main"]
