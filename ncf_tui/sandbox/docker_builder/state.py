"""What the builder keeps between commands: logins, blobs, images and tags, all under one directory.

Each `docker ...` call is a separate process (the build runs them from bash), so everything a later
command needs is a file in `NCF_SANDBOX_DOCKER_STATE`. Writes are atomic (temp file + rename) so a
reader never sees half a record. Tokens are never stored: a login keeps only the token's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

STATE_ENV = "NCF_SANDBOX_DOCKER_STATE"
DEFAULT_DIRNAME = ".ncf-sandbox-docker"


class State:
    """The state directory of one sandbox builder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.images = root / "images"

    @classmethod
    def from_env(cls) -> State:
        """`$NCF_SANDBOX_DOCKER_STATE`, else `.ncf-sandbox-docker` under the current directory."""
        raw = os.environ.get(STATE_ENV, "")
        return cls(Path(raw) if raw else Path.cwd() / DEFAULT_DIRNAME)

    def ensure(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.images.mkdir(parents=True, exist_ok=True)

    def scratch_dir(self, prefix: str) -> Path:
        """A fresh working directory inside the state dir (same filesystem, so renames are atomic)."""
        work = self.root / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=work))

    def first_use(self) -> bool:
        """True exactly once per state directory: the builder then introduces itself."""
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / "introduced"
        try:
            marker.open("x").close()
        except FileExistsError:
            return False
        return True

    # --- JSON records ---------------------------------------------------------------------------

    def read_json(self, path: Path, default: Any) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return default

    def write_json(self, path: Path, value: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(value, out, indent=2, sort_keys=True)
        Path(tmp).replace(path)

    # --- blobs ------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    def put_blob_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            self.ensure()
            handle, tmp = tempfile.mkstemp(dir=self.blobs, prefix=".tmp-")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            Path(tmp).replace(path)
        return digest

    def put_blob_file(self, source: Path) -> tuple[str, int]:
        """Move a finished file into the blob store under its sha256; return (digest, size)."""
        sha = hashlib.sha256()
        with source.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
        digest = "sha256:" + sha.hexdigest()
        size = source.stat().st_size
        self.ensure()
        source.replace(self.blob_path(digest))
        return digest, size

    # --- images and tags --------------------------------------------------------------------------

    def save_image(self, record: dict[str, Any]) -> None:
        self.write_json(self.images / (str(record["Id"]).removeprefix("sha256:") + ".json"), record)

    def load_image(self, image_id: str) -> dict[str, Any] | None:
        record = self.read_json(self.images / (image_id.removeprefix("sha256:") + ".json"), None)
        return record if isinstance(record, dict) else None

    def tags(self) -> dict[str, str]:
        value = self.read_json(self.root / "tags.json", {})
        return value if isinstance(value, dict) else {}

    def set_tag(self, reference: str, image_id: str) -> None:
        tags = self.tags()
        tags[reference] = image_id
        self.write_json(self.root / "tags.json", tags)

    def all_images(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.images.glob("*.json")) if self.images.is_dir() else []:
            record = self.read_json(path, None)
            if isinstance(record, dict):
                out.append(record)
        return out

    def find_image(self, name: str, normalized: str | None) -> dict[str, Any] | None:
        """An image by reference (normalised `name:tag`) or by (a prefix of at least 4 of) its id."""
        tags = self.tags()
        if normalized is not None and normalized in tags:
            return self.load_image(tags[normalized])
        candidate = name.removeprefix("sha256:")
        if len(candidate) >= 4 and all(c in "0123456789abcdef" for c in candidate):
            matches = [r for r in self.all_images() if str(r["Id"]).removeprefix("sha256:").startswith(candidate)]
            if len(matches) == 1:
                return matches[0]
        return None

    # --- logins -----------------------------------------------------------------------------------

    def logins(self) -> dict[str, dict[str, Any]]:
        value = self.read_json(self.root / "logins.json", {})
        return value if isinstance(value, dict) else {}

    def record_login(self, registry: str, username: str, token: str) -> None:
        logins = self.logins()
        logins[registry] = {
            "username": username,
            "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.write_json(self.root / "logins.json", logins)
