"""The WSGI application: SageMaker's `/ping` and `/invocations`, hand-written on purpose.

A framework would add a routing layer and request objects for two endpoints; a plain WSGI callable
keeps the per-request overhead to parsing the body and one forward (container/README.md explains).
Every client mistake becomes a 4xx with a JSON `{"error": ...}` naming the problem; only a fault of
the server itself is a 500, and even then the body carries no traceback.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from .model import Scorer, Sidecar

try:  # orjson is optional: faster encoding when the image has it, stdlib json otherwise.
    import orjson

    def _dumps(obj: Any) -> bytes:
        return bytes(orjson.dumps(obj))

except ImportError:

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


StartResponse = "Callable[[str, list[tuple[str, str]]], Any]"  # a string: runs on Python 3.8
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
TOP_K_MAX = 1000
_JSON_KEYS = {"user_id", "item_id", "instances", "top_k", "exclude", "candidates"}


class ClientError(Exception):
    """A request the server will not serve; `status` is the 4xx (or 503 while loading) to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ModelHolder:
    """Loads the model in a background thread so `/ping` can answer 503 while it loads.

    If loading fails the worker exits with gunicorn's boot-error code, which stops the whole server
    with the reason in the log instead of leaving an endpoint that never becomes healthy.
    """

    def __init__(self, model_dir: Path, sidecar: Sidecar, runtime: str, threads: int) -> None:
        self.scorer: Scorer | None = None
        self.ready = threading.Event()
        """Set once the model is loaded: a request that reaches a worker still loading waits on it."""
        self._args = (model_dir, sidecar, runtime, threads)

    def start(self) -> None:
        threading.Thread(target=self._load, name="ncf-model-load", daemon=True).start()

    def _load(self) -> None:
        try:
            self.scorer = Scorer(*self._args)
        except Exception as exc:
            log_event("model_load_failed", error=f"{type(exc).__name__}: {exc}", model_dir=str(self._args[0]))
            sys.stderr.flush()
            os._exit(3)  # gunicorn's WORKER_BOOT_ERROR: the master halts with "Worker failed to boot."
        self.ready.set()
        log_event("model_loaded", variant=self._args[1].variant, runtime=self._args[2], pid=os.getpid())


