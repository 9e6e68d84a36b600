"""A run cancelled with the default "stop what you started" must still finish on --resume (engine level)."""

from __future__ import annotations

import threading

import pytest

from ncf_tui.engine.errors import Cancelled
from ncf_tui.engine.neo import Candidate, Job, compile_step
from ncf_tui.engine.variants import Variant
from ncf_tui.sandbox.server import Sandbox

from ..engine.aws_kit import Recorder, aws_for, candidates_from, compile_config_for, run_jobs


@pytest.fixture(scope="module")
def candidates(measured_variants: dict[str, Variant], tmp_path_factory: pytest.TempPathFactory) -> list[Candidate]:
    return candidates_from(measured_variants, tmp_path_factory.mktemp("archives"))


def test_jobs_stopped_by_a_cancel_are_compiled_again_on_resume(sandbox: Sandbox, candidates: list[Candidate]) -> None:
    """Without the fix, resume re-attached to the stopped jobs and ended "no variant compiled" (exit 4)."""
    run_id = "20261130-000000-stop"
    sandbox.neo.seconds = 30
    cancel = threading.Event()
    rec = Recorder()
    saved: dict[str, dict[str, Job]] = {}
    errors: list[BaseException] = []

    def run() -> None:
        try:
            compile_step(
                aws_for(sandbox),
                candidates,
                compile_config_for(sandbox),
                run_id,
                rec,
                cancel=cancel,
                on_jobs=lambda jobs: saved.update(jobs=jobs),
            )
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    rec.wait_for(lambda e: getattr(e, "status", "") == "INPROGRESS")
    cancel.set()
    t.join(60)
    assert errors and isinstance(errors[0], Cancelled)
    assert {j.status for j in saved["jobs"].values()} <= {"STOPPING", "STOPPED"}

    sandbox.neo.seconds = 0.6
    for round_ in (1, 2):  # a second resume finds the replacements and re-attaches: nothing runs twice
        again = Recorder()
        result = compile_step(
            aws_for(sandbox), candidates, compile_config_for(sandbox), run_id, again, known_jobs=saved["jobs"]
        )
        saved["jobs"] = result.jobs
        assert result.chosen == "full_manual_norm"
        assert {n: j.status for n, j in result.jobs.items()} == {
            n: "COMPLETED" for n in ("basic", "relu", "mlp", "full_manual_norm")
        }
        assert all(j.job_name.endswith("-r2") for j in result.jobs.values())
        jobs = run_jobs(sandbox, run_id)
        live = [j for j in jobs if j["CompilationJobStatus"] not in ("STOPPING", "STOPPED")]
        assert len(jobs) == 8 and len(live) == 4, f"round {round_}: one live job per variant"
        created = [e for e in again.of("variant") if e.message.startswith("Neo job created")]
        assert len(created) == (4 if round_ == 1 else 0)
