"""Follow one CloudWatch Logs stream: every line once, in order, fast while it flows, and stop when done.

Why not `aws logs tail --follow`: it polls every 5 s with FilterLogEvents from the newest timestamp and
drops repeats by event id at that timestamp, so lines show up seconds late. Here GetLogEvents'
``nextForwardToken`` is the position: a page is only consumed after it arrived, so a dropped connection is
retried from the same token (nothing lost, nothing twice). Should the service ever refuse a token, the
follower re-reads from the last timestamp it emitted and skips, by position, the events it already emitted
there, keyed by event id or (timestamp, ingestion time, message), never by timestamp alone (two identical
lines in the same millisecond are two lines).

Polling stays within GetLogEvents' account-wide rate quota (shared by every reader of the account): one
read every ``fast`` (0.5 s) seconds while lines arrive, which keeps a line's wait under half a second, the
same for ``patience`` quiet reads, then stretching by ``factor`` per empty read to one read every ``slow``
(5 s) seconds while the stream is idle (``polling.Backoff``). Throttling, ``ServiceUnavailableException`` and
any other 5xx back off (jittered, up to ``max_backoff``) and resume from the saved token: while the build
runs the follower never gives up; only once the build is complete does ``give_up_after`` seconds of
unbroken failure end it (``LogFollowError``).

Ending: once told the build is complete, the follower returns after ``drain_reads`` empty reads that hand
back the token they were given, but only when it has read the build's own last line (``complete(final=)``:
the last phase's ``Phase complete:`` line). CloudWatch Logs may make events readable seconds after the
build is COMPLETED, so without that line it keeps reading, for at most ``final_wait`` seconds, and says so
in ``stats.final_missing`` when the line never came.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .aws import USER_AGENT, Aws, error_code, error_message
from .errors import ExitCode, NcfError
from .events import Emit, LogEvent
from .polling import Backoff, Poller

NCF_PREFIX = "NCF-TUI:"
THROTTLE_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
)
SERVER_ERROR_CODES = frozenset(
    {
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "InternalError",
    }
)
"""5xx answers of CloudWatch Logs (ServiceUnavailableException is a modelled GetLogEvents error): transient."""
TAIL_KEYS = 10_000
"""How many keys at the newest timestamp are kept for the token-refused fallback (a bound on memory)."""

EventKey = tuple[int, int, str] | str


class LogFollowError(NcfError):
    """The log stream could not be read for long enough that following it is pointless."""

    exit_code = ExitCode.BUILD_FAILED


# ------------------------------------------------------------------------------------ NCF-TUI lines

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass
class BuildValues:
    """What the buildspec reported on ``NCF-TUI:`` lines (docs/CONTRACTS.md); None when not (yet) seen."""

    model_sha256: str | None = None
    image_uri: str | None = None
    image_digest: str | None = None
    docker_server: str | None = None
    """The Docker server version the build's docker answered with (the sandbox's fallback names itself)."""
    errors: list[str] = field(default_factory=list)

    def update(self, line: str) -> bool:
        """Take one log line; True if it was a well-formed ``NCF-TUI:`` line we know."""
        parsed = parse_ncf_line(line)
        if parsed is None:
            return False
        key, value = parsed
        if key == "model-sha256":
            self.model_sha256 = value
        elif key == "image-uri":
            self.image_uri = value
        elif key == "image-digest":
            self.image_digest = value
        elif key == "docker-server":
            self.docker_server = value
        else:
            self.errors.append(value)
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_sha256": self.model_sha256,
            "image_uri": self.image_uri,
            "image_digest": self.image_digest,
            "docker_server": self.docker_server,
            "errors": list(self.errors),
        }


def parse_ncf_line(line: str) -> tuple[str, str] | None:
    """``("model-sha256", hex)``, ``("image-uri", uri)``, ``("image-digest", "sha256:…")``,
    ``("docker-server", version)``, ``("error", "<code> <text>")``, or None for any other line (including
    malformed values)."""
    text = line.strip()
    if not text.startswith(NCF_PREFIX):
        return None
    parts = text[len(NCF_PREFIX) :].split(None, 1)
    if len(parts) < 2:
        return None
    key, rest = parts[0], parts[1].strip()
    if key == "model-sha256":
        value = rest.split()[0].lower()
        return (key, value) if _SHA256.match(value) else None
    if key == "image-uri":
        value = rest.split()[0]
        # The registry is whatever ECR's proxyEndpoint named (any host), then repository:tag.
        return (key, value) if "/" in value and ":" in value.rsplit("/", 1)[-1] else None
    if key == "docker-server":
        return (key, rest)
    if key == "image-digest":
        value = rest.split()[0].lower()
        return (key, value) if _DIGEST.match(value) else None
    if key == "error":
        return ("error", rest)
    return None


# ---------------------------------------------------------------------------------------- position


@dataclass
class LogPosition:
    """Where a follower stands in a stream; save ``to_dict()`` and pass it back to resume."""

    token: str | None = None
    timestamp: int | None = None
    tail: list[EventKey] = field(default_factory=list)
    """Keys of the events emitted at ``timestamp``, in order (for the token-refused fallback)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "timestamp": self.timestamp,
            "tail": [k if isinstance(k, str) else list(k) for k in self.tail],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogPosition:
        tail: list[EventKey] = []
        for k in data.get("tail") or []:
            tail.append(k if isinstance(k, str) else (int(k[0]), int(k[1]), str(k[2])))
        ts = data.get("timestamp")
        return cls(token=data.get("token") or None, timestamp=None if ts is None else int(ts), tail=tail)

    def copy(self) -> LogPosition:
        return LogPosition(self.token, self.timestamp, list(self.tail))

    def advance(self, key: EventKey, timestamp: int) -> None:
        if timestamp != self.timestamp:
            self.timestamp = timestamp
            self.tail = []
        if len(self.tail) < TAIL_KEYS:
            self.tail.append(key)


