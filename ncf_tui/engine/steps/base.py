"""What every step of a run is: one object with a name, a typed result and a ``run``.

A step never saves, times or skips itself: ``Pipeline`` does that once for every step (emit ``started``,
run, store ``result.to_state()`` under the step's name, emit ``done``; or emit ``skipped`` when the run
state already holds a result that ``reusable`` accepts). A step reads earlier steps' results through
``StepContext.result(name)``, typed, never as dicts.

This module imports nothing heavy (no torch, no boto3, no sagemaker): the CLI and the TUI import it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

if TYPE_CHECKING:
    from ..aws import Aws
    from ..events import Emit
    from ..state import RunState
    from . import StepSpec


class StepResult(Protocol):
    """A step's result as it goes into and comes back out of the run state file (JSON-safe dicts)."""

    def to_state(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Self: ...


R = TypeVar("R", bound=StepResult)


@dataclass
class StepContext:
    """What a step may use. Built once per run by ``Pipeline``; steps never reach past it."""

    options: Any
    """The run's ``RunOptions`` (typed as Any here so this module needs no import of the pipeline)."""
    emit: Emit
    state: RunState
    save: Callable[[], None]
    aws: Callable[[], Aws]
    """The AWS target, made on first use (raises BadInputError when the run has none)."""
    cancel: threading.Event
    results: dict[str, StepResult] = field(default_factory=dict)
    """Results of the steps finished (or reused) in this process, by step name."""
    extras: dict[str, Any] = field(default_factory=dict)
    """What a front end hands to a step that the options do not carry (e.g. ``compile_config``)."""
    registry: tuple[StepSpec, ...] | None = None
    wanted: tuple[str, ...] = ()
    """The steps this run runs, in order (what ``Pipeline.run`` was asked for), so a step such as the account
    preflight can ask for the inputs of exactly those."""
    """The steps of this run (None: the package's ``REGISTRY``), so ``result`` finds a step by name."""

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def result(self, name: str) -> Any:
        """The typed result of an earlier step: from this run, else from the run state; KeyError if neither."""
        if name in self.results:
            return self.results[name]
        from . import saved_result

        value = saved_result(self.state, name, self.registry)
        if value is None:
            raise KeyError(name)
        self.results[name] = value
        return value

    def saved(self, name: str) -> Any:
        """Like ``result``, but None when the step has not finished."""
        try:
            return self.result(name)
        except KeyError:
            return None

    def partial(self, name: str) -> dict[str, Any]:
        """What a step saved while it ran (job names, a build id), so a resumed run re-attaches to them."""
        entry = self.state.steps.get(name)
        return dict(entry) if isinstance(entry, dict) and entry.get("status") != "done" else {}

    def save_partial(self, name: str, data: Mapping[str, Any], status: str = "running") -> None:
        """Record progress inside a running step (status ``running``, or how it ended: ``failed``,
        ``stopped``) and write the state file at once."""
        self.state.steps[name] = {"status": status, **data}
        self.save()


class Step(ABC, Generic[R]):
    """One step of a run. Subclasses set the class variables and implement ``run``."""

    name: ClassVar[str]
    title: ClassVar[str]
    """What the TUI and the human output call it."""
    result_type: ClassVar[type[Any]]
    needs_aws: ClassVar[bool] = True
    opt_in: ClassVar[bool] = False
    """Runs only when asked (``--deploy``-style); a plain run ends at the last step that is not opt-in."""
    needs: ClassVar[tuple[str, ...]] = ()
    """The inputs (settings names such as ``bucket``, ``sagemaker_role``) this step cannot run without, so
    a preflight can name every missing one before any work starts."""

    def reusable(self, ctx: StepContext, saved: R) -> bool:
        """Whether a result saved by an earlier run may stand (e.g. its files still exist)."""
        return True

    @abstractmethod
    def run(self, ctx: StepContext) -> R:
        """Do the step's work and return its result; raise an NcfError subclass to fail the run."""
