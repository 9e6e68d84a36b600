"""The log follower against real CloudWatch Logs calls on the sandbox: written while read, dropped, resumed."""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

import pytest

from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.events import Event, LogEvent
from ncf_tui.engine.logs import BuildValues, LogFollower, LogPosition, parse_ncf_line, reader_client
from ncf_tui.sandbox.server import Sandbox
from tests.waits import HANG, wait_for

GROUP = "/aws/codebuild/ncf-follow-test"
STREAM = "0b9f6c2e-test"
SHA = "ab" * 32
DIGEST = "sha256:" + "cd" * 32
URI = "1.dkr.ecr.eu-west-1.amazonaws.com/r:t"


def make_aws(sb: Sandbox) -> Aws:
    return _aws(sb.region, sb.endpoint_url, tuple(sorted(sb.credentials.items())))


@functools.cache
def _aws(region: str, endpoint_url: str, credentials: tuple[tuple[str, str], ...]) -> Aws:
    """One boto3 session per sandbox server (its credentials outlive resets): sessions are slow to make."""
    return Aws(AwsTarget(region=region, endpoint_url=endpoint_url, credentials=dict(credentials)))


class Writer:
    """Puts numbered lines into GROUP/STREAM in bursts; some bursts repeat one line in one millisecond."""

    def __init__(self, sb: Sandbox, *, delay_stream: float = 0.0) -> None:
        self.client = sb.client("logs", retries={"max_attempts": 10, "mode": "standard"})
        self.delay_stream = delay_stream
        self.written: list[str] = []
        self.n = 0

    def create(self) -> None:
        self.client.create_log_group(logGroupName=GROUP)
        self.client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)

    def burst(self, size: int, *, repeats: int = 0) -> None:
        ts = int(time.time() * 1000)
        events: list[dict[str, Any]] = []
        for _ in range(size):
            self.n += 1
            events.append({"timestamp": ts, "message": f"line {self.n}\n"})
        # Identical events (same millisecond, same batch, same text) are distinct lines, never duplicates.
        events += [{"timestamp": ts, "message": "same\n"} for _ in range(repeats)]
        self.client.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=events)
        self.written += [e["message"].rstrip("\n") for e in events]

    def run(self, bursts: int, pause: float) -> threading.Thread:
        def go() -> None:
            time.sleep(self.delay_stream)
            self.create()
            for i in range(bursts):
                self.burst(7 + (i * 5) % 23, repeats=2 if i % 3 == 0 else 0)
                time.sleep(pause * (i % 4))

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread


def follow(sb: Sandbox, **kwargs: Any) -> tuple[LogFollower, list[str], list[Event]]:
    lines: list[str] = []
    events: list[Event] = []
    follower = LogFollower(
        reader_client(make_aws(sb)),
        GROUP,
        STREAM,
        emit=events.append,
        on_line=lambda line: lines.append(line.message),
        **kwargs,
    )
    return follower, lines, events


def test_a_stream_written_while_read_through_dropped_connections_arrives_whole_and_the_follower_ends(
    sandbox: Sandbox,
) -> None:
    sandbox.reset("flaky-logs")
    writer = Writer(sandbox, delay_stream=0.4)
    follower, lines, events = follow(sandbox)
    follower.start()  # before the stream exists: it waits for it
    writer.run(bursts=24, pause=0.05).join(30)
    follower.complete()
    assert follower.join(20), "the follower did not end by itself after completion"
    assert follower.error is None
    assert lines == writer.written  # nothing lost, nothing twice, identical lines kept
    assert lines.count("same") == 16
    assert [e.line for e in events if isinstance(e, LogEvent)] == lines
    assert sandbox.fault_counts["dropped"] >= 1
    assert follower.stats.reconnects == sandbox.fault_counts["dropped"]
    assert follower.stats.waits_for_stream >= 1


