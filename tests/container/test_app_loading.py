"""The WSGI app before its model has loaded, called in-process: the window is too short to hit over HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

from ncf_serve.app import InferenceApp, ModelHolder
from ncf_serve.model import check_model_dir


def call(app: InferenceApp, method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=str(len(body)),
    )
    environ["wsgi.input"] = io.BytesIO(body)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    out = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], out


def test_ping_and_invocations_answer_503_while_the_model_loads(model_dirs: dict[str, Path]) -> None:
    sidecar, runtime = check_model_dir(model_dirs["basic"])
    holder = ModelHolder(model_dirs["basic"], sidecar, runtime, threads=1)  # not started: still "loading"
    app = InferenceApp(holder, max_body=1024, max_pairs=10, access_log=False, load_wait=0)

    status, headers, body = call(app, "GET", "/ping")
    assert status.startswith("503")
    assert json.loads(body)["error"] == "model is loading"

    status, headers, body = call(app, "POST", "/invocations", b'{"user_id": 1, "item_id": 2}')
    assert status.startswith("503")
    assert "retry" in json.loads(body)["error"]
    assert headers["Content-Type"] == "application/json"


def test_an_invocation_that_reaches_a_loading_worker_waits_for_its_model(model_dirs: dict[str, Path]) -> None:
    """With several workers, /ping's 200 from one that has loaded can send the next request to one that has
    not: that request waits for the model (bounded) instead of answering 503."""
    import threading

    sidecar, runtime = check_model_dir(model_dirs["basic"])
    holder = ModelHolder(model_dirs["basic"], sidecar, runtime, threads=1)
    app = InferenceApp(holder, max_body=1024, max_pairs=10, access_log=False, load_wait=60)
    answers: list[tuple[str, bytes]] = []

    def invoke() -> None:
        status, _headers, body = call(app, "POST", "/invocations", b'{"user_id": 1, "item_id": 2}')
        answers.append((status, body))

    request = threading.Thread(target=invoke)
    request.start()  # the model is not loading yet: the request finds no scorer and waits
    holder.start()
    request.join(timeout=120)
    assert holder.ready.is_set()
    assert answers and answers[0][0].startswith("200"), answers
    assert 0.0 <= json.loads(answers[0][1])["score"] <= 1.0
