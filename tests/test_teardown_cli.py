"""Issue 16's two commands through the real CLI: a run on an empty account creates what it needs, and
``ncf-tui --teardown`` of its state leaves S3, IAM and ECR as the empty account had them.

The account must outlive the first process, so both commands point at one standalone sandbox
(``python -m ncf_tui.sandbox --scenario empty-account``) with ``--endpoint-url``, as a user would; the
embedded ``--sandbox`` account ends with the process that made it, so ``--teardown --sandbox`` is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.sandbox.test_server import _run_cli, _stop
from tests.waits import HANG

pytestmark = [pytest.mark.slow]


def _listings(exports: dict[str, str]) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        region_name=exports["AWS_DEFAULT_REGION"],
    )

    def client(name: str) -> Any:
        return session.client(name, endpoint_url=exports["AWS_ENDPOINT_URL"])

    return {
        "buckets": sorted(b["Name"] for b in client("s3").list_buckets()["Buckets"]),
        "roles": sorted(r["RoleName"] for r in client("iam").list_roles()["Roles"]),
        "repositories": sorted(r["repositoryName"] for r in client("ecr").describe_repositories()["repositories"]),
    }


def _ncf(args: list[str], exports: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NCF_TUI_CONFIG_DIR": str(home / "config"),
        "NCF_TUI_STATE_DIR": str(home / "state"),
        "NCF_TUI_DATA_DIR": str(home / "data"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        **exports,
    }
    return subprocess.run(
        [sys.executable, "-m", "ncf_tui.cli", *args], env=env, capture_output=True, text=True, timeout=HANG
    )


def test_a_run_on_an_empty_account_then_teardown_leaves_it_empty(tmp_path: Path) -> None:
    with tempfile.TemporaryFile(mode="w+") as err:
        proc, exports = _run_cli(["--scenario", "empty-account", "--neo-seconds", "0.5"], err)
        try:
            before = _listings(exports)
            assert before == {"buckets": [], "roles": [], "repositories": []}, before
            state = tmp_path / "run.json"
            url = exports["AWS_ENDPOINT_URL"]
            run = _ncf(
                ["--headless", "--endpoint-url", url, "--yes", "--json", "--state", str(state)], exports, tmp_path
            )
            assert run.returncode == 0, run.stderr[-3000:]
            events = [json.loads(line) for line in run.stdout.splitlines()]
            created = {
                (e["resource"], e["name"]) for e in events if e["event"] == "resource" and e["status"] == "created"
            }
            assert {kind for kind, _ in created} == {"bucket", "role", "repository"} and len(created) == 4, created
            assert events[-1]["event"] == "done" and events[-1]["image_uri"], events[-1]
            during = _listings(exports)
            assert len(during["buckets"]) == 1 and len(during["roles"]) == 2 and len(during["repositories"]) == 1

            down = _ncf(["--teardown", "--endpoint-url", url, "--yes", "--state", str(state)], exports, tmp_path)
            assert down.returncode == 0, down.stderr[-3000:]
            assert _listings(exports) == before

            refused = _ncf(["--teardown", "--sandbox", "--yes", "--state", str(state)], exports, tmp_path)
            assert refused.returncode == 2 and "Traceback" not in refused.stderr
            assert "--endpoint-url" in refused.stderr
        finally:
            code, _rest, said = _stop(proc, err)
    assert code == 0, said[-3000:]
