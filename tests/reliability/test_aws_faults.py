"""The faults a real AWS account has, each as a full headless run against a standalone sandbox process.

Each scenario is transient in AWS's own terms (a 5xx, ingestion lag, IAM propagation, a full quota) or a
documented answer (S3's 403 for a missing key without s3:ListBucket), so each run must finish with exit 0
and the build log it showed equal, line for line, to the CloudWatch stream. The sandbox prints its fault
counts on exit, which prove the fault really struck.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .kit import (
    NAMES,
    SETTINGS,
    Run,
    SandboxProcess,
    build_stream_lines,
    builds,
    free_port,
    parse,
    run_args,
    run_cli,
    run_env,
    run_jobs,
)
from .test_faults import STEPS, Account, assert_complete_and_exact, run_id_of

pytestmark = pytest.mark.slow


def warnings(run: Run, step: str) -> list[str]:
    return [e["message"] for e in run.of("step", name=step, status="warning")]


def test_lagging_logs_lose_and_repeat_nothing(tmp_path: Path) -> None:
    with SandboxProcess("logs-lag", free_port()) as sb:
        run = run_cli(run_args(sb, tmp_path), run_env(sb, tmp_path))
        assert_complete_and_exact(run, sb)
        assert not warnings(run, "build"), "the build's last line was read: no 'log may be incomplete' warning"
    assert sb.faults["logs_lagged"] > 0, f"the logs-lag scenario really injected faults: {sb.faults}"


def test_a_missing_model_that_answers_403_is_not_found_not_could_not_verify(tmp_path: Path) -> None:
    """s3-no-list: HEAD of the wrong NEO_MODEL_S3_URI answers 403; settings refuse it as missing (exit 3)."""
    with SandboxProcess("s3-no-list", free_port()) as sb:
        wrong = f"{NAMES.bucket}/{NAMES.prefix}/compilation-output/ncf-job-that-never-ran/model.tar.gz"
        run = run_cli(
            run_args(sb, tmp_path, "--until", "settings", settings={**SETTINGS, "NEO_MODEL_S3_URI": wrong}),
            run_env(sb, tmp_path),
        )
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    assert "no model archive found" in run.stderr and "403" in run.stderr
    assert "could not verify" not in run.stderr
    assert sb.faults["head_403"] > 0


def test_iam_propagation_retries_the_early_denied_build_and_finishes(tmp_path: Path) -> None:
    """The fix is attached and simulated as allowed at once; the first build still runs with the old policy,
    is denied in PRE_BUILD, and the run starts it again after saying why."""
    with SandboxProcess("iam-propagation", free_port()) as sb:
        run = run_cli(run_args(sb, tmp_path), run_env(sb, tmp_path))
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
        assert [e["name"] for e in run.of("step", status="done")] == STEPS
        said = warnings(run, "build")
        assert len(said) == 1 and "eventual consistency" in said[0] and "PRE_BUILD" in said[0]
        ids = list(dict.fromkeys(e["build_id"] for e in run.of("build")))
        assert len(ids) == 2 and sorted(builds(sb)) == sorted(ids), "the denied build and its retry, no more"
        streams = [build_stream_lines(sb, build_id) for build_id in ids]
        assert run.log_lines == streams[0] + streams[1], "both builds' logs, each whole and once"
        assert len(run_jobs(sb, run_id_of(run))) == 4
    assert sb.faults["iam_stale"] == 1, sb.faults


# --------------------------------------------------------------- one run under four faults, five tests
# logs-5xx, neo-quota, build-quota and s3-no-list strike different calls (the log follower's reads, the
# compile, the build's start, S3's answer to a HEAD of a key that is not there yet), so one run under all
# four proves what a run under each proved, and that they compose: the tests below assert on that one run
# (a full run costs half a minute), each what its own run asserted.
COMPOSED = "logs-5xx+neo-quota+build-quota+s3-no-list"


@dataclass(frozen=True)
class Composed:
    run: Run
    account: Account
    faults: dict[str, int]


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Composed:
    tmp = tmp_path_factory.mktemp("composed")
    with SandboxProcess(COMPOSED, free_port()) as sb:
        run = run_cli(run_args(sb, tmp), run_env(sb, tmp))
        account = Account.of(sb, run)
    return Composed(run, account, sb.faults)  # the counts the sandbox printed as it stopped


shares_the_composed_run = pytest.mark.xdist_group("reliability-composed-run")


@shares_the_composed_run
def test_logs_5xx_loses_and_repeats_nothing(composed: Composed) -> None:
    assert_complete_and_exact(composed.run, composed.account)
    # The build's last line was read: its only warnings are the quota's, never "log may be incomplete".
    assert all("AccountLimitExceededException" in m for m in warnings(composed.run, "build"))
    assert composed.faults["logs_5xx"] > 0, f"the logs-5xx scenario really injected faults: {composed.faults}"


@shares_the_composed_run
def test_neo_quota_queues_the_jobs_past_it_and_compiles_them_all(composed: Composed) -> None:
    run = composed.run
    assert_complete_and_exact(run, composed.account)
    queued = run.of("variant", status="QUEUED")
    assert queued, "variants past the quota were queued, with the reason"
    assert all("ResourceLimitExceeded" not in e["message"] or "limit" in e["message"] for e in queued)
    assert all("concurrent compilation jobs" in e["message"] for e in queued)
    assert {e["name"] for e in run.of("variant", status="COMPLETED")} >= {e["name"] for e in queued}
    assert composed.faults["neo_quota"] >= len(queued)


@shares_the_composed_run
def test_build_quota_waits_for_a_slot_with_the_reason_shown(composed: Composed) -> None:
    assert_complete_and_exact(composed.run, composed.account)
    said = warnings(composed.run, "build")
    assert said and all("AccountLimitExceededException" in m and "builds in queue" in m for m in said)
    assert composed.faults["build_quota"] == len(said)


@shares_the_composed_run
def test_s3_403_for_a_missing_key_loses_and_repeats_nothing(composed: Composed) -> None:
    """s3-no-list: the run's HEADs of keys it has not uploaded yet answer 403, not 404; it goes on."""
    assert_complete_and_exact(composed.run, composed.account)
    assert composed.faults["head_403"] > 0, f"the s3-no-list scenario really answered 403: {composed.faults}"


