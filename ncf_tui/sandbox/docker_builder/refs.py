"""Image references (`name[:tag]`, `registry/repo:tag`) and ECR registry host names.

Docker's reference grammar, reduced to what the builder needs: lowercase path components, an optional
registry host (a first component with a `.` or `:`, or `localhost`), an optional tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_ECR_HOST = re.compile(r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")


class BadReference(ValueError):
    """An image reference Docker would refuse; the message is Docker's."""


@dataclass(frozen=True)
class Reference:
    """A parsed reference; `registry` is empty for Docker Hub names."""

    registry: str
    repository: str
    tag: str

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def canonical(self) -> str:
        """The fully qualified form BuildKit prints (`docker.io/library/ncf:latest`)."""
        if self.registry:
            return str(self)
        repo = self.repository if "/" in self.repository else f"library/{self.repository}"
        return f"docker.io/{repo}:{self.tag}"


def parse_reference(text: str) -> Reference:
    """Parse `text`; a missing tag means `latest`, as in Docker."""
    if not text:
        raise BadReference("invalid reference format")
    name, tag = text, "latest"
    if "@" in text:
        raise BadReference("the sandbox builder does not handle digest references")
    head, sep, last = text.rpartition(":")
    if sep and "/" not in last:
        name, tag = head, last
        if not _TAG.fullmatch(tag):
            raise BadReference("invalid reference format")
    parts = name.split("/")
    registry = ""
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, parts = parts[0], parts[1:]
    for part in parts:
        if not re.fullmatch(_COMPONENT, part):
            if part.lower() != part and re.fullmatch(_COMPONENT, part.lower()):
                raise BadReference(f"invalid reference format: repository name ({'/'.join(parts)}) must be lowercase")
            raise BadReference("invalid reference format")
    return Reference(registry, "/".join(parts), tag)


def ecr_registry(host: str) -> tuple[str, str] | None:
    """(account id, region) of an ECR registry host name, or None for any other registry."""
    match = _ECR_HOST.fullmatch(host)
    return (match.group("account"), match.group("region")) if match else None


def canonical_base(image: str) -> str:
    """A FROM image as BuildKit names it (`python:3.11-slim` -> `docker.io/library/python:3.11-slim`)."""
    try:
        return parse_reference(image).canonical
    except BadReference:
        return image
