"""Small helpers for engine tests that talk to the sandbox over real HTTP."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.events import Event
from ncf_tui.engine.neo import CompileConfig

_AWS: dict[str, Aws] = {}


def aws_for(sandbox: Any) -> Aws:
    """One Aws per sandbox server: its credentials survive resets, and botocore's data loads once (~1 s)."""
    if sandbox.endpoint_url not in _AWS:
        _AWS[sandbox.endpoint_url] = Aws(
            AwsTarget(region=sandbox.region, endpoint_url=sandbox.endpoint_url, credentials=sandbox.credentials)
        )
    return _AWS[sandbox.endpoint_url]


def compile_config_for(sandbox: Any, **kw: Any) -> CompileConfig:
    d = sandbox.project_defaults()
    return CompileConfig(bucket=d["bucket"], prefix=d["prefix"], role_arn=d["sagemakerRoleArn"], poll_min=0.2, **kw)


class Recorder:
    """An Emit that keeps every event (thread-safe) and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: str) -> list[Any]:
        with self._cond:
            return [e for e in self.events if e.kind == kind]

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: any(predicate(e) for e in self.events), timeout=timeout):
                raise AssertionError(f"no matching event within {timeout} s")


def run_jobs(sandbox: Any, run_id: str) -> list[dict[str, Any]]:
    sm = sandbox.client("sagemaker")
    jobs: list[dict[str, Any]] = sm.list_compilation_jobs(NameContains=f"ncf-{run_id}-", MaxResults=100)[
        "CompilationJobSummaries"
    ]
    return jobs


def s3_exists(sandbox: Any, uri_without_scheme: str) -> bool:
    bucket, _, key = uri_without_scheme.partition("/")
    try:
        sandbox.client("s3").head_object(Bucket=bucket, Key=key)
    except Exception:
        return False
    return True


def candidates_from(variants: dict[str, Any], out_dir: Path) -> list[Any]:
    """Compile candidates (as the pipeline builds them) from measured variants packaged into out_dir."""
    from ncf_tui.engine.neo import Candidate
    from ncf_tui.engine.variants import package

    out = []
    for name, v in variants.items():
        archive = package(v, _arch(v), out_dir / name)
        out.append(
            Candidate(
                name=name,
                archive=str(archive),
                accepted=v.preflight.accepted,
                preflight_message=v.preflight.message,
                fidelity=v.fidelity.as_dict(),
            )
        )
    return out


def _arch(v: Any) -> Any:
    from ncf_tui.engine.checkpoint import load_checkpoint
    from ncf_tui.engine.sample import sample_checkpoint_path

    return load_checkpoint(sample_checkpoint_path()).architecture
