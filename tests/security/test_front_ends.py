"""The three front ends share one way in (``ncf_tui.context``): each takes the keyring's credentials for the
profile, and ``--config`` and ``--set`` exactly as headless does.

The session's sandbox plays a real account reached through ``--endpoint-url``: its admin key pair is stored in
the in-memory keyring under a profile that exists nowhere else, and the process has no other credentials (no
``AWS_*`` variables, no shared files), so a front end that ignored the keyring could not even say who it is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.cli import build_parser, main
from ncf_tui.engine.secrets import AwsCredentials, store_credentials
from ncf_tui.sandbox.server import Sandbox

from .memkeyring import MemoryKeyring

pytestmark = pytest.mark.slow
PROFILE = "ncf-front-ends"


@pytest.fixture
def account(
    sandbox: Sandbox, memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The sandbox as an account only the keyring's entry can reach, and a --config file of answers."""
    creds = sandbox.credentials
    store_credentials(PROFILE, AwsCredentials(creds["aws_access_key_id"], creds["aws_secret_access_key"]))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NCF_TUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NCF_TUI_STATE_DIR", str(tmp_path / "state"))
    answers = sandbox.user_answers()
    config = tmp_path / "answers.toml"
    config.write_text(
        f'bucket = "{answers["bucket"]}"\n'
        f'sagemaker_role = "{answers["sagemaker_role"]}"\n'
        'IMAGE_REPO_NAME = "repo-from-config"\n'
        'prefix = "prefix-from-config"\n',
        encoding="utf-8",
    )
    who = sandbox.client("sts").get_caller_identity()
    yield {
        "sandbox": sandbox,
        "config": config,
        "arn": who["Arn"],
        "account": who["Account"],
        "flags": [
            *("--profile", PROFILE, "--endpoint-url", sandbox.endpoint_url, "--region", sandbox.region),
            *("--config", str(config), "--set", "prefix=prefix-from-set", "--set", f"AWS_ACCOUNT_ID={who['Account']}"),
        ],
    }


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_checklist_uses_the_keyring_and_the_settings_sources(
    account: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--checklist", "--headless", "--json", *account["flags"]])
    events = _events(capsys.readouterr().out)
    checks = {e["id"]: e for e in events if e["event"] == "check"}
    assert checks["credentials"]["status"] == "pass", checks["credentials"]
    assert account["arn"] in checks["credentials"]["evidence"]  # the keyring's key pair, nothing else
    assert f"matches AWS_ACCOUNT_ID {account['account']}" in checks["credentials"]["evidence"]  # --set
    assert "repo-from-config" in checks["ecr-repository"]["evidence"]  # --config
    assert events[-1]["event"] == "done" and events[-1]["exit_code"] == code


def test_headless_uses_the_keyring_and_the_settings_sources(
    account: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = account["sandbox"]
    code = main(
        ["--headless", "--json", "--until", "compile", "--output-dir", str(tmp_path / "out"), *account["flags"]]
    )
    events = _events(capsys.readouterr().out)
    assert code == 0, events[-3:]
    bucket = sandbox.user_answers()["bucket"]
    keys = [o["Key"] for o in sandbox.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]
    # The bucket and role came from --config, the prefix from --set (which wins over --config's), and the
    # upload was made with the keyring's key pair: the process had no other credentials.
    assert any(k.startswith("prefix-from-set/") for k in keys), keys
    assert not any(k.startswith("prefix-from-config/") for k in keys), keys


def test_the_wizard_uses_the_keyring_and_the_settings_sources(account: dict[str, Any]) -> None:
    from ncf_tui.tui.app import create_app
    from ncf_tui.tui.config import AppConfig

    args = build_parser().parse_args(account["flags"])
    app = create_app(AppConfig.from_args(args), offer_resume=False)
    seen: dict[str, Any] = {}

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()  # the connection worker
            await pilot.pause()
            session = app.session
            seen["connection"] = session.connection
            seen["suggested"] = session.suggested_settings()
            seen["compile"] = session._compile_config(session.aws())
            seen["credentials"] = session.context.credentials

    asyncio.run(drive())
    assert seen["connection"] is not None and seen["connection"].arn == account["arn"]
    assert seen["credentials"].source == "keyring"
    suggested = seen["suggested"]
    assert suggested["IMAGE_REPO_NAME"] == "repo-from-config"  # --config: the settings form's defaults
    assert suggested["prefix"] == "prefix-from-set"  # --set wins, as in a headless run
    compiled = seen["compile"]
    assert compiled.prefix == "prefix-from-set"
    assert compiled.bucket == account["sandbox"].user_answers()["bucket"]
