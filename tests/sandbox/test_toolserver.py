"""The warm `aws`: the same AWS CLI a cold `aws` runs, answering the same, and never outliving its caller.

Each call is compared with the cold CLI (the venv's own `aws` script) run with the same arguments and
environment, against the sandbox over real HTTP: same stdout, same stderr, same exit status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ncf_tui.sandbox.toolserver import ToolServer
from tests.waits import HANG, wait_for

if TYPE_CHECKING:
    from ncf_tui.sandbox.server import Sandbox

AWS_SCRIPT = str(Path(sys.executable).with_name("aws"))
COLD = [sys.executable, AWS_SCRIPT]


@pytest.fixture
def tools() -> Iterator[ToolServer]:
    server = ToolServer()
    yield server
    server.close()


@pytest.fixture
def warm_aws(tools: ToolServer, tmp_path: Path) -> Path:
    shim = tmp_path / "bin" / "aws"
    shim.parent.mkdir()
    tools.write_shim(shim, "aws", COLD)
    return shim


def _env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return {
        **sandbox.env(),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }


def _pair(
    warm: Path, args: list[str], env: dict[str, str], cwd: Path, stdin: str = ""
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=HANG)

    return run([str(warm), *args]), run([*COLD, *args])


@pytest.mark.parametrize(
    "args",
    [
        ["sts", "get-caller-identity"],
        ["ecr", "get-authorization-token", "--query", "authorizationData[0].proxyEndpoint", "--output", "text"],
        ["s3", "ls", "s3://no-such-bucket-anywhere/"],  # an AWS error: exit 1 and the CLI's message
        ["s3", "ls", "--no-such-option"],  # a usage error: exit 252 and the usage text
    ],
    ids=["json", "query-text", "aws-error", "usage-error"],
)
def test_a_warm_call_answers_as_the_cold_cli_does(
    sandbox: Sandbox, warm_aws: Path, tmp_path: Path, args: list[str]
) -> None:
    warm, cold = _pair(warm_aws, args, _env(sandbox, tmp_path), tmp_path)
    assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert warm.stdout or warm.stderr, "the call said something"


def test_stdin_cwd_and_the_environment_are_the_caller_s(sandbox: Sandbox, warm_aws: Path, tmp_path: Path) -> None:
    """`aws s3 cp - URI` reads the caller's stdin; `aws s3 cp URI file` writes into the caller's directory;
    AWS_DEFAULT_OUTPUT (read from the environment) shapes the answer."""
    env = _env(sandbox, tmp_path)
    bucket = sandbox.names.bucket
    up = subprocess.run(
        [str(warm_aws), "s3", "cp", "-", f"s3://{bucket}/warm/probe.txt"],
        input="through the caller's stdin\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG,
    )
    assert up.returncode == 0, up.stderr
    here = tmp_path / "here"
    here.mkdir()
    down = subprocess.run(
        [str(warm_aws), "s3", "cp", "--only-show-errors", f"s3://{bucket}/warm/probe.txt", "probe.txt"],
        capture_output=True,
        text=True,
        env=env,
        cwd=here,
        timeout=HANG,
    )
    assert down.returncode == 0, down.stderr
    assert (here / "probe.txt").read_text() == "through the caller's stdin\n"
    warm, cold = _pair(warm_aws, ["sts", "get-caller-identity"], {**env, "AWS_DEFAULT_OUTPUT": "text"}, tmp_path)
    assert warm.stdout == cold.stdout and warm.stdout.count("\t") == 2, warm.stdout


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_killed_caller_ends_its_call(tools: ToolServer, warm_aws: Path) -> None:
    """A stopped build kills its phase's process group: the client dies, and the forked call with it."""
    # `aws s3 cp - URI` waits on stdin, which the test holds open: the call cannot end by itself.
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    client = subprocess.Popen(
        [str(warm_aws), "s3", "cp", "-", "s3://b/k"], stdin=subprocess.PIPE, env=env, start_new_session=True
    )
    server = tools.pid
    assert server is not None
    (call,) = wait_for(lambda: _children(server), "the server to fork the call")
    os.killpg(client.pid, signal.SIGTERM)
    client.wait(timeout=HANG)
    wait_for(lambda: call not in _children(server), "the call to end after its caller was killed")
    assert client.stdin is not None
    client.stdin.close()


def test_the_server_ends_with_the_sandbox_that_started_it(tmp_path: Path) -> None:
    """The sandbox is killed (SIGKILL, no clean-up runs): its warm server sees the pipe close and exits."""
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from ncf_tui.sandbox.toolserver import ToolServer\n"
            "from pathlib import Path\n"
            "t = ToolServer(); t.write_shim(Path(sys.argv[1]), 'aws', [])\n"
            "print(t.pid, flush=True); time.sleep(3600)\n",
            str(tmp_path / "aws"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    server = int(owner.stdout.readline())
    assert Path(f"/proc/{server}").exists()
    owner.kill()
    owner.wait(timeout=HANG)
    wait_for(lambda: not Path(f"/proc/{server}").exists() or "Z" in _state(server), "the orphaned server to exit")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"


def test_without_the_server_the_shim_runs_the_cold_cli(tools: ToolServer, warm_aws: Path) -> None:
    tools.close()
    done = subprocess.run([str(warm_aws), "--version"], capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 0 and done.stdout.startswith("aws-cli/"), done