@shares_the_composed_run
def test_composed_scenarios_apply_every_fault(composed: Composed) -> None:
    assert_complete_and_exact(composed.run, composed.account)
    faults = composed.faults
    assert all(faults[f] > 0 for f in ("logs_5xx", "neo_quota", "build_quota", "head_403")), faults


# ----------------------------------------------------------------------------------- several runs at once


def test_four_runs_at_once_each_with_its_own_state_all_finish_untouched_by_the_others(tmp_path: Path) -> None:
    with SandboxProcess("healthy", free_port()) as sb:
        procs = []
        for i in range(4):
            d = tmp_path / f"run{i}"
            d.mkdir()
            args = run_args(sb, d, settings={**SETTINGS, "IMAGE_TAG": f"run{i}"})
            procs.append(
                subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run_env(sb, d))
            )
        runs = []
        for p in procs:
            out, err = p.communicate(timeout=900)
            runs.append(Run(p.returncode, parse(out), out, err))
        for run in runs:
            assert run.returncode == 0, run.stderr[-3000:]
            assert "Traceback" not in run.stderr
        run_ids = [run_id_of(run) for run in runs]
        assert len(set(run_ids)) == 4
        build_ids = [next(e["build_id"] for e in run.of("build")) for run in runs]
        assert len(set(build_ids)) == 4 and sorted(builds(sb)) == sorted(build_ids)
        cb = sb.client("codebuild")
        for run, run_id, build_id in zip(runs, run_ids, build_ids, strict=True):
            assert run.log_lines == build_stream_lines(sb, build_id), "each run shows its own build's log"
            jobs = run_jobs(sb, run_id)
            assert len(jobs) == 4, "each run's own Neo jobs, found by its run id"
            # The build ran this run's model, whatever the other runs set on the shared project.
            env = {
                v["name"]: v["value"]
                for v in cb.batch_get_builds(ids=[build_id])["builds"][0]["environment"]["environmentVariables"]
            }
            chosen = next(e for e in run.of("variant", status="chosen"))
            assert f"/{chosen['job_name']}/" in env["NEO_MODEL_S3_URI"] + "/"
            (image,) = run.of("image")
            assert image["uri"].endswith(f":{env['IMAGE_TAG']}")
        s3 = sb.client("s3")
        for run_id in run_ids:
            keys = [
                o["Key"]
                for o in s3.list_objects_v2(Bucket=NAMES.bucket, Prefix=f"{NAMES.prefix}/{run_id}/")["Contents"]
            ]
            assert len(keys) == 4 and all(k.endswith("/model.tar.gz") for k in keys), "each run's own uploads"
        tags = {
            t: d["imageDigest"]
            for d in sb.client("ecr").describe_images(repositoryName=NAMES.ecr_repo)["imageDetails"]
            for t in d.get("imageTags", [])
        }
        assert {tags[f"run{i}"] for i in range(4)} == {run.of("image")[0]["digest"] for run in runs}


def test_a_second_run_on_the_same_state_file_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    from .kit import run_until

    env = run_env(None, tmp_path)
    args = [a for a in run_args(_NoSandbox(), tmp_path, "--until", "variants") if a != "--yes"]
    second: list[subprocess.CompletedProcess[str]] = []

    def run_second(_proc: subprocess.Popen[str]) -> None:
        second.append(subprocess.run(args, capture_output=True, text=True, env=env, timeout=120))

    first = run_until(args, env, lambda e: e["event"] == "step" and e["name"] == "variants", run_second)
    assert first.returncode == 0, first.stderr
    (refused,) = second
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    line = refused.stderr.strip().splitlines()[0]
    assert line.startswith("ncf-tui: error: another ncf-tui run (pid ") and str(tmp_path / "state.json") in line
    assert [e["name"] for e in first.of("step", status="done")] == ["account", "checkpoint", "variants"]
    assert parse(refused.stdout)[-1]["exit_code"] == 2


class _NoSandbox:
    """run_args wants a sandbox for --endpoint-url; a run --until variants never calls AWS."""

    endpoint_url = "http://127.0.0.1:9"
