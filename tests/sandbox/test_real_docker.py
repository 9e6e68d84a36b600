"""The sandbox with a real Docker Engine: the buildspec's docker commands run for real, the image goes to a
real registry (CNCF Distribution) that answers as ECR's data plane, and the pushed image serves.

Without a reachable engine (or without docker-registry) these tests skip with one line saying why; the
fallback builder is tested everywhere else. The one headless run is shared by the session: it builds and
pushes the image once (pushing a gigabyte of layers is most of its minute), then deploys it, so the
endpoint's `docker run` serves that same image; the stand-in base is cached in Docker's image store between
sessions on the same machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ncf_tui.sandbox.docker_engine import probe

_PROBE = probe()
_REGISTRY = __import__("shutil").which("docker-registry")
_WHY = _PROBE.reason if not _PROBE.available else ("docker-registry is not installed" if not _REGISTRY else "")
needs_docker = pytest.mark.skipif(bool(_WHY), reason=f"no real Docker here: {_WHY}")
pytestmark = [pytest.mark.slow]


def _docker(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False, timeout=600)


# ------------------------------------------------------------------ the data plane, on a tiny image


def _tiny_image(tag: str) -> None:
    """A one-file image made with `docker import` (no base, nothing pulled)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        body = b'{"hello": "registry"}\n'
        info = tarfile.TarInfo("opt/ml/model/model.pth")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    done = _docker("import", "--change", "LABEL com.ncf-tui.model.sha256=x", "-", tag, stdin=data.getvalue())
    assert done.returncode == 0, done.stderr


@needs_docker
def test_ecr_answers_from_the_real_registry(sandbox: Any) -> None:
    setup = sandbox.use_docker("real")
    try:
        registry = setup.registry
        ecr = sandbox.client("ecr")
        endpoint = ecr.get_authorization_token()["authorizationData"][0]["proxyEndpoint"]
        assert endpoint == registry.url  # where the buildspec logs in and pushes
        repo = sandbox.names.ecr_repo
        ref = f"{registry.address}/{repo}:data-plane"
        _tiny_image(ref)
        try:
            pushed = _docker("push", ref)
            assert pushed.returncode == 0, pushed.stderr
            digest = pushed.stdout.decode().strip().splitlines()[-1].split("digest: ")[1].split()[0]

            detail = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "data-plane"}])["imageDetails"][0]
            assert detail["imageDigest"] == digest
            assert detail["imageTags"] == ["data-plane"]
            assert {"imageDigest": digest, "imageTag": "data-plane"} in ecr.list_images(repositoryName=repo)["imageIds"]

            image = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": digest}])["images"][0]
            manifest = image["imageManifest"]
            assert "sha256:" + hashlib.sha256(manifest.encode()).hexdigest() == digest
            layer = json.loads(manifest)["layers"][0]
            assert detail["imageSizeInBytes"] == layer["size"]
            url = ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=layer["digest"])["downloadUrl"]
            with urllib.request.urlopen(url) as answer:
                blob = answer.read()
            assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
                assert tar.getnames() == ["opt/ml/model/model.pth"]

            missing = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "nope"}])
            assert missing["images"] == [] and missing["failures"][0]["failureCode"] == "ImageNotFound"
            with pytest.raises(ecr.exceptions.ImageNotFoundException):
                ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "nope"}])
            with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
                ecr.describe_images(repositoryName="no-such-repo")
        finally:
            _docker("image", "rm", "-f", ref)
    finally:
        sandbox.use_docker("fallback")