def log_event(event: str, **fields: Any) -> None:
    """One structured JSON line on stdout (the container's log stream)."""
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _int_field(value: Any, field: str, bounds: tuple[int, int], kind: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ClientError(400, f"{field} must be an integer, got {json.dumps(value)[:80]}")
    low, high = bounds
    if not low <= value <= high:
        raise ClientError(400, f"{field} {value} is out of range: this model knows {kind} {low}..{high}")
    return value


def _id_list(value: Any, field: str, bounds: tuple[int, int], limit: int) -> list[int]:
    if not isinstance(value, list):
        raise ClientError(400, f"{field} must be a list of item ids")
    if len(value) > limit:
        raise ClientError(400, f"{field} has {len(value)} ids; at most {limit} are allowed")
    return [_int_field(v, f"{field}[{n}]", bounds, "items") for n, v in enumerate(value)]


def _valid_pairs(instances: list[Any], sidecar: Sidecar) -> list[tuple[int, int]] | None:
    """The pairs of a well-formed batch in one pass, or None; a third of a batch-64 request's time
    went into per-field checks that only matter for producing an error message."""
    try:
        pairs = [(obj["user_id"], obj["item_id"]) for obj in instances]
    except (TypeError, KeyError):
        return None
    (ulo, uhi), (ilo, ihi) = sidecar.user_id_range, sidecar.item_id_range
    # `type(x) is int` also refuses bool, which JSON true/false decode to
    if all(type(u) is int and type(i) is int and ulo <= u <= uhi and ilo <= i <= ihi for u, i in pairs):
        return pairs
    return None


class InferenceApp:
    """The WSGI callable. Limits are per request: body bytes and pairs scored."""

    def __init__(
        self, holder: ModelHolder, max_body: int, max_pairs: int, access_log: bool = True, load_wait: float = 30.0
    ) -> None:
        self.holder = holder
        self.load_wait = load_wait
        """Seconds an invocation waits for this worker's model before it answers 503 (SageMaker's own
        invocation timeout is 60 s)."""
        self.max_body = max_body
        self.max_pairs = max_pairs
        self.access_log = access_log

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        try:
            status, content_type, body = self._route(method, path, environ)
        except ClientError as exc:
            status, content_type, body = exc.status, JSON_TYPE, _dumps({"error": exc.message})
        except Exception:
            traceback.print_exc(file=sys.stderr)
            status, content_type = 500, JSON_TYPE
            body = _dumps({"error": "internal server error; see the container log"})
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if not self._drain(environ.get("wsgi.input")):
            headers.append(("Connection", "close"))
        if status == 405:
            headers.append(("Allow", "GET" if path == "/ping" else "POST"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        if self.access_log:
            log_event(
                "access",
                method=method,
                path=path,
                status=status,
                bytes=len(body),
                ms=round((time.perf_counter() - started) * 1000, 3),
                remote=environ.get("REMOTE_ADDR", ""),
                pid=os.getpid(),
            )
        return [body]

    def _drain(self, stream: Any) -> bool:
        """Read what the request sent and the app did not need (a refused body), up to a cap.

        A keep-alive client is still writing that body; closing on it would reset the connection
        before the client reads our 4xx. Past the cap the connection is closed instead.
        """
        if stream is None:
            return True
        left = max(4 * self.max_body, 8 << 20)
        while left > 0:
            chunk = stream.read(min(left, 1 << 16))
            if not chunk:
                return True
            left -= len(chunk)
        return False

    def _route(self, method: str, path: str, environ: dict[str, Any]) -> tuple[int, str, bytes]:
        if path == "/ping":
            if method != "GET":
                raise ClientError(405, "use GET /ping")
            if self.holder.scorer is None:
                return 503, JSON_TYPE, _dumps({"error": "model is loading"})
            return 200, JSON_TYPE, b""
        if path == "/invocations":
            if method != "POST":
                raise ClientError(405, "use POST /invocations")
            return self._invoke(environ)
        raise ClientError(404, f"no such path {path!r}: use GET /ping or POST /invocations")

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        length_header = environ.get("CONTENT_LENGTH") or ""
        if length_header:
            try:
                length = int(length_header)
            except ValueError:
                raise ClientError(400, f"bad Content-Length {length_header!r}") from None
            if length > self.max_body:
                raise ClientError(413, f"body of {length} bytes is over the limit of {self.max_body} bytes")
            body: bytes = environ["wsgi.input"].read(length)
        else:  # chunked or unknown length: read one byte past the limit to detect an oversize body
            body = environ["wsgi.input"].read(self.max_body + 1)
            if len(body) > self.max_body:
                raise ClientError(413, f"body is over the limit of {self.max_body} bytes")
        if not body:
            raise ClientError(400, "empty body: send JSON or CSV to score")
        return body

    def _invoke(self, environ: dict[str, Any]) -> tuple[int, str, bytes]:
        media = (environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
        if media not in (JSON_TYPE, CSV_TYPE):
            shown = media or "none"
            raise ClientError(415, f"content type {shown!r} is not supported: use {JSON_TYPE} or {CSV_TYPE}")
        body = self._read_body(environ)
        scorer = self.holder.scorer
        if scorer is None and self.load_wait > 0:
            # /ping answers per worker: with several workers a 200 from one that has loaded can send the
            # caller (SageMaker, after its first healthy ping) to one still loading. Wait for it, bounded.
            self.holder.ready.wait(self.load_wait)
            scorer = self.holder.scorer
        if scorer is None:
            raise ClientError(503, "model is loading; retry when GET /ping answers 200")
        if media == CSV_TYPE:
            pairs = self._parse_csv(body, scorer.sidecar)
            lines = "\n".join(repr(score) for score in scorer.score_pairs(pairs))
            return 200, CSV_TYPE, (lines + "\n").encode()
        return 200, JSON_TYPE, _dumps(self._answer_json(body, scorer))

    def _pair(self, obj: Any, where: str, sidecar: Sidecar) -> tuple[int, int]:
        if not isinstance(obj, dict):
            raise ClientError(400, f"{where} must be an object with user_id and item_id")
        for key in ("user_id", "item_id"):
            if key not in obj:
                raise ClientError(400, f"{where} has no {key}")
        return (
            _int_field(obj["user_id"], f"{where}.user_id", sidecar.user_id_range, "users"),
            _int_field(obj["item_id"], f"{where}.item_id", sidecar.item_id_range, "items"),
        )

    def _answer_json(self, body: bytes, scorer: Scorer) -> dict[str, Any]:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ClientError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise ClientError(400, 'JSON body must be an object, e.g. {"user_id": 42, "item_id": 56}')
        unknown = sorted(set(payload) - _JSON_KEYS)
        if unknown:
            raise ClientError(400, f"unknown field(s) {unknown}: expected some of {sorted(_JSON_KEYS)}")
        sidecar = scorer.sidecar
        if "instances" in payload:
            instances = payload["instances"]
            if not isinstance(instances, list) or not instances:
                raise ClientError(400, "instances must be a non-empty list of {user_id, item_id} objects")
            if len(instances) > self.max_pairs:
                raise ClientError(400, f"{len(instances)} instances; at most {self.max_pairs} per request")
            if len(payload) > 1:
                raise ClientError(400, "instances cannot be combined with other fields")
            pairs = _valid_pairs(instances, sidecar)
            if pairs is None:  # something is wrong: find the first bad instance and say what
                pairs = [self._pair(obj, f"instances[{n}]", sidecar) for n, obj in enumerate(instances)]
            return {"scores": scorer.score_pairs(pairs)}
        if "top_k" in payload:
            return self._rank(payload, scorer)
        extra = sorted(set(payload) - {"user_id", "item_id"})
        if extra:
            raise ClientError(400, f"{extra} only make sense with top_k")
        return {"score": scorer.score_pairs([self._pair(payload, "body", sidecar)])[0]}

    def _rank(self, payload: dict[str, Any], scorer: Scorer) -> dict[str, Any]:
        sidecar = scorer.sidecar
        if "item_id" in payload:
            raise ClientError(400, "top_k ranks items for a user: drop item_id")
        if "user_id" not in payload:
            raise ClientError(400, "top_k needs a user_id")
        user = _int_field(payload["user_id"], "user_id", sidecar.user_id_range, "users")
        limit = min(TOP_K_MAX, sidecar.num_items)
        k = payload["top_k"]
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limit:
            raise ClientError(400, f"top_k must be an integer from 1 to {limit}, got {json.dumps(k)[:80]}")
        candidates = None
        if "candidates" in payload:
            candidates = _id_list(payload["candidates"], "candidates", sidecar.item_id_range, self.max_pairs)
            if not candidates:
                raise ClientError(400, "candidates must not be empty")
        exclude = _id_list(payload.get("exclude", []), "exclude", sidecar.item_id_range, self.max_pairs)
        ranked = scorer.top_k(user, k, candidates, exclude)
        return {"user_id": user, "items": [{"item_id": i, "score": s} for i, s in ranked]}

    def _parse_csv(self, body: bytes, sidecar: Sidecar) -> list[tuple[int, int]]:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ClientError(400, "CSV body is not UTF-8 text") from None
        rows = [line for line in text.splitlines() if line.strip()]
        if rows and rows[0].replace(" ", "").lower() == "user_id,item_id":
            rows = rows[1:]
        if not rows:
            raise ClientError(400, "CSV body has no rows: send lines of user_id,item_id")
        if len(rows) > self.max_pairs:
            raise ClientError(400, f"{len(rows)} CSV rows; at most {self.max_pairs} per request")
        pairs = []
        for number, row in enumerate(rows, start=1):
            fields = row.split(",")
            if len(fields) != 2:
                raise ClientError(400, f"CSV row {number} must be user_id,item_id, got {row[:80]!r}")
            try:
                user, item = int(fields[0]), int(fields[1])
            except ValueError:
                raise ClientError(400, f"CSV row {number} must hold two integers, got {row[:80]!r}") from None
            pairs.append(
                (
                    _int_field(user, f"CSV row {number} user_id", sidecar.user_id_range, "users"),
                    _int_field(item, f"CSV row {number} item_id", sidecar.item_id_range, "items"),
                )
            )
        return pairs
