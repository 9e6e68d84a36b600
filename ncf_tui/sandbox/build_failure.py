"""The outcome that fails a sandbox CodeBuild build, shared by the build runner and its log sink."""

from __future__ import annotations


class BuildFailure(Exception):
    """A phase outcome that fails the build: (statusCode, message) as CodeBuild reports them."""

    def __init__(self, status_code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