def test_resume_from_a_saved_token_reads_only_what_is_new(sandbox: Sandbox) -> None:
    writer = Writer(sandbox)
    writer.create()
    writer.burst(40, repeats=3)
    first, lines_a, _ = follow(sandbox)
    first.complete()
    saved = first.run().to_dict()
    assert lines_a == writer.written
    writer.burst(25)
    second, lines_b, _ = follow(sandbox, position=LogPosition.from_dict(saved))
    second.complete()
    second.run()
    assert lines_b == [f"line {i}" for i in range(41, 66)]


def test_a_refused_token_falls_back_to_the_timestamp_and_skips_what_was_emitted_there(sandbox: Sandbox) -> None:
    writer = Writer(sandbox)
    writer.create()
    writer.burst(10, repeats=3)  # 13 events in one millisecond: the tail to skip, by position
    first, _, _ = follow(sandbox)
    first.complete()
    position = first.run()
    assert len(position.tail) == 13
    time.sleep(0.01)
    writer.burst(5, repeats=2)
    refused = LogPosition(token="f/not-a-token", timestamp=position.timestamp, tail=list(position.tail))
    second, lines, _ = follow(sandbox, position=refused)
    second.complete()
    second.run()
    assert lines == [*[f"line {i}" for i in range(11, 16)], "same", "same"]
    assert second.stats.replayed_skipped == 13


def test_throttled_reads_back_off_and_lose_nothing(sandbox: Sandbox) -> None:
    sandbox.reset("throttling")
    writer = Writer(sandbox)
    follower, lines, _ = follow(sandbox, fast=0.05)
    follower.start()
    writer.run(bursts=12, pause=0.05).join(30)
    follower.complete()
    assert follower.join(30)
    assert lines == writer.written
    assert follower.stats.throttled > 0


def test_a_stream_that_never_appears_ends_the_follower_once_complete(sandbox: Sandbox) -> None:
    follower, lines, _ = follow(sandbox, fast=0.05)
    follower.start()
    wait_for(lambda: follower.stats.waits_for_stream >= 2, "the follower to find no stream twice")
    follower.complete()
    assert follower.join(HANG)
    assert lines == [] and follower.stats.waits_for_stream >= 2


def test_cancel_stops_a_follower_that_was_never_told_complete(sandbox: Sandbox) -> None:
    writer = Writer(sandbox)
    writer.create()
    writer.burst(3)
    cancel = threading.Event()
    follower, lines, _ = follow(sandbox, cancel=cancel)
    follower.start()
    wait_for(lambda: len(lines) >= 3, "the three lines written")
    cancel.set()
    assert follower.join(HANG)
    assert lines == ["line 1", "line 2", "line 3"]


def test_ncf_tui_lines_become_values(sandbox: Sandbox) -> None:
    writer = Writer(sandbox)
    writer.create()
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ncf-recommender:latest"
    messages = [
        "[Container] 2026/11/30 13:00:00.000 Running command echo NCF-TUI: model-sha256 x",
        f"NCF-TUI: model-sha256 {SHA} model.pth",
        f"NCF-TUI: image-uri {uri}",
        f"NCF-TUI: image-digest {DIGEST}",
        "NCF-TUI: docker-server 20.10.24+dfsg1",
        "NCF-TUI: error build-failed the image was not built",
    ]
    ts = int(time.time() * 1000)
    writer.client.put_log_events(
        logGroupName=GROUP, logStreamName=STREAM, logEvents=[{"timestamp": ts, "message": m + "\n"} for m in messages]
    )
    follower, _, _ = follow(sandbox)
    follower.complete()
    follower.run()
    assert follower.values.as_dict() == {
        "model_sha256": SHA,
        "image_uri": uri,
        "image_digest": DIGEST,
        "docker_server": "20.10.24+dfsg1",
        "errors": ["build-failed the image was not built"],
    }


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (f"NCF-TUI: model-sha256 {SHA} model.pth", ("model-sha256", SHA)),
        (f"  NCF-TUI: model-sha256 {SHA.upper()} model.pth", ("model-sha256", SHA)),
        ("NCF-TUI: model-sha256 1234 model.pth", None),
        (f"NCF-TUI: image-digest {DIGEST}", ("image-digest", DIGEST)),
        ("NCF-TUI: image-digest sha256:zz", None),
        (f"NCF-TUI: image-uri {URI}", ("image-uri", URI)),
        ("NCF-TUI: image-uri not-an-ecr-uri", None),
        ("NCF-TUI: error model-not-found nothing at s3://b/p/", ("error", "model-not-found nothing at s3://b/p/")),
        ("NCF-TUI: something-else value", None),
        ("NCF-TUI:", None),
        (f"echo NCF-TUI: model-sha256 {SHA}", None),
    ],
)
def test_parse_ncf_line(line: str, parsed: tuple[str, str] | None) -> None:
    assert parse_ncf_line(line) == parsed


