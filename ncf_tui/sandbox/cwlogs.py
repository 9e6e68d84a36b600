"""Build output to CloudWatch Logs as it is produced: ordered, batched, with the build role's rights.

Lines are queued by the build worker and a small flusher thread sends them with PutLogEvents every
`interval` seconds (or sooner when a batch fills), so a follower sees output within a fraction of
a second and in order. Messages end with a newline, as CodeBuild's own log events do.

With ``lag`` (the logs-lag scenario) each batch is sent ``lag`` seconds after its lines were written, and
``close()`` does not wait for the last ones: as CloudWatch Logs may make events readable seconds after they
happened, the build is COMPLETED while its last lines are not readable yet.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ncf_tui.engine.aws import error_code, error_message

from .build_failure import BuildFailure

MAX_BATCH = 1000


class LogSink:
    """Sends one build's lines to `/aws/codebuild/<project>` stream `<build-uuid>`."""

    def __init__(
        self,
        client: Any,
        group: str,
        stream: str,
        interval: float = 0.2,
        *,
        role: str = "",
        build_arn: str = "",
        lag: float = 0.0,
    ) -> None:
        self._role = role
        self._build_arn = build_arn
        self._client = client
        self.group = group
        self.stream = stream
        self._interval = interval
        self._pending: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.sent = 0
        self.lag = lag
        self.late = 0
        """Lines sent after ``close()`` returned (readable only after the build ended)."""
        self._closed_at: float | None = None

    def open(self) -> None:
        """Create the group (if needed) and the stream; a denial fails the build as CodeBuild does."""
        try:
            self._client.create_log_group(logGroupName=self.group)
        except Exception as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise BuildFailure("ACCESS_DENIED", _denied(self._role, self._build_arn or self.group, exc)) from None
        try:
            self._client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        except Exception as exc:
            raise BuildFailure("ACCESS_DENIED", _denied(self._role, self._build_arn or self.group, exc)) from None
        self._thread = threading.Thread(target=self._flush_loop, name=f"logs-{self.stream}", daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        event = {"timestamp": int(time.time() * 1000), "message": text + "\n"}
        with self._cond:
            self._pending.append(event)
            if len(self._pending) >= MAX_BATCH:
                self._cond.notify()

    def close(self) -> None:
        """Send what is left and stop the flusher."""
        with self._cond:
            self._closed = True
            self._closed_at = time.monotonic()
            self._cond.notify()
        if self._thread is not None and self.lag <= 0:
            self._thread.join(10.0)

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                if not self._closed and len(self._pending) < MAX_BATCH:
                    self._cond.wait(self._interval)
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                done = self._closed and not self._pending
            if batch and self.lag > 0:
                # Readable ``lag`` seconds after the first line of the batch was written.
                due = batch[0]["timestamp"] / 1000 + self.lag
                time.sleep(max(0.0, due - time.time()))
            if batch and self.error is None:
                try:
                    self._client.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=batch)
                    self.sent += len(batch)
                    if self._closed_at is not None and self.lag > 0:
                        self.late += len(batch)
                except Exception as exc:
                    self.error = str(exc)
            if done:
                return


def _denied(role: str, build: str, exc: Exception) -> str:
    """CodeBuild's own wording (as quoted in aws/aws-cdk#12179): the role, the build's ARN, then IAM's message."""
    message = error_message(exc)
    return (
        f"Service role {role} does not allow AWS CodeBuild to create Amazon CloudWatch Logs log streams for build "
        f"{build}. Error message: {message}"
    )
