"""Scenario faults injected at the HTTP layer, in front of moto: throttling, dropped log reads, 5xx
answers to log reads, and S3's 403 for a missing key when the caller may not list the bucket.

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
_ACCESS_KEY_RE = re.compile(r"Credential=([A-Z0-9]+)/")

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


def server_error_response(kind: int) -> tuple[str, list[tuple[str, str]], bytes]:
    """A 5xx from CloudWatch Logs: ``ServiceUnavailableException`` (modelled for GetLogEvents, a fault, so
    HTTP 500) or, one time in four, a bare 502/503/504 as a load balancer in front of the service sends."""
    request_id = str(uuid.uuid4())
    if kind < 3:
        body = json.dumps(
            {"__type": "ServiceUnavailableException", "message": "The service cannot complete the request."}
        ).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", "ServiceUnavailableException"),
            ("x-amzn-RequestId", request_id),
        ]
        return "500 Internal Server Error", headers, body
    return (
        "503 Service Unavailable",
        [("Content-Type", "text/html")],
        b"<html><body>503 Service Unavailable</body></html>",
    )


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
            self.logs_5xx = 0
            self.head_403 = 0

    no_list_keys: frozenset[str] = frozenset()
    """Access key ids of callers that may not s3:ListBucket (the s3-no-list scenario's caller)."""

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
        if scenario.logs_5xx_share > 0 and target in _LOG_READS:
            with self._lock:
                roll = self._rng.random()
                fail = roll < scenario.logs_5xx_share
                self.logs_5xx += fail
            if fail:
                _drain(environ)
                # Mostly the modelled error, sometimes what a load balancer in front of the service sends.
                status, headers, body = server_error_response(int(roll * 1000) % 4)
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
        if scenario.flaky_logs_after_events is not None and target in _LOG_READS:
            return self._flaky_log_read(environ, start_response, scenario.flaky_logs_after_events)
        if scenario.caller_lacks_list and self.no_list_keys and service_of(environ) == "s3":
            return self._no_list_s3(environ, start_response)
        return self._app(environ, start_response)

    def _no_list_s3(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """S3 HeadObject/GetObject: "If you don't have the s3:ListBucket permission, Amazon S3 returns an
        HTTP status code 403 Forbidden error" for a key that does not exist (404 only with ListBucket)."""
        match = _ACCESS_KEY_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        method = environ.get("REQUEST_METHOD", "")
        if match is None or match.group(1) not in self.no_list_keys or method not in ("HEAD", "GET"):
            return self._app(environ, start_response)
        if environ.get("PATH_INFO", "/").strip("/").count("/") < 1:
            return self._app(environ, start_response)  # a bucket, not an object
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body = b"".join(self._app(environ, capture))
        status = str(captured.get("status", "500"))
        if not status.startswith("404"):
            start_response(status, captured.get("headers", []))
            return [body]
        with self._lock:
            self.head_403 += 1
        request_id = str(uuid.uuid4())
        denied = (
            b""
            if method == "HEAD"
            else (
                '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                f"<Message>Access Denied</Message><RequestId>{request_id}</RequestId></Error>"
            ).encode()
        )
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        start_response("403 Forbidden", [*headers, ("Content-Length", str(len(denied)))])
        return [denied]

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
