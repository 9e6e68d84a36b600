"""The CodeBuild source: ``container/`` and ``buildspec.yml``, shipped inside the wheel as package data.

Both stay at the repository's root (the layout the user knows); this package holds two relative symlinks to
them, which setuptools follows when it builds the wheel, so an installed ncf-tui carries real copies. (A
``package-dir`` mapping cannot express it: it maps one package onto one folder, and these are a folder plus
a file at the root, which has no ``__init__.py`` of its own.) Read them through :func:`source_root` only.
"""

from __future__ import annotations

import atexit
import functools
from contextlib import ExitStack
from importlib.resources import as_file, files
from pathlib import Path

ITEMS = ("container", "buildspec.yml")
"""What a build's source zip holds, at its root (as CodeBuild expects ``buildspec.yml``)."""

_extracted = ExitStack()
atexit.register(_extracted.close)


@functools.cache
def source_root() -> Path:
    """A folder holding :data:`ITEMS`: the installed package itself, or (an install that is not a plain
    folder, such as a zip) a temporary copy that lives until the process ends."""
    root = files(__name__)
    if isinstance(root, Path):
        return root
    return Path(_extracted.enter_context(as_file(root)))
