"""A recognisable secret, stored in the keyring, drives a whole sandbox run and appears in nothing it made.

The run is the headless one (the same pipeline, printers and sandbox settings as ``ncf-tui --headless
--sandbox``), authenticated with an access key pair read back from the keyring through
``engine.secrets.credentials_for``. Afterwards every output is scanned for the secret: the JSON events, the
human output, stdout/stderr, Python logging (DEBUG, botocore included), the state file, the saved settings,
every file of the output folder (archives unpacked), and the build's CloudWatch log, which is also scanned
for the build role's own temporary secret.
"""

from __future__ import annotations

import gzip
import io
import logging
import tarfile
from pathlib import Path

import pytest

from ncf_tui.context import RunContext, sandbox_saved_dir
from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.events import Event, JsonLines
from ncf_tui.engine.pipeline import Pipeline, RunOptions, agree
from ncf_tui.engine.sample import sample_checkpoint_path
from ncf_tui.engine.secrets import AwsCredentials, credentials_for, store_credentials
from ncf_tui.headless import HumanPrinter
from ncf_tui.sandbox.server import Sandbox

from .memkeyring import MemoryKeyring

pytestmark = pytest.mark.slow


def _texts(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` as bytes, archives unpacked member by member."""
    out: dict[str, bytes] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        out[str(path)] = data
        if path.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(path, "r:gz") as tar:
                for m in tar.getmembers():
                    f = tar.extractfile(m)
                    if f is not None:
                        out[f"{path}!{m.name}"] = f.read()
        elif path.suffix == ".gz":
            out[f"{path}!"] = gzip.decompress(data)
    return out


def _stream(sandbox: Sandbox, build_id: str) -> list[str]:
    logs = sandbox.client("logs")
    build = sandbox.client("codebuild").batch_get_builds(ids=[build_id])["builds"][0]
    kw = {"logGroupName": build["logs"]["groupName"], "logStreamName": build["logs"]["streamName"]}
    events = logs.get_log_events(startFromHead=True, **kw)["events"]
    return [e["message"] for e in events]


def _build_role_secrets(sandbox: Sandbox) -> list[tuple[str, str]]:
    """The build role's temporary (secret key, session token) pairs, read from the sandbox's STS."""
    from moto.sts.models import sts_backends

    roles = sts_backends[sandbox.names.account_id]["aws"].assumed_roles
    return [(r.secret_access_key, r.session_token) for r in roles if "codebuild" in r.role_arn]


def test_keyring_credentials_run_the_whole_flow_and_leak_nowhere(
    sandbox: Sandbox,
    memory_keyring: MemoryKeyring,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rich.console import Console

    key = sandbox.client("iam").create_access_key(UserName=sandbox.names.admin_user)["AccessKey"]
    key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
    assert len(secret) == 40 and key_id.startswith(("AKIA", "ASIA"))
    store_credentials("sandbox-admin", AwsCredentials(key_id, secret))
    choice = credentials_for("sandbox-admin")
    assert choice.source == "keyring" and choice.credentials is not None

    caplog.set_level(logging.DEBUG)
    saved = sandbox_saved_dir(sandbox)
    out_dir, state_dir = tmp_path / "out", tmp_path / "state"
    json_out, human_out = io.StringIO(), io.StringIO()
    as_json, as_human = JsonLines(json_out), HumanPrinter(Console(file=human_out, width=200, force_terminal=False))

    def emit(event: Event) -> None:
        as_json(event)
        as_human(event)

    target = AwsTarget(region=sandbox.region, endpoint_url=sandbox.endpoint_url, credentials=choice.credentials)
    options = RunOptions(
        checkpoint=sample_checkpoint_path(),
        output_dir=out_dir,
        mode="sandbox",
        env={},
        saved_dir=saved,
        save_answers=True,  # the saved settings file is written, so it can be scanned too
        source_root=sandbox.source_dir,
        ask=agree,
    )
    p = Pipeline.new(
        options,
        emit,
        state_dir=state_dir,
        aws=lambda: Aws(target),
        compile_config=RunContext(env={}, saved_dir=saved).compile_config,
    )
    outcome = p.run()
    assert outcome.image_uri, "the keyring credentials carried the run to an image in ECR"
    whoami = Aws(target).whoami()
    assert whoami.arn == sandbox.names.admin_user_arn

    captured = capfd.readouterr()
    build_id = p.state.steps["build"]["build_id"]
    stream = "\n".join(_stream(sandbox, build_id))
    assert "NCF-TUI: image-digest" in stream
    places: dict[str, bytes] = {
        "json events": json_out.getvalue().encode(),
        "human output": human_out.getvalue().encode(),
        "stdout": captured.out.encode(),
        "stderr": captured.err.encode(),
        "build log": stream.encode(),
        **_texts(state_dir),
        **_texts(saved),
        **_texts(out_dir),
    }
    assert any(name.endswith("config.toml") for name in places), "the saved settings were scanned"
    assert any("model.pth" in name for name in places), "the archives were unpacked and scanned"
    logged = caplog.text.encode()
    assert len(logged) > 1000, "DEBUG logging was captured"
    for name, data in places.items():
        assert secret.encode() not in data, f"the secret access key is in {name}"
        assert key_id.encode() not in data, f"the access key id is in {name}"
    assert secret.encode() not in logged, "the secret access key is in the Python log"
    role_secrets = _build_role_secrets(sandbox)
    assert role_secrets, "the build ran as its role"
    for secret_key, token in role_secrets:
        assert secret_key not in stream and token not in stream, "the build role's secret is in the build log"
        # botocore's own DEBUG log shows every request header, the session token included (it travels as a
        # header); the secret key never travels, so it must never be logged.
        assert secret_key.encode() not in logged
