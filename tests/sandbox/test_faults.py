"""Scenario faults over real HTTP: throttling in each protocol's shape, and log reads that drop mid-stream."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from ncf_tui.sandbox.server import Sandbox

from .cb_kit import Builds

NO_RETRY = {"retries": {"total_max_attempts": 1, "mode": "standard"}}


def _codes(call: Any, n: int) -> list[str]:
    out = []
    for _ in range(n):
        try:
            call()
            out.append("ok")
        except ClientError as exc:
            out.append(exc.response["Error"]["Code"] + ":" + exc.response["Error"]["Message"])
    return out


@pytest.mark.parametrize(
    ("service", "call", "expected"),
    [
        ("logs", lambda c: c.describe_log_groups(), "ThrottlingException:Rate exceeded"),
        ("codebuild", lambda c: c.list_projects(), "ThrottlingException:Rate exceeded"),
        ("iam", lambda c: c.list_roles(), "Throttling:Rate exceeded"),
        ("sts", lambda c: c.get_caller_identity(), "Throttling:Rate exceeded"),
        ("s3", lambda c: c.list_buckets(), "SlowDown:Please reduce your request rate."),
    ],
)
def test_throttling_answers_a_share_of_calls_in_the_protocol_s_shape(
    sandbox: Sandbox, service: str, call: Any, expected: str
) -> None:
    sandbox.reset("throttling")
    client = sandbox.client(service, **NO_RETRY)
    codes = _codes(lambda: call(client), 40)
    assert set(codes) == {"ok", expected}
    assert 2 <= codes.count(expected) <= 12  # share 0.15 of 40 calls, seeded


def test_throttling_is_deterministic_for_a_seed(sandbox: Sandbox) -> None:
    runs = []
    for _ in range(2):
        sandbox.reset("throttling")
        client = sandbox.client("logs", **NO_RETRY)
        runs.append(_codes(client.describe_log_groups, 30))
    assert runs[0] == runs[1]


def test_botocore_retries_throttled_calls_to_success(sandbox: Sandbox) -> None:
    sandbox.reset("throttling")
    client = sandbox.client("codebuild", retries={"max_attempts": 10, "mode": "standard"})
    for _ in range(6):  # botocore backs off between retries, so few calls say enough
        assert client.list_projects()["projects"] == []
    assert sandbox.fault_counts["throttled"] > 0


def test_the_healthy_scenario_never_throttles(sandbox: Sandbox) -> None:
    client = sandbox.client("logs", **NO_RETRY)
    assert set(_codes(client.describe_log_groups, 30)) == {"ok"}


def test_flaky_logs_drop_the_connection_and_a_follower_resumes_from_its_token(sandbox: Sandbox) -> None:
    sandbox.reset("flaky-logs")
    builds = Builds(sandbox)
    builds.project(
        'version: 0.2\nphases:\n  build:\n    commands:\n      - for i in $(seq 1 40); do echo "n=$i"; done\n'
    )
    build = builds.wait(builds.start())
    logs = sandbox.client("logs", **NO_RETRY)
    group, stream = build["logs"]["groupName"], build["logs"]["streamName"]
    lines: list[str] = []
    token: str | None = None
    drops = 0
    for _ in range(200):
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "limit": 4}
        if token:
            kwargs["nextToken"] = token
        try:
            page = logs.get_log_events(**kwargs)
        except (ConnectionClosedError, EndpointConnectionError):
            drops += 1
            continue  # resume from the same token: nothing lost, nothing twice
        lines += [e["message"].rstrip("\n") for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert drops >= 1
    assert sandbox.fault_counts["dropped"] == drops
    numbered = [line for line in lines if line.startswith("n=")]
    assert numbered == [f"n={i}" for i in range(1, 41)]
