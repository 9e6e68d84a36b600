"""An embedded local AWS (moto + real Neo, CodeBuild and IAM simulation) for --sandbox and the tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Sandbox

__all__ = ["Sandbox"]


def __getattr__(name: str) -> Any:
    # Lazy: `import ncf_tui.sandbox` must not pull in moto and boto3 for a CLI that never starts it.
    if name == "Sandbox":
        from .server import Sandbox

        return Sandbox
    raise AttributeError(name)
