"""A real registry as ECR's data plane: Debian's `docker-registry` (CNCF Distribution) on 127.0.0.1.

When a Docker Engine builds the sandbox's images, they are pushed to this registry, which
`ecr get-authorization-token` names as `proxyEndpoint`. The ECR API calls the engine makes
(DescribeImages, BatchGetImage, ListImages, GetDownloadUrlForLayer) are answered from what the
registry holds, through its HTTP API (the OCI distribution spec), so digests and sizes are the real ones.

Docker treats registries on 127.0.0.0/8 as insecure (plain HTTP allowed) without configuration, so
the daemon pushes here as it is. The registry has no authentication: ECR checks the login token and
IAM on every push, this registry checks neither (said in docs/AWS-FIDELITY.md).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REGISTRY_BINARY = "docker-registry"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


class RegistryUnavailable(Exception):
    """The registry binary is missing or did not come up; the message says which."""


@dataclass(frozen=True)
class Manifest:
    body: bytes
    digest: str
    media_type: str

    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        return value if isinstance(value, dict) else {}


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalRegistry:
    """One `docker-registry serve` process with its storage in a temporary directory."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """`host:port`, the registry part of an image reference."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, timeout: float = 20.0) -> LocalRegistry:
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RegistryUnavailable(f"{REGISTRY_BINARY} is not installed (Debian: apt-get install docker-registry)")
        self.root = Path(tempfile.mkdtemp(prefix="ncf-sandbox-registry-"))
        self.port = _free_port(self.host)
        config = self.root / "config.yml"
        config.write_text(
            json.dumps(  # JSON is YAML; Distribution's configuration format
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {
                        "filesystem": {"rootdirectory": str(self.root / "data")},
                        "delete": {"enabled": True},
                    },
                    "http": {"addr": self.address},
                }
            )
        )
        log = (self.root / "registry.log").open("wb")
        self._proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                text = (self.root / "registry.log").read_text(errors="replace")[-400:]
                raise RegistryUnavailable(f"{REGISTRY_BINARY} exited with {self._proc.returncode}: {text}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=2) as answer:  # noqa: S310 (http on loopback)
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)  # readiness of a child process; not a test wait
        self.stop()
        raise RegistryUnavailable(f"{REGISTRY_BINARY} did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def wipe(self) -> None:
        """Forget every repository (a sandbox reset): the account starts with empty repositories again."""
        if self.root is not None:
            shutil.rmtree(self.root / "data" / "docker" / "registry" / "v2" / "repositories", ignore_errors=True)

    # ---------------------------------------------------------------------------- the HTTP API

    def _get(self, path: str, accept: str | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"{self.url}{path}", method=method)  # noqa: S310 (http on loopback)
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (http on loopback)
                return answer.status, dict(answer.headers.items()), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()

    def tags(self, repository: str) -> list[str]:
        status, _, body = self._get(f"/v2/{repository}/tags/list")
        if status != 200:
            return []
        tags = json.loads(body).get("tags") or []
        return sorted(str(t) for t in tags)

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest exactly as stored (its bytes hash to its digest), by tag or digest."""
        status, headers, body = self._get(f"/v2/{repository}/manifests/{reference}", accept=", ".join(MANIFEST_TYPES))
        if status != 200:
            return None
        lower = {k.lower(): v for k, v in headers.items()}
        digest = lower.get("docker-content-digest", "")
        media = lower.get("content-type", "") or str(json.loads(body).get("mediaType", ""))
        return Manifest(body, digest, media)

    def blob_url(self, repository: str, digest: str) -> str | None:
        status, _, _ = self._get(f"/v2/{repository}/blobs/{digest}", method="HEAD")
        return f"{self.url}/v2/{repository}/blobs/{digest}" if status == 200 else None

    def pushed_at(self, repository: str, digest: str) -> datetime:
        """When the manifest was put: the modification time of its revision link in the storage."""
        if self.root is not None:
            link = (
                self.root / "data/docker/registry/v2/repositories" / repository
                / "_manifests/revisions" / digest.replace(":", "/") / "link"
            )  # fmt: skip
            try:
                return datetime.fromtimestamp(link.stat().st_mtime, UTC)
            except OSError:
                pass
        return datetime.now(UTC)

    def images(self, repository: str) -> list[tuple[Manifest, list[str]]]:
        """Every tagged image of a repository: (manifest, its tags), one entry per digest."""
        by_digest: dict[str, tuple[Manifest, list[str]]] = {}
        for tag in self.tags(repository):
            found = self.manifest(repository, tag)
            if found is None:
                continue
            entry = by_digest.setdefault(found.digest, (found, []))
            entry[1].append(tag)
        return list(by_digest.values())


def image_size(manifest: Manifest) -> int:
    """ECR's imageSizeInBytes: the compressed layers as pushed (DescribeImages: ImageDetail)."""
    layers = manifest.json().get("layers") or []
    return sum(int(layer.get("size", 0)) for layer in layers)