def test_without_an_engine_the_probe_says_why(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    code = (
        "from ncf_tui.sandbox.docker_engine import resolve_mode; "
        "mode, _, why = resolve_mode('auto'); print(mode); print(why)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    mode, why = out.splitlines()[:2]
    assert mode == "fallback"
    assert "no docker CLI" in why or "no-docker.sock" in why


# ------------------------------------------------------------------ the whole run, shared by the session


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if _WHY:
        pytest.skip(f"no real Docker here: {_WHY}")
    tmp = tmp_path_factory.mktemp("real-docker")
    env = {
        **os.environ,
        "NCF_TUI_STATE_DIR": str(tmp / "state"),
        "NCF_SANDBOX_NEO_SECONDS": "0.5",
        "NCF_SANDBOX_DOCKER": "real",
    }
    started = time.monotonic()
    since = f"{time.time() - 1:.0f}"  # Docker's event log from here on: the containers this run starts
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ncf_tui.cli",
            "--headless",
            "--sandbox",
            "--json",
            "--yes",
            "--deploy",
            "--delete-endpoint",
            "--output-dir",
            str(tmp),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    states = sorted((tmp / "state").glob("run-*.json"))
    state = json.loads(states[-1].read_text()) if states else {}
    containers = _docker(
        "events", "--since", since, "--until", f"{time.time() + 1:.0f}", "--filter", "type=container",
        "--format", "{{json .}}",
    )  # fmt: skip
    docker_events = [json.loads(line) for line in containers.stdout.decode().splitlines() if line.strip()]
    run = {
        "proc": proc,
        "events": events,
        "seconds": time.monotonic() - started,
        "state": state,
        "docker_events": docker_events,
    }
    yield run
    image = next((e for e in events if e["event"] == "image"), None)
    if image is not None:  # keep the disk tidy: the pushed tags go, the cached stand-in base stays
        repo = image["uri"].rsplit("/", 1)[-1]
        _docker("image", "rm", "-f", image["uri"], repo)
    _docker("container", "prune", "-f")  # what a failed RUN step of this build left
    _docker("image", "prune", "-f")


# xdist runs a session fixture once per worker: the tests of the one real run share a worker.
shares_the_real_run = pytest.mark.xdist_group("real-docker-run")


@needs_docker
@shares_the_real_run
def test_headless_real_docker_builds_pushes_and_serves(real_run: dict[str, Any]) -> None:
    proc, events = real_run["proc"], real_run["events"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [e["line"] for e in events if e["event"] == "log"]
    text = "\n".join(log)
    assert "Docker: the real Docker Engine builds this image" in text
    assert "only the Neo runtime differs from SageMaker's" in text  # the base is said to be a stand-in
    assert "Step 1/" in text and "RUN python -c" in text  # the classic builder's real steps, RUN included
    assert f"NCF-TUI: docker-server {_PROBE.server_version}" in text
    image = next(e for e in events if e["event"] == "image")
    assert image["uri"].startswith("127.0.0.1:")
    # the digest ECR's DescribeImages gave the verify step is the one `docker push` printed ...
    pushed = [line.split()[-1] for line in log if line.startswith("NCF-TUI: image-digest ")]
    assert pushed == [image["digest"]]
    # ... and the one Docker recorded for the pushed tag (the registry's)
    inspect = _docker("image", "inspect", "--format", "{{json .RepoDigests}}", image["uri"])
    assert inspect.returncode == 0, inspect.stderr  # `docker image ls` has it
    assert image["uri"].rsplit(":", 1)[0] + "@" + image["digest"] in json.loads(inspect.stdout)
    smoke = next(e for e in events if e["event"] == "smoke")
    assert smoke["ok"] is True, smoke
    assert 0.0 <= smoke["score"] <= 1.0
    assert '"runtime": "neo-pytorch"' in smoke["runtime"] or "neo-pytorch" in smoke["runtime"]
    done = events[-1]
    assert done["event"] == "done" and done["exit_code"] == 0
    verified = real_run["state"]["steps"]["verify"]["verified"]
    # the model was read out of the image's own layer (through GetDownloadUrlForLayer) and compared
    assert any("the model in the image equals the compiled artifact" in v and "read from layer" in v for v in verified)
    assert real_run["state"]["steps"]["verify"]["smoke"]["ok"] is True


def _repository(ref: str) -> str:
    """``host:port/name`` of an image reference, without its tag or digest."""
    name = ref.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


@needs_docker
@shares_the_real_run
def test_the_endpoint_serves_the_pushed_image_from_docker_run(real_run: dict[str, Any]) -> None:
    proc, events = real_run["proc"], real_run["events"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    endpoint = [e for e in events if e["event"] == "endpoint"]
    assert "InService" in [e["status"] for e in endpoint] and endpoint[-1]["status"] == "Deleted"
    calls = [e for e in events if e["event"] == "invocation"]
    assert [c["request"] for c in calls] == ["pair", "batch", "top_k", "latency"]
    assert all(0.0 <= s <= 1.0 for c in calls for s in c["scores"])
    # Docker's own event log: the endpoint's container was started from the image the build pushed (to this
    # run's registry; the log is the engine's, so other runs' containers are told apart by their image), and
    # removed with the endpoint (the run asked to delete it).
    image = next(e for e in events if e["event"] == "image")["uri"]
    by_action: dict[str, set[str]] = {}
    started_from: dict[str, str] = {}
    for e in real_run["docker_events"]:
        attrs = e.get("Actor", {}).get("Attributes", {})
        name = attrs.get("name", "")
        if name.startswith("ncf-sandbox-endpoint-") and _repository(attrs.get("image", "")) == _repository(image):
            by_action.setdefault(e.get("Action", e.get("status", "")), set()).add(name)
            if e.get("Action") == "start":
                started_from[name] = attrs["image"]
    assert started_from, ("no endpoint container started from", image, real_run["docker_events"][-5:])
    assert set(started_from) <= by_action.get("destroy", set())  # the container went with the endpoint