@dataclass(frozen=True)
class LogLine:
    """One line as read: the message without its trailing newline, and when it was read (``time.time()``)."""

    message: str
    timestamp: int
    ingestion_time: int
    read_at: float


@dataclass
class FollowStats:
    reads: int = 0
    empty_reads: int = 0
    lines: int = 0
    reconnects: int = 0
    throttled: int = 0
    replayed_skipped: int = 0
    waits_for_stream: int = 0
    server_errors: int = 0
    final_seen: bool = False
    final_missing: bool = False
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None


def event_key(event: Mapping[str, Any]) -> EventKey:
    """The identity of a log event: its id when the API gives one, else (timestamp, ingestion, message)."""
    if event.get("eventId"):
        return str(event["eventId"])
    return (int(event.get("timestamp", 0)), int(event.get("ingestionTime", 0)), str(event.get("message", "")))


def reader_client(aws: Aws) -> Any:
    """A Logs client without botocore's retries: the follower retries from its token itself, in ~0.1 s,
    instead of waiting out a jittered backoff of up to 20 s after a dropped connection."""
    from botocore.config import Config

    cfg = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra=USER_AGENT,
    )
    return aws.session.client("logs", region_name=aws.region, endpoint_url=aws.target.endpoint_url, config=cfg)


# ---------------------------------------------------------------------------------------- follower


