"""The inference server as a real process on loopback, against every variant the engine packages."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import torch

from tests.waits import wait_for

from .container_kit import SERVE, SERVED_VARIANTS, Server, free_port, start_server


def sidecar_of(model_dir: Path) -> dict[str, Any]:
    sidecar: dict[str, Any] = json.loads((model_dir / "ncf-model.json").read_text())
    return sidecar


def reference_scores(model_dir: Path, pairs: list[tuple[int, int]]) -> list[float]:
    """What the traced model says, loaded here independently of the server."""
    path = next(p for p in (model_dir / "model.pth", model_dir / "compiled.pt") if p.is_file())
    module = torch.jit.load(str(path)).eval()
    with torch.inference_mode():
        scores: list[float] = module(torch.tensor(pairs, dtype=torch.float32)).reshape(-1).tolist()
    return scores


def sample_pairs(side: dict[str, Any], n: int) -> list[tuple[int, int]]:
    users, items = side["user_id_range"], side["item_id_range"]
    return [(users[0] + (7 * k) % (users[1] + 1), items[0] + (13 * k) % (items[1] + 1)) for k in range(n)]


def test_first_log_line_names_the_runtime(servers: dict[str, Server], model_dirs: dict[str, Path]) -> None:
    import hashlib

    for name, server in servers.items():
        first = json.loads(server.log().splitlines()[0])
        assert first["event"] == "runtime"
        assert first["runtime"] == "torchscript"
        assert "TorchScript" in first["message"]
        assert first["variant"] == name
        sha = hashlib.sha256((model_dirs[name] / "model.pth").read_bytes()).hexdigest()
        assert first["model_sha256"] == sha == sidecar_of(model_dirs[name])["model_sha256"]


def test_ping_is_200_with_an_empty_body(server: Server) -> None:
    response = requests.get(f"{server.url}/ping", timeout=5)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("variant", SERVED_VARIANTS)
def test_single_pair_and_batch_match_the_model(
    variant: str, servers: dict[str, Server], model_dirs: dict[str, Path]
) -> None:
    server, model_dir = servers[variant], model_dirs[variant]
    pairs = sample_pairs(sidecar_of(model_dir), 64)
    expected = reference_scores(model_dir, pairs)

    single = server.post_json({"user_id": pairs[5][0], "item_id": pairs[5][1]})
    assert single.status_code == 200, single.text
    assert single.headers["Content-Type"] == "application/json"
    assert single.json()["score"] == pytest.approx(expected[5], abs=1e-5)
    assert 0.0 <= single.json()["score"] <= 1.0

    batch = server.post_json({"instances": [{"user_id": u, "item_id": i} for u, i in pairs]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["scores"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("variant", ["basic", "full_manual_norm"])
def test_top_k_ranks_every_item(variant: str, servers: dict[str, Server], model_dirs: dict[str, Path]) -> None:
    server, model_dir = servers[variant], model_dirs[variant]
    side = sidecar_of(model_dir)
    low, high = side["item_id_range"]
    user = side["user_id_range"][1]
    all_items = list(range(low, high + 1))
    expected = dict(zip(all_items, reference_scores(model_dir, [(user, i) for i in all_items]), strict=True))

    answer = server.post_json({"user_id": user, "top_k": 10}).json()
    assert answer["user_id"] == user
    ranked = answer["items"]
    assert len(ranked) == 10
    scores = [entry["score"] for entry in ranked]
    assert scores == sorted(scores, reverse=True)
    tenth_best = sorted(expected.values(), reverse=True)[9]
    for entry in ranked:
        assert entry["score"] == pytest.approx(expected[entry["item_id"]], abs=1e-5)
        assert entry["score"] >= tenth_best - 1e-5

    excluded = [entry["item_id"] for entry in ranked[:3]]
    without = server.post_json({"user_id": user, "top_k": 10, "exclude": excluded}).json()["items"]
    assert len(without) == 10
    assert not {e["item_id"] for e in without} & set(excluded)
    # ties (a saturated sigmoid) may swap equal items, so compare the scores in rank order
    assert [e["score"] for e in without[:7]] == pytest.approx([e["score"] for e in ranked[3:]], abs=1e-6)


def test_top_k_over_candidates(server: Server, model_dirs: dict[str, Path]) -> None:
    model_dir = model_dirs["full_manual_norm"]
    low = sidecar_of(model_dir)["item_id_range"][0]
    candidates = [low + 1, low + 4, low + 2, low + 9, low + 4]  # a duplicate is scored once
    expected = dict(zip(candidates, reference_scores(model_dir, [(3, i) for i in candidates]), strict=True))
    answer = server.post_json({"user_id": 3, "top_k": 10, "candidates": candidates, "exclude": [low + 9]})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert sorted(e["item_id"] for e in items) == [low + 1, low + 2, low + 4]
    wanted = sorted((expected[i] for i in expected.keys() - {low + 9}), reverse=True)
    assert [e["score"] for e in items] == pytest.approx(wanted, abs=1e-5)


def test_csv_rows_score_one_per_line(server: Server, model_dirs: dict[str, Path]) -> None:
    pairs = sample_pairs(sidecar_of(model_dirs["full_manual_norm"]), 5)
    expected = reference_scores(model_dirs["full_manual_norm"], pairs)
    body = "user_id,item_id\n" + "".join(f"{u},{i}\r\n" for u, i in pairs)
    response = server.post(body, "text/csv; charset=utf-8")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/csv"
    lines = response.text.splitlines()
    assert [float(x) for x in lines] == pytest.approx(expected, abs=1e-5)


BIG = 10**6

J = "application/json"

BAD_REQUESTS = [
    # (name, content type, body, status, words the error must contain)
    ("malformed json", J, b'{"user_id": 1,', 400, "not valid JSON"),
    ("json array", J, b"[1, 2]", 400, "must be an object"),
    ("unknown field", J, b'{"user_id": 1, "itemid": 2}', 400, "unknown field"),
    ("string id", J, b'{"user_id": "1", "item_id": 2}', 400, "user_id must be an integer"),
    ("float id", J, b'{"user_id": 1.5, "item_id": 2}', 400, "must be an integer"),
    ("bool id", J, b'{"user_id": true, "item_id": 2}', 400, "must be an integer"),
    ("user out of range", J, b'{"user_id": 1000000, "item_id": 2}', 400, "out of range"),
    (
        "negative item",
        J,
        b'{"user_id": 1, "item_id": -1}',
        400,
        "item_id -1 is out of range",
    ),
    ("missing item", J, b'{"user_id": 1}', 400, "has no item_id"),
    ("empty instances", J, b'{"instances": []}', 400, "non-empty list"),
    (
        "bad instance",
        J,
        b'{"instances": [{"user_id": 1, "item_id": 2}, {"user_id": 1, "item_id": 1000000}]}',
        400,
        "instances[1].item_id",
    ),
    ("top_k zero", J, b'{"user_id": 1, "top_k": 0}', 400, "top_k must be an integer from 1"),
    ("top_k huge", J, b'{"user_id": 1, "top_k": 1000000}', 400, "top_k must be"),
    ("top_k text", J, b'{"user_id": 1, "top_k": "10"}', 400, "top_k must be"),
    ("top_k no user", J, b'{"top_k": 5}', 400, "needs a user_id"),
    ("top_k with item", J, b'{"user_id": 1, "item_id": 2, "top_k": 5}', 400, "drop item_id"),
    (
        "exclude out of range",
        J,
        b'{"user_id": 1, "top_k": 5, "exclude": [1000000]}',
        400,
        "exclude[0]",
    ),
    (
        "candidates empty",
        J,
        b'{"user_id": 1, "top_k": 5, "candidates": []}',
        400,
        "candidates",
    ),
    (
        "exclude without top_k",
        J,
        b'{"user_id": 1, "item_id": 2, "exclude": [3]}',
        400,
        "top_k",
    ),
    ("wrong content type", "text/plain", b"1,2", 415, "text/plain"),
    ("no content type", "", b'{"user_id": 1, "item_id": 2}', 415, "not supported"),
    ("csv three fields", "text/csv", b"1,2\n1,2,3\n", 400, "CSV row 2"),
    ("csv words", "text/csv", b"a,b\n", 400, "two integers"),
    ("csv out of range", "text/csv", b"1,1000000\n", 400, "out of range"),
    ("csv not utf-8", "text/csv", b"\xff\xfe1,2\n", 400, "not UTF-8"),
    ("empty body", J, b"", 400, "empty body"),
    (
        "body over limit",
        J,
        b'{"instances": [' + b" " * (1 << 20) + b"]}",
        413,
        "over the limit",
    ),
]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [r[1:] for r in BAD_REQUESTS],
    ids=[r[0] for r in BAD_REQUESTS],
)
def test_bad_requests_get_a_clear_4xx(server: Server, content_type: str, body: bytes, status: int, words: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if not content_type:
        headers["Content-Type"] = ""
    response = server.session.post(f"{server.url}/invocations", data=body, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert words in response.json()["error"]
    assert "Traceback" not in response.text
    # and the server keeps serving
    assert server.post_json({"user_id": 1, "item_id": 2}).status_code == 200


def test_chunked_body_over_the_limit_is_refused(server: Server) -> None:
    chunks = (b"1,2\n" * 4096 for _ in range(80))  # no Content-Length: requests sends it chunked
    response = requests.post(f"{server.url}/invocations", data=chunks, headers={"Content-Type": "text/csv"}, timeout=30)
    assert response.status_code == 413
    assert "over the limit" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/invocations", 405), ("POST", "/ping", 405), ("GET", "/nope", 404), ("DELETE", "/ping", 405)],
)
def test_wrong_method_or_path(server: Server, method: str, path: str, status: int) -> None:
    response = requests.request(method, f"{server.url}{path}", timeout=5)
    assert response.status_code == status
    assert response.json()["error"]


def test_access_log_lines_are_structured(server: Server) -> None:
    server.post_json({"user_id": 2, "item_id": 3})

    def access_records() -> list[dict[str, Any]]:
        lines = [line for line in server.log().splitlines() if line.startswith("{")]
        return [r for r in map(json.loads, lines) if r.get("event") == "access"]

    records = wait_for(access_records, "the access log line of the request")
    assert {"method", "path", "status", "ms", "bytes", "ts"} <= records[-1].keys()
    assert any(r["status"] == 200 and r["path"] == "/invocations" for r in records)


def test_concurrent_clients_get_their_own_answers(server: Server, model_dirs: dict[str, Path]) -> None:
    model_dir = model_dirs["full_manual_norm"]
    pairs = sample_pairs(sidecar_of(model_dir), 40)
    expected = reference_scores(model_dir, pairs)
    user = pairs[0][0]
    ranking = server.post_json({"user_id": user, "top_k": 5}).json()

    def client(offset: int) -> bool:
        with requests.Session() as session:
            for n in range(24):
                k = (offset + n) % len(pairs)
                u, i = pairs[k]
                if n % 4 == 0:
                    got = session.post(
                        f"{server.url}/invocations", json={"user_id": user, "top_k": 5}, timeout=30
                    ).json()
                    if [e["score"] for e in got["items"]] != [e["score"] for e in ranking["items"]]:
                        return False
                elif n % 4 == 1:
                    text = session.post(
                        f"{server.url}/invocations",
                        data=f"{u},{i}\n",
                        headers={"Content-Type": "text/csv"},
                        timeout=30,
                    ).text
                    if abs(float(text) - expected[k]) > 1e-5:
                        return False
                else:
                    score = session.post(
                        f"{server.url}/invocations", json={"user_id": u, "item_id": i}, timeout=30
                    ).json()["score"]
                    if abs(score - expected[k]) > 1e-5:
                        return False
                if session.get(f"{server.url}/ping", timeout=5).status_code != 200:
                    return False
        return True

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(client, range(12)))
    assert all(results)


def test_sigterm_finishes_the_request_in_flight_then_exits(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    port = free_port()
    server = start_server(model_dirs["basic"], tmp_path / "log", env={"SAGEMAKER_BIND_TO_PORT": str(port)}, port=port)
    body = b'{"user_id": 1, "item_id": 2}'
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (
            f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        sock.sendall(head + body[:10])  # the worker is now inside the request, waiting for the rest
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "Handling signal: term" in server.log(), "gunicorn to take the SIGTERM")
        sock.sendall(body[10:])
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert b'"score"' in reply
    assert server.process.wait(timeout=30) == 0
    assert "Shutting down" in server.log()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/ping", timeout=2)


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SERVE), *args], capture_output=True, text=True, timeout=60, check=False)


def test_missing_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    result = run_serve("serve", "--model-dir", str(tmp_path / "absent"), "--port", str(free_port()))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_model_file_is_a_clear_error(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "ncf-model.json").write_text((model_dirs["basic"] / "ncf-model.json").read_text())
    result = run_serve("--model-dir", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 2
    assert "neither model.pth nor compiled.pt is in" in result.stderr


@pytest.mark.parametrize(
    ("sidecar", "words"),
    [
        (None, "ncf-model.json is missing"),
        ("{not json", "not readable JSON"),
        ('{"format": "other/9"}', "format must be"),
        ('{"format": "ncf-tui/1", "num_users": 0, "num_items": 5}', "num_users must be a positive integer"),
        (
            '{"format": "ncf-tui/1", "num_users": 5, "num_items": 5, "user_id_range": [0, 9], "item_id_range": [0, 4]}',
            "exceed",
        ),
    ],
)
def test_bad_sidecar_is_a_clear_error(
    model_dirs: dict[str, Path], tmp_path: Path, sidecar: str | None, words: str
) -> None:
    (tmp_path / "model.pth").write_bytes((model_dirs["basic"] / "model.pth").read_bytes())
    if sidecar is not None:
        (tmp_path / "ncf-model.json").write_text(sidecar)
    result = run_serve("serve", "--model-dir", str(tmp_path))
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_a_corrupt_model_stops_the_server_with_the_reason(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "ncf-model.json").write_text((model_dirs["basic"] / "ncf-model.json").read_text())
    (tmp_path / "model.pth").write_bytes(b"not a torchscript archive")
    server = start_server(tmp_path, tmp_path / "log", wait=False)
    assert server.process.wait(timeout=60) != 0
    failures = [json.loads(x) for x in server.log().splitlines() if '"model_load_failed"' in x]
    assert failures
    assert failures[0]["error"]


def test_unknown_command_is_refused() -> None:
    result = run_serve("train")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.parametrize("model_file", ["model.pth", "compiled.pt"])
def test_serves_the_sandbox_neo_output(model_archives: dict[str, Path], tmp_path: Path, model_file: str) -> None:
    """What the build really puts in /opt/ml/model: the Neo worker's archive unpacked as it is (the compiled
    model alone, under either documented name) and the sidecar fetched from its own path beside it."""
    import hashlib
    import io
    import tarfile

    from ncf_tui.engine.artifact import extract_archive
    from ncf_tui.sandbox.neo import compile_archive

    from ..neo_kit import traced_parts

    archive, _compiler = compile_archive(
        model_archives["full_manual_norm"].read_bytes(), '{"input0": [1, 2]}', "PYTORCH", model_file
    )
    model_dir = tmp_path / "model"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        extract_archive(tar, model_dir)
    assert sorted(p.name for p in model_dir.iterdir()) == [model_file]
    _traced, meta = traced_parts(model_archives["full_manual_norm"])
    sha = hashlib.sha256((model_dir / model_file).read_bytes()).hexdigest()
    meta.update(compiled=True, model_file=model_file, model_sha256=sha)
    (model_dir / "ncf-model.json").write_text(json.dumps(meta))
    server = start_server(model_dir, tmp_path / "log")
    try:
        first = json.loads(server.log().splitlines()[0])
        assert first["compiled"] is True and first["model_sha256"] == sha
        assert first["runtime"] == "torchscript"
        pairs = sample_pairs(sidecar_of(model_dir), 8)
        got = server.post_json({"instances": [{"user_id": u, "item_id": i} for u, i in pairs]}).json()
        assert got["scores"] == pytest.approx(reference_scores(model_dir, pairs), abs=1e-5)
    finally:
        assert server.stop() == 0
