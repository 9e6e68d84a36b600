"""Steps as objects in one registry: a new step is one module plus one line, and the state file keeps its keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.engine.errors import BadInputError
from ncf_tui.engine.pipeline import Pipeline, RunOptions
from ncf_tui.engine.state import RunState, StateStore
from ncf_tui.engine.steps import DEFAULT_STEPS, REGISTRY, STEPS, StepSpec, saved_result, step_by_name, wanted_steps

from .aws_kit import Recorder
from .tiny_steps import ShoutResult, TallyResult

TINY = (
    StepSpec("tally", "tests.engine.tiny_steps:TallyStep"),
    StepSpec("shout", "tests.engine.tiny_steps:ShoutStep", opt_in=True),
    StepSpec("close", "tests.engine.tiny_steps:CloseStep"),
)


def _tiny(tmp_path: Path, rec: Recorder, **options: Any) -> Pipeline:
    checkpoint = tmp_path / "weights.bin"
    checkpoint.write_bytes(b"not read by these steps")
    opts = RunOptions(checkpoint=checkpoint, output_dir=tmp_path / "out", mode="sandbox", **options)
    return Pipeline.new(opts, rec, state_dir=tmp_path / "state", registry=TINY)


def _tally(tmp_path: Path) -> list[str]:
    return (tmp_path / "out" / "tally.log").read_text("utf-8").splitlines()


def test_a_step_added_to_a_registry_runs_saves_and_is_skipped_on_resume(tmp_path: Path) -> None:
    rec = Recorder()
    first = _tiny(tmp_path, rec)
    outcome = first.run("tally")
    assert outcome.result("tally") == TallyResult(1)
    saved = json.loads(first.store.path.read_text())
    assert saved["steps"] == {"tally": {"status": "done", "lines": 1}}
    assert not saved["finished"]
    assert [(e.name, e.status) for e in rec.of("step")] == [("tally", "started"), ("tally", "done")]

    rec2 = Recorder()
    again = Pipeline.resume(first.store, RunOptions(checkpoint=Path(), mode="sandbox"), rec2, registry=TINY)
    outcome = again.run("close")
    # tally reused (its log line is still the only one), the opt-in shout left out, close run and saved
    assert [line.split()[0] for line in _tally(tmp_path)] == ["tally", "close"]
    assert [(e.name, e.status) for e in rec2.of("step")] == [
        ("tally", "skipped"),
        ("close", "started"),
        ("close", "done"),
    ]
    assert outcome.result("tally") == TallyResult(1) and outcome.result("close") == TallyResult(2)
    assert outcome.result("shout") is None
    state = StateStore(first.store.path).load()
    assert state is not None and state.finished
    assert saved_result(state, "close", TINY) == TallyResult(2)


def test_an_opt_in_step_runs_only_when_asked(tmp_path: Path) -> None:
    rec = Recorder()
    outcome = _tiny(tmp_path, rec, also=frozenset({"shout"})).run("close")
    assert [line.split()[0] for line in _tally(tmp_path)] == ["tally", "shout", "close"]
    assert outcome.result("shout") == ShoutResult("the tally stood at 1")
    # naming an opt-in step in --until asks for it too
    assert [s.name for s in wanted_steps("shout", (), TINY)] == ["tally", "shout"]
    assert [s.name for s in wanted_steps("close", (), TINY)] == ["tally", "close"]


def test_an_unknown_step_is_one_clear_refusal(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown step 'deploy'; the steps are tally, shout, close"):
        _tiny(tmp_path, Recorder()).run("deploy")


def test_the_registry_names_every_step_once_in_run_order() -> None:
    assert len(set(STEPS)) == len(STEPS)
    assert DEFAULT_STEPS[-1] == RunOptions(checkpoint=Path()).until  # a plain run ends at the last default step
    for spec in REGISTRY:
        step = step_by_name(spec.name)
        # the registry line and the step object agree (the line is what the CLI reads without importing it)
        assert step.name == spec.name and step.opt_in == spec.opt_in


def test_steps_import_without_torch() -> None:
    code = (
        "import sys; import ncf_tui.engine.steps as s; import ncf_tui.engine.steps.base; "
        "print(len(s.STEPS), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(len(STEPS)), "False"]


# What the pipeline wrote under each step's name before steps were objects (keys and shapes as they were).
OLD_ENTRIES: dict[str, dict[str, object]] = {
    "checkpoint": {
        "status": "done",
        "summary": {"path": "/data/ncf.pt", "params": 1234, "gmf_norm": "l2", "output": "sigmoid"},
    },
    "variants": {
        "status": "done",
        "candidates": [
            {
                "name": "basic",
                "archive": "/out/basic/model.tar.gz",
                "accepted": True,
                "preflight_message": "",
                "fidelity": {"max_abs_diff": 0.01, "top10_overlap": 0.9},
                "data_input_config": '{"input0": [1, 2]}',
                "sha256": "ab" * 32,
            }
        ],
    },
    "compile": {
        "status": "done",
        "jobs": {
            "basic": {
                "variant": "basic",
                "job_name": "ncf-20261201-000000-abcd-basic",
                "input_uri": "s3://b/p/r/basic/model.tar.gz",
                "output_uri": "s3://b/p/compilation-output/ncf-20261201-000000-abcd-basic/",
                "status": "COMPLETED",
                "failure_reason": None,
                "artifact_uri": "s3://b/p/compilation-output/ncf-20261201-000000-abcd-basic/model-ml_c5.tar.gz",
                "sha256": "cd" * 32,
                "started": 1.0,
                "ended": 2.0,
                "model_file": "model.pth",
                "compiled_sha256": "ef" * 32,
                "sidecar_uri": "s3://b/p/compilation-output/ncf-20261201-000000-abcd-basic/ncf-model.json",
            }
        },
        "chosen": "basic",
        "reason": "most faithful variant that compiled",
        "neo_model_s3_uri": "b/p/compilation-output/ncf-20261201-000000-abcd-basic",
        "sidecar_uri": "s3://b/p/compilation-output/ncf-20261201-000000-abcd-basic/ncf-model.json",
        "framework_version": "2.0",
        "trace_torch_version": "2.13.0",
        "inference_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-inference-pytorch:2.0-cpu",
        "target_device": "ml_c5",
    },
    "settings": {
        "status": "done",
        "values": {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCOUNT_ID": "123456789012",
            "IMAGE_REPO_NAME": "ncf",
            "IMAGE_TAG": "latest",
            "NEO_MODEL_S3_URI": "b/p/compilation-output/ncf-20261201-000000-abcd-basic",
            "project_name": "ncf-tui",
            "service_role": "arn:aws:iam::123456789012:role/build",
            "bucket": "b",
            "prefix": "p",
            "target_device": "ml_c5",
            "sagemaker_role": "arn:aws:iam::123456789012:role/sagemaker",
            "build_image": "",
        },
    },
    "permissions": {
        "status": "done",
        "report": {"role_arn": "arn:aws:iam::123456789012:role/build", "verified": True, "attached": True},
        "attached_at": 1764547200.0,
    },
    "build": {
        "status": "done",
        "build_id": "ncf:1",
        "values": {
            "model_sha256": "ef" * 32,
            "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/ncf:latest",
            "image_digest": "sha256:" + "01" * 32,
            "docker_server": "27.0",
            "errors": [],
        },
        "duration": 42.5,
    },
    "verify": {
        "status": "done",
        "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/ncf:latest",
        "digest": "sha256:" + "01" * 32,
        "model_sha256": "ef" * 32,
        "verified": ["the digest matches the build's"],
        "deploy_commands": ["aws sagemaker create-model ..."],
        "smoke": None,
    },
}


@pytest.mark.parametrize("name", list(OLD_ENTRIES))
def test_a_state_entry_written_before_steps_were_objects_reads_back_and_writes_the_same_keys(name: str) -> None:
    # every step that existed before steps were objects (account and deploy came after, in their own shape)
    assert set(OLD_ENTRIES) == set(STEPS) - {"account", "deploy"}
    state = RunState(run_id="20261201-000000-abcd", mode="aws", checkpoint="/data/ncf.pt", steps=dict(OLD_ENTRIES))
    result = saved_result(state, name)
    assert result is not None
    entry = dict(OLD_ENTRIES[name])
    entry.pop("status")
    assert result.to_state() == entry


def test_typed_results_of_an_old_state_say_what_it_said() -> None:
    state = RunState(run_id="20261201-000000-abcd", mode="aws", checkpoint="/data/ncf.pt", steps=dict(OLD_ENTRIES))
    assert saved_result(state, "compile").jobs["basic"].model_uri.endswith("ncf-20261201-000000-abcd-basic")
    assert saved_result(state, "settings").settings.region == "us-east-1"
    assert saved_result(state, "permissions").attached
    assert saved_result(state, "build").values.image_digest == "sha256:" + "01" * 32
    assert saved_result(state, "verify").deploy_commands == ["aws sagemaker create-model ..."]
    state.steps["build"] = {"status": "running", "build_id": "ncf:2"}
    assert saved_result(state, "build") is None  # a running step has no result yet
