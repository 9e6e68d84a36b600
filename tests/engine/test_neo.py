"""The Neo compile stage against the sandbox over real HTTP: concurrent jobs, one poller, the choice."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ncf_tui.engine.errors import Cancelled
from ncf_tui.engine.neo import (
    Candidate,
    Job,
    NoVariantCompiled,
    _Counter,
    _create,
    _poll,
    compile_step,
    job_name,
    rank_key,
)
from ncf_tui.engine.variants import Variant
from ncf_tui.sandbox.server import Sandbox

from .aws_kit import Recorder, aws_for, candidates_from, compile_config_for, run_jobs, s3_exists


@pytest.fixture(scope="module")
def candidates(measured_variants: dict[str, Variant], tmp_path_factory: pytest.TempPathFactory) -> list[Candidate]:
    return candidates_from(measured_variants, tmp_path_factory.mktemp("archives"))


def test_every_variant_compiles_but_the_rejected_original(sandbox: Sandbox, candidates: list[Candidate]) -> None:
    rec = Recorder()
    result = compile_step(aws_for(sandbox), candidates, compile_config_for(sandbox), "20261130-000000-aaaa", rec)
    statuses = {n: j.status for n, j in result.jobs.items()}
    assert statuses == {n: "COMPLETED" for n in ("basic", "relu", "mlp", "full_manual_norm")}
    not_submitted = [e for e in rec.of("variant") if e.status == "not-submitted"]
    assert [e.name for e in not_submitted] == ["original"]
    assert "aten::linalg_vector_norm" in not_submitted[0].failure_reason
    assert result.chosen == "full_manual_norm"
    chosen = [e for e in rec.of("variant") if e.status == "chosen"]
    assert len(chosen) == 1 and "most faithful" in chosen[0].message
    assert not result.neo_model_s3_uri.startswith("s3://")
    # NEO_MODEL_S3_URI is the folder of the Neo output (the seed's bucket/prefix); Neo's archive and the
    # engine's sidecar lie in it, each its own object
    assert result.neo_model_s3_uri.endswith("/compilation-output/ncf-20261130-000000-aaaa-full-manual-norm")
    assert s3_exists(sandbox, result.neo_model_s3_uri + "/model-ml_c5.tar.gz")
    job = result.jobs["full_manual_norm"]
    assert job.sidecar_uri == f"s3://{result.neo_model_s3_uri}/ncf-model.json" and job.model_file == "model.pth"
    assert s3_exists(sandbox, job.sidecar_uri.removeprefix("s3://"))
    assert len(run_jobs(sandbox, "20261130-000000-aaaa")) == 4
    # Every job moved through the states the contract lists, in order, and each change was one event.
    basic = [e.status for e in rec.of("variant") if e.name == "basic" and e.job_name]
    assert basic[0] == "STARTING" and basic[-1] == "COMPLETED" and len(basic) == len(dict.fromkeys(basic))


def test_forcing_original_fails_with_neos_reason(sandbox: Sandbox, candidates: list[Candidate]) -> None:
    rec = Recorder()
    cfg = compile_config_for(sandbox, force=frozenset({"original"}))
    result = compile_step(aws_for(sandbox), candidates, cfg, "20261130-000000-bbbb", rec)
    original = result.jobs["original"]
    assert original.status == "FAILED" and original.failure_reason is not None
    assert "The following operators are not implemented: ['aten::linalg_vector_norm']" in original.failure_reason
    failed = [e for e in rec.of("variant") if e.name == "original" and e.status == "FAILED"]
    assert failed and failed[0].failure_reason == original.failure_reason
    assert result.chosen == "full_manual_norm"


def test_a_job_whose_input_is_missing_fails_with_the_reason(sandbox: Sandbox) -> None:
    aws = aws_for(sandbox)
    cfg = compile_config_for(sandbox)
    name = job_name("20261130-000000-cccc", "basic")
    job = Job(
        variant="basic",
        job_name=name,
        input_uri=f"s3://{cfg.bucket}/{cfg.prefix}/nowhere/model.tar.gz",
        output_uri=f"s3://{cfg.bucket}/{cfg.prefix}/compilation-output/{name}/",
    )
    calls = _Counter()
    _create(aws, Candidate("basic", "unused", True), job, cfg, calls)
    job.status = "STARTING"
    rec = Recorder()
    _poll(aws, {"basic": job}, cfg, "20261130-000000-cccc", rec, calls, None, lambda: None)
    assert job.status == "FAILED" and job.failure_reason is not None
    assert "S3 object does not exist" in job.failure_reason


def test_nothing_compiled_is_exit_4(sandbox: Sandbox, candidates: list[Candidate]) -> None:
    only_original = [c for c in candidates if c.name == "original"]
    with pytest.raises(NoVariantCompiled, match="no variant passed the Neo preflight") as info:
        compile_step(aws_for(sandbox), only_original, compile_config_for(sandbox), "20261130-000000-dddd", Recorder())
    assert int(info.value.exit_code) == 4
    cfg = compile_config_for(sandbox, force=frozenset({"original"}))
    with pytest.raises(NoVariantCompiled, match="original: ClientError"):
        compile_step(aws_for(sandbox), only_original, cfg, "20261130-000000-eeee", Recorder())


def test_throttling_scenario_still_completes(sandbox: Sandbox, candidates: list[Candidate]) -> None:
    sandbox.reset("throttling")
    result = compile_step(aws_for(sandbox), candidates, compile_config_for(sandbox), "20261130-000000-ffff", Recorder())
    assert result.chosen == "full_manual_norm"
    assert sandbox.fault_counts["throttled"] > 0, "the scenario must really have throttled some calls"


def test_cancel_stops_the_jobs_it_started(sandbox: Sandbox, candidates: list[Candidate]) -> None:
    sandbox.neo.seconds = 30
    cancel = threading.Event()
    rec = Recorder()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            compile_step(
                aws_for(sandbox), candidates, compile_config_for(sandbox), "20261130-000000-gggg", rec, cancel=cancel
            )
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    rec.wait_for(lambda e: getattr(e, "status", "") == "INPROGRESS")
    cancel.set()
    t.join(30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)
    statuses = {j["CompilationJobStatus"] for j in run_jobs(sandbox, "20261130-000000-gggg")}
    assert statuses <= {"STOPPING", "STOPPED"}, statuses
    assert len([e for e in rec.of("variant") if e.status == "STOPPING"]) == 4


def test_known_jobs_are_reattached_not_created_again(sandbox: Sandbox, candidates: list[Candidate]) -> None:
    run_id = "20261130-000000-hhhh"
    first = compile_step(aws_for(sandbox), candidates, compile_config_for(sandbox), run_id, Recorder())
    rec = Recorder()
    again = compile_step(
        aws_for(sandbox),
        candidates,
        compile_config_for(sandbox),
        run_id,
        rec,
        known_jobs={"basic": Job(**{**first.jobs["basic"].__dict__, "status": "INPROGRESS"})},
    )
    assert len(run_jobs(sandbox, run_id)) == 4, "no job may be launched twice"
    assert {e.message for e in rec.of("variant") if e.job_name} >= {"re-attached to the running job"}
    assert again.chosen == first.chosen and again.neo_model_s3_uri == first.neo_model_s3_uri


def test_uploads_are_skipped_when_the_same_bytes_are_there(sandbox: Sandbox, candidates: list[Candidate]) -> None:
    run_id = "20261130-000000-iiii"
    compile_step(aws_for(sandbox), candidates, compile_config_for(sandbox), run_id, Recorder())
    # Same run id (a resume after the jobs vanished): the archives are already in S3 with their sha256.
    for job in run_jobs(sandbox, run_id):
        sandbox.client("sagemaker").delete_compilation_job(CompilationJobName=job["CompilationJobName"])
    again = compile_step(aws_for(sandbox), candidates, compile_config_for(sandbox), run_id, Recorder())
    assert sorted(again.skipped_uploads) == ["basic", "full_manual_norm", "mlp", "relu"]


def test_job_names_and_ranking() -> None:
    assert job_name("20261130-134501-49fb", "full_manual_norm") == "ncf-20261130-134501-49fb-full-manual-norm"
    assert len(job_name("20261130-134501-49fb", "full_manual_norm")) <= 63
    a = Candidate("relu", "", True, fidelity={"top10_overlap": 0.9, "max_abs_diff": 0.01})
    b = Candidate("basic", "", True, fidelity={"top10_overlap": 0.9, "max_abs_diff": 0.01})
    c = Candidate("mlp", "", True, fidelity={"top10_overlap": 0.95, "max_abs_diff": 0.5})
    assert [x.name for x in sorted([a, b, c], key=rank_key)] == ["mlp", "basic", "relu"]


def test_candidates_keep_their_archives(candidates: list[Candidate]) -> None:
    assert all(Path(c.archive).is_file() for c in candidates)
