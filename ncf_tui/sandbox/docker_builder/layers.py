"""Layers, image config and manifest, byte-exact and reproducible.

A layer is an uncompressed tar (`application/vnd.docker.image.rootfs.diff.tar`) of one COPY/ADD's
files: entries sorted by path, mtime 0, owner from `--chown` (else root) with empty names, so the
same files always give the same digest, and that digest is both the layer's `diff_id` and its
manifest digest: anyone can check it is the sha256 of a tar of the real files. The base image's
layers are not included (the sandbox never pulls it); the config's history says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plan import FsEntry, StageState
from .state import State

LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass(frozen=True)
class Descriptor:
    """A blob as a manifest refers to it."""

    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}


def write_layer_tar(entries: Sequence[FsEntry], out: io.BufferedIOBase) -> None:
    """Write the deterministic tar of `entries` (already sorted by path) to `out`."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(entry.path.lstrip("/"))
            info.mtime = 0
            info.uid, info.gid = entry.uid, entry.gid
            info.uname = info.gname = ""
            info.mode = entry.mode
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.link
                tar.addfile(info)
            elif entry.data is not None:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                assert entry.source is not None
                info.size = entry.source.stat().st_size
                with entry.source.open("rb") as handle:
                    tar.addfile(info, handle)


def store_layer(state: State, entries: Sequence[FsEntry]) -> Descriptor:
    """Write a layer's tar into the blob store; return its descriptor."""
    work = state.scratch_dir("layer-")
    path = work / "layer.tar"
    try:
        with path.open("wb") as handle:
            write_layer_tar(entries, handle)
        digest, size = state.put_blob_file(path)
    finally:
        if path.exists():
            path.unlink()
        work.rmdir()
    return Descriptor(LAYER_MEDIA_TYPE, digest, size)


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine or "amd64")


def _created() -> str:
    """Image creation time: SOURCE_DATE_EPOCH if set (reproducible builds), else the epoch."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "")
    seconds = int(raw) if raw.isdigit() else 0
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def image_config(final: StageState, extra_labels: dict[str, str], diff_ids: Sequence[str]) -> dict[str, Any]:
    """The image config blob's content (Docker's `application/vnd.docker.container.image.v1+json`)."""
    labels = {**final.labels, **extra_labels}
    config: dict[str, Any] = {
        "Env": [f"{k}={v}" for k, v in final.env.items()],
        "Cmd": final.cmd,
        "WorkingDir": "" if final.workdir == "/" else final.workdir,
        "Entrypoint": final.entrypoint,
        "Labels": labels or None,
    }
    if final.user:
        config["User"] = final.user
    if final.exposed:
        config["ExposedPorts"] = {port: {} for port in final.exposed}
    created = _created()
    history: list[dict[str, Any]] = []
    if final.base_image:
        history.append(
            {
                "created": created,
                "created_by": f"FROM {final.base_image} "
                "(base image not pulled by the ncf-tui sandbox builder; "
                "its layers are not part of this image)",
                "empty_layer": True,
            }
        )
    for item in final.history:
        if str(item.get("created_by", "")).startswith("FROM "):
            continue
        history.append({"created": created, **item})
    return {
        "architecture": _architecture(),
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": history,
    }


def config_bytes(config: dict[str, Any]) -> bytes:
    """Compact JSON as Go's encoding/json writes it; the image id is the sha256 of these bytes."""
    return json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_bytes(config: Descriptor, layers: Sequence[Descriptor]) -> bytes:
    """Docker image manifest v2 schema 2, indented with three spaces as the Docker engine writes it."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config.as_json(),
        "layers": [layer.as_json() for layer in layers],
    }
    return json.dumps(manifest, indent=3).encode()


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()