class LogFollower:
    """Follows ``group``/``stream``; call ``run()`` (blocking) or ``start()``, then ``complete()`` when the
    writer is done. ``on_line`` sees every line; ``emit`` gets one ``LogEvent`` per line; ``on_position``
    gets a copy of the position after every page that had lines (save it to resume after a crash)."""

    def __init__(
        self,
        client: Any,
        group: str,
        stream: str,
        *,
        emit: Emit | None = None,
        on_line: Callable[[LogLine], None] | None = None,
        on_position: Callable[[LogPosition], None] | None = None,
        position: LogPosition | None = None,
        cancel: threading.Event | None = None,
        fast: float = 0.5,
        slow: float = 5.0,
        factor: float = 1.5,
        patience: int = 8,
        max_backoff: float = 10.0,
        drain_reads: int = 2,
        give_up_after: float = 120.0,
        final_wait: float = 30.0,
        limit: int | None = None,
        tail_lines: int = 200,
    ) -> None:
        self.client = client
        self.group = group
        self.stream = stream
        self.emit = emit
        self.on_line = on_line
        self.on_position = on_position
        self.position = position if position is not None else LogPosition()
        self.cancel = cancel if cancel is not None else threading.Event()
        self.fast, self.slow, self.factor, self.patience, self.max_backoff = fast, slow, factor, patience, max_backoff
        self.drain_reads = drain_reads
        self.give_up_after = give_up_after
        self.final_wait = final_wait
        self._final: Callable[[str], bool] | None = None
        self.limit = limit
        self.values = BuildValues()
        self.stats = FollowStats()
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.error: BaseException | None = None
        self._complete = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._poller = Poller(cancel=self.cancel, wake=self._wake)
        # Events the next page repeats, in order: armed only when reading by time (resume without a token,
        # token refused), never after a token, whose pages do not overlap.
        self._use_time = self.position.token is None and self.position.timestamp is not None
        self._skip: deque[EventKey] = deque(self.position.tail) if self._use_time else deque()

    # -- control

    def complete(self, final: Callable[[str], bool] | None = None) -> None:
        """The writer is done: drain what is left, then stop. ``final`` tells the writer's own last line;
        with it, the follower waits (at most ``final_wait`` s) until that line has been read."""
        if final is not None:
            self._final = final
            self.stats.final_seen = self.stats.final_seen or any(final(line) for line in self.tail)
        self._complete.set()
        self._wake.set()

    def stop(self) -> None:
        self.cancel.set()
        self._wake.set()

    def start(self) -> LogFollower:
        self._thread = threading.Thread(target=self._run_safely, name=f"logs-{self.stream}", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the follower; False if it is still running after ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run_safely(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # kept for the owner thread to re-raise
            self.error = exc

    # -- the loop

    def run(self) -> LogPosition:
        """Follow until complete and drained (or cancelled); returns the position to resume from."""
        try:
            return self._loop()
        finally:
            self.stats.ended = time.monotonic()

    def _loop(self) -> LogPosition:
        poller = self._poller = Poller(
            Backoff(self.fast, self.slow, self.factor, self.max_backoff, self.patience), self.cancel, self._wake
        )
        drained = 0  # empty reads at the same token since completion
        failing_since: float | None = None
        failures = 0  # consecutive failed reads (connection, throttling, 5xx): the backoff's exponent
        completed_at: float | None = None
        while not self.cancel.is_set():
            complete = self._complete.is_set()
            if complete and completed_at is None:
                completed_at = time.monotonic()
            sent = self.position.token
            read_started = time.monotonic()
            try:
                page = self._read()
            except Exception as exc:
                code = error_code(exc)
                failures += 1
                now = time.monotonic()
                failing_since = failing_since or now
                # While the build runs, never give up; once it is complete, give up after a long outage.
                since = max(failing_since, completed_at) if completed_at is not None else None
                if since is not None and now - since > self.give_up_after:
                    raise LogFollowError(
                        f"cannot read log stream {self.group}/{self.stream} for {self.give_up_after:.0f} s "
                        f"after the build ended: {error_message(exc)}"
                    ) from None
                if code == "ResourceNotFoundException":
                    # The stream does not exist yet (or never will, if the build failed before logging).
                    self.stats.waits_for_stream += 1
                    if complete:
                        drained += 1
                        if drained >= self.drain_reads:
                            return self.position
                        self._sleep(self.fast)
                        continue
                    poller.next_round(changed=False)
                    continue
                if code in THROTTLE_CODES or code in SERVER_ERROR_CODES or _is_server_error(exc):
                    if code in THROTTLE_CODES:
                        self.stats.throttled += 1
                    else:
                        self.stats.server_errors += 1
                    poller.failed_round()
                    continue
                if code == "InvalidParameterException" and sent is not None and not self._use_time:
                    # The token was refused: re-read from the last timestamp, skipping what was emitted there.
                    self._use_time = True
                    self._skip = deque(self.position.tail)
                    self.position.token = None
                    continue
                if _is_connection_error(exc):
                    # A new connection from the same token: at once, then 0.05 s doubling to 0.5 s apart.
                    self.stats.reconnects += 1
                    if failures > 1:
                        self._sleep(min(0.5, 0.05 * 2 ** min(failures - 2, 4)))
                    continue
                raise
            failing_since, failures = None, 0
            events = page.get("events") or []
            new_token = page.get("nextForwardToken")
            self.stats.reads += 1
            emitted = self._take(events)
            if new_token:
                self.position.token = str(new_token)
                self._use_time = False
            if emitted or events:
                if self.on_position is not None:
                    self.on_position(self.position.copy())
                drained = 0
                if complete or (self.limit is not None and len(events) >= self.limit):
                    poller.backoff.progressed()
                    continue  # the next page may already be waiting
                # Reads start ``fast`` apart (not ``fast`` after the answer): the quota counts calls per
                # second, and a slow answer then does not add its round trip to every line's wait.
                poller.next_round(changed=True, spent=time.monotonic() - read_started)
                continue
            self.stats.empty_reads += 1
            if complete:
                if new_token == sent or sent is None:
                    drained += 1
                waited = time.monotonic() - (completed_at or time.monotonic())
                if self._final is not None and not self.stats.final_seen:
                    # The build's last line is not readable yet (ingestion lag): keep reading, bounded.
                    if waited < self.final_wait:
                        self._sleep(self.fast)
                        continue
                    self.stats.final_missing = True
                    return self.position
                if drained >= self.drain_reads:
                    return self.position
                self._sleep(self.fast)
                continue
            poller.next_round(changed=False, spent=time.monotonic() - read_started)
        return self.position

    def _read(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": self.stream, "startFromHead": True}
        if self.position.token:
            kwargs["nextToken"] = self.position.token
        elif self._use_time and self.position.timestamp is not None:
            kwargs["startTime"] = self.position.timestamp
        if self.limit:
            kwargs["limit"] = self.limit
        return dict(self.client.get_log_events(**kwargs))

    def _take(self, events: Iterable[Mapping[str, Any]]) -> int:
        emitted = 0
        for event in events:
            key = event_key(event)
            if self._skip:
                # A replay repeats what was emitted, in the same order, as its first events.
                if self._skip[0] == key:
                    self._skip.popleft()
                    self.stats.replayed_skipped += 1
                    continue
                self._skip.clear()
            ts = int(event.get("timestamp", 0))
            self.position.advance(key, ts)
            message = str(event.get("message", "")).rstrip("\n")
            line = LogLine(message, ts, int(event.get("ingestionTime", 0)), time.time())
            self.stats.lines += 1
            emitted += 1
            self.tail.append(message)
            self.values.update(message)
            if self._final is not None and not self.stats.final_seen and self._final(message):
                self.stats.final_seen = True
            if self.on_line is not None:
                self.on_line(line)
            if self.emit is not None:
                self.emit(LogEvent(line=message, timestamp=ts))
        return emitted

    def _sleep(self, seconds: float) -> None:
        """Wait, but wake at once on ``complete()``/``stop()`` and within 0.1 s of an outside cancel."""
        self._poller.sleep(seconds)


def _is_server_error(exc: BaseException) -> bool:
    """A 5xx answer, modelled or not (a load balancer's 502/503/504 has no AWS error code)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and 500 <= status <= 599
    return False


def _is_connection_error(exc: BaseException) -> bool:
    import botocore.exceptions as bx

    return isinstance(exc, bx.ConnectionError | bx.HTTPClientError)


def follow_stream(
    aws: Aws,
    group: str,
    stream: str,
    emit: Emit,
    *,
    cancel: threading.Event | None = None,
    position: LogPosition | None = None,
) -> LogFollower:
    """Start a follower thread on ``group``/``stream`` (call ``complete()`` on it when the writer is done,
    then ``join()``); it reads with its own retry-free client (see ``reader_client``)."""
    return LogFollower(reader_client(aws), group, stream, emit=emit, cancel=cancel, position=position).start()