def test_a_saved_position_survives_json() -> None:
    import json

    pos = LogPosition(token="f/1", timestamp=5, tail=[(5, 6, "a"), "event-id-7"])
    again = LogPosition.from_dict(json.loads(json.dumps(pos.to_dict())))
    assert again == pos
    values = BuildValues()
    assert not values.update("plain line") and values.as_dict()["model_sha256"] is None


def test_5xx_reads_back_off_resume_from_the_token_and_never_give_up_while_the_build_runs(sandbox: Sandbox) -> None:
    """ServiceUnavailableException and bare 5xx answers: retried from the saved token, nothing lost or twice,
    and no give-up while the writer is still writing (give_up_after only counts once it is complete)."""
    sandbox.reset("logs-5xx")
    writer = Writer(sandbox)
    # A zero give-up while the writer writes: any failure would end a follower that gave up while running.
    follower, lines, _ = follow(sandbox, fast=0.05, give_up_after=0.0)
    follower.start()
    writer.run(bursts=16, pause=0.05).join(30)
    follower.give_up_after = 60.0  # once complete, a long outage may end it; this one is short
    follower.complete()
    assert follower.join(30)
    assert follower.error is None
    assert lines == writer.written
    assert follower.stats.server_errors > 0
    assert sandbox.fault_counts["logs_5xx"] == follower.stats.server_errors


def test_lines_readable_only_after_completion_are_waited_for_until_the_last_one(sandbox: Sandbox) -> None:
    """Ingestion lag: the writer's last lines arrive after complete(); the follower reads on until the line
    the writer ends with, instead of stopping after two empty reads."""
    writer = Writer(sandbox)
    writer.create()
    writer.burst(20)
    follower, lines, _ = follow(sandbox, fast=0.05, final_wait=30.0)
    follower.start()
    follower.complete(final=lambda line: line == "the end")
    late = threading.Event()

    def put_late() -> None:
        # The lagging lines: put well after a follower without a final line would have stopped (2 reads).
        late.wait(1.0)
        writer.burst(5)
        writer.client.put_log_events(
            logGroupName=GROUP,
            logStreamName=STREAM,
            logEvents=[{"timestamp": int(time.time() * 1000), "message": "the end\n"}],
        )
        writer.written.append("the end")

    thread = threading.Thread(target=put_late, daemon=True)
    thread.start()
    assert follower.join(30)
    thread.join(5)
    assert lines == writer.written
    assert follower.stats.final_seen and not follower.stats.final_missing
    assert follower.stats.empty_reads > follower.drain_reads, "it read on past the usual drain"


def test_a_last_line_that_never_comes_ends_the_wait_and_says_so(sandbox: Sandbox) -> None:
    writer = Writer(sandbox)
    writer.create()
    writer.burst(3)
    follower, lines, _ = follow(sandbox, fast=0.05, final_wait=0.5)
    follower.complete(final=lambda line: line == "never written")
    follower.run()
    assert lines == writer.written
    assert follower.stats.final_missing
