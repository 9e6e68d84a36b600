"""`.dockerignore` as Docker reads it, and the build context it leaves.

Docker's rules (moby `patternmatcher`: Go `filepath.Match` globs plus `**`, `!` re-includes, the last
matching pattern wins, a pattern that matches a directory excludes everything below it) come from
docker-py's `PatternMatcher`, imported lazily. `glob_to_regex` is kept for COPY sources with globs.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a Go `filepath.Match` pattern (with Docker's `**`) to an anchored regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    # `**/` matches zero or more whole directories.
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^"):
                    body = "!" + body[1:]
                body = body.replace("\\", "\\\\")
                out.append("[^/]" if not body else "[" + ("^" + body[1:] if body[0] == "!" else body) + "]")
                i = end
        elif char == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def has_glob(text: str) -> bool:
    """Whether a COPY source contains glob characters (Docker then matches instead of stat-ing)."""
    return any(c in text for c in "*?[")


class DockerIgnore:
    """The patterns of one `.dockerignore` file, matched by docker-py."""

    def __init__(self, lines: list[str]) -> None:
        from docker.utils.build import PatternMatcher

        patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        self._matcher = PatternMatcher(patterns)
        self.patterns = patterns

    @classmethod
    def load(cls, context: Path) -> DockerIgnore:
        path = context / ".dockerignore"
        if not path.is_file():
            return cls([])
        return cls(path.read_text(encoding="utf-8", errors="replace").splitlines())

    @property
    def has_exceptions(self) -> bool:
        """Whether any `!pattern` line can re-include a path below an excluded directory."""
        return any(p.startswith("!") for p in self.patterns)

    def excluded(self, rel: str) -> bool:
        """Whether context-relative path `rel` (posix) is left out of the build context."""
        return bool(self.patterns) and bool(self._matcher.matches(rel))


class BuildContext:
    """The build context directory seen through its `.dockerignore`."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.ignore = DockerIgnore.load(self.root)

    def clean(self, source: str) -> str:
        """A COPY source as a context-relative posix path; `..` cannot climb out (BuildKit clamps it)."""
        return posixpath.normpath("/" + source).lstrip("/")

    def lookup(self, rel: str) -> Path | None:
        """The host path of a context entry, or None if it is missing or excluded."""
        if rel == "":
            return self.root
        if self.ignore.excluded(rel):
            return None
        path = self.root / rel
        return path if (path.exists() or path.is_symlink()) else None

    def walk(self, rel: str) -> list[str]:
        """Context-relative paths of everything under directory `rel` that the context keeps, sorted."""
        base = self.root / rel if rel else self.root
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dir_rel = Path(dirpath).relative_to(self.root).as_posix()
            dir_rel = "" if dir_rel == "." else dir_rel
            if not self.ignore.has_exceptions:
                # Nothing can be re-included below an excluded directory: do not descend into it.
                dirnames[:] = [d for d in dirnames if not self.ignore.excluded(f"{dir_rel}/{d}" if dir_rel else d)]
            dirnames.sort()
            for name in sorted([*dirnames, *filenames]):
                child = f"{dir_rel}/{name}" if dir_rel else name
                if not self.ignore.excluded(child):
                    found.append(child)
        return sorted(found)

    def glob(self, pattern: str) -> list[str]:
        """Context paths a COPY glob matches (each path segment matched as Go's filepath.Match)."""
        regex = glob_to_regex(pattern)
        return [rel for rel in self.walk("") if regex.match(rel)]

    def size(self) -> int:
        """Bytes of regular files the context keeps (BuildKit prints this as `transferring context`)."""
        total = 0
        for rel in self.walk(""):
            path = self.root / rel
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        return total
