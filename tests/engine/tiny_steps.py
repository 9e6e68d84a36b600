"""Two steps that are nothing but a module each: what adding a step to a registry takes (tests only).

``TallyStep`` appends one line to ``tally.log`` in the run's output folder each time it really runs, so a test
reads from the disk whether it ran or was reused; ``ShoutStep`` is opt-in and reads the tally's typed result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncf_tui.engine.steps.base import Step, StepContext


@dataclass
class TallyResult:
    lines: int

    def to_state(self) -> dict[str, Any]:
        return {"lines": self.lines}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> TallyResult:
        return cls(int(data["lines"]))


def _append(ctx: StepContext, name: str) -> int:
    log = Path(ctx.options.output_dir) / "tally.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:
        f.write(f"{name} {ctx.run_id}\n")
    return len(log.read_text("utf-8").splitlines())


class TallyStep(Step[TallyResult]):
    name = "tally"
    title = "Tally"
    result_type = TallyResult
    needs_aws = False

    def run(self, ctx: StepContext) -> TallyResult:
        return TallyResult(_append(ctx, self.name))


@dataclass
class ShoutResult:
    message: str

    def to_state(self) -> dict[str, Any]:
        return {"message": self.message}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> ShoutResult:
        return cls(str(data["message"]))


class ShoutStep(Step[ShoutResult]):
    name = "shout"
    title = "Shout"
    result_type = ShoutResult
    needs_aws = False
    opt_in = True

    def run(self, ctx: StepContext) -> ShoutResult:
        tally: TallyResult = ctx.result("tally")
        _append(ctx, self.name)
        return ShoutResult(f"the tally stood at {tally.lines}")


class CloseStep(Step[TallyResult]):
    name = "close"
    title = "Close"
    result_type = TallyResult
    needs_aws = False

    def run(self, ctx: StepContext) -> TallyResult:
        return TallyResult(_append(ctx, self.name))
