"""Scenario faults injected at the HTTP layer, in front of moto: throttling and dropped log reads.

Working at the WSGI layer keeps faults honest (the client sees exactly what AWS would send, shaped
per protocol so botocore classifies and retries it) and keeps them out of moto's internals.
Calls made by the sandbox's own workers carry `INTERNAL_USER_AGENT` and are never faulted: a
scenario is about what the *product* must survive.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .scenarios import Scenario

INTERNAL_USER_AGENT = "ncf-sandbox-internal"

_SCOPE_RE = re.compile(r"Credential=[^/,]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_QUERY_PROTOCOL = {"iam", "sts"}
_LOG_READS = {"Logs_20140328.GetLogEvents", "Logs_20140328.FilterLogEvents"}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def service_of(environ: dict[str, Any]) -> str:
    """The signing service of a request (from its SigV4 scope), or '' when unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION", "") or environ.get("QUERY_STRING", "")
    auth = auth.replace("%2F", "/")
    match = _SCOPE_RE.search(auth) or re.search(r"X-Amz-Credential=[^/&]+/\d{8}/([^/]+)/([^/&]+)/", auth)
    return match.group(2) if match else ""


def throttling_response(service: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """What AWS sends when it throttles `service`, in that service's protocol."""
    request_id = str(uuid.uuid4())
    if service in _QUERY_PROTOCOL:
        body = (
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
            "<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return "400 Bad Request", [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            f"<Message>Please reduce your request rate.</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        return "503 Slow Down", [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-ErrorType", "ThrottlingException"),
        ("x-amzn-RequestId", request_id),
    ]
    return "400 Bad Request", headers, body


class FaultInjector:
    """WSGI middleware that applies the current scenario's faults; `reset()` restarts its counters."""

    def __init__(self, app: WsgiApp, scenario: Scenario) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.scenario = scenario
        self.reset()

    def reset(self, scenario: Scenario | None = None) -> None:
        with self._lock:
            if scenario is not None:
                self.scenario = scenario
            self._rng = random.Random(self.scenario.throttle_seed)
            self._events_served: dict[str, int] = {}
            self._drops_left: dict[str, int] = {}
            self.throttled = 0
            self.dropped = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if INTERNAL_USER_AGENT in environ.get("HTTP_USER_AGENT", "") or environ.get("PATH_INFO", "").startswith(
            "/moto-api"
        ):
            return self._app(environ, start_response)
        scenario = self.scenario
        if scenario.throttle_share > 0:
            with self._lock:
                throttle = self._rng.random() < scenario.throttle_share
                self.throttled += throttle
            if throttle:
                _drain(environ)  # an unread body would corrupt the next request on a kept-alive connection
                status, headers, body = throttling_response(service_of(environ))
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if scenario.flaky_logs_after_events is not None and target in _LOG_READS:
            return self._flaky_log_read(environ, start_response, scenario.flaky_logs_after_events)
        return self._app(environ, start_response)

    def _flaky_log_read(self, environ: dict[str, Any], start_response: StartResponse, after: int) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            request = {}
        key = f"{request.get('logGroupName', '')}|{request.get('logStreamName', '')}"
        with self._lock:
            drop = self._drops_left.get(key, 0) > 0
            if drop:
                self._drops_left[key] -= 1
                self.dropped += 1
        if drop:
            _drop_connection(environ)
            start_response("500 Internal Server Error", [("Content-Length", "0"), ("Connection", "close")])
            return [b""]
        import io

        environ["wsgi.input"] = io.BytesIO(raw)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body = b"".join(self._app(environ, capture))
        if str(captured.get("status", "")).startswith("200"):
            try:
                served = len(json.loads(body).get("events", []))
            except ValueError:
                served = 0
            with self._lock:
                before = self._events_served.get(key, 0)
                self._events_served[key] = before + served
                if before < after <= before + served:
                    self._drops_left[key] = self.scenario.flaky_logs_drops
        return [body]


def _drain(environ: dict[str, Any]) -> None:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)


def _drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's TCP connection without an HTTP answer, as a dropped link looks."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
