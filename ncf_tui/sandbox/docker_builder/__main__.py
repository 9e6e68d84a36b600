"""`python -m ncf_tui.sandbox.docker_builder <docker args>`: what the sandbox's `docker` shim runs."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
