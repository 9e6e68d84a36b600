"""What SageMaker Neo writes, and where ncf-tui's sidecar goes beside it (docs/CONTRACTS.md, "Neo output").

Neo writes one archive per job under OutputConfig.S3OutputLocation and reports it in
``ModelArtifacts.S3ModelArtifacts``; its name is the input archive's stem and the target
(``model-ml_c5.tar.gz``), a name AWS shows in examples but does not specify, so the rule here takes
S3ModelArtifacts when it is known and otherwise any single archive (or the single Neo-named one) under
the prefix. Inside, the compiled TorchScript is ``model.pth`` (Neo's current PyTorch examples) or
``compiled.pt`` (the developer guide's model_fn and older releases): both are taken, ``model.pth`` first.
Nothing of ours is in Neo's archive; ncf-tui writes ``ncf-model.json`` (id ranges, variant, sha256, the
FrameworkVersion sent to Neo, the tracing torch) as its own object in the same folder. ``buildspec.yml``
follows the same rules in bash.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Sequence

COMPILED_MODEL_NAMES = ("model.pth", "compiled.pt")
"""The compiled model's names inside a Neo archive, in the order they are looked for."""
SIDECAR_NAME = "ncf-model.json"
ARCHIVE_SUFFIX = ".tar.gz"
_NEO_NAME = re.compile(r"^[^/]+-[A-Za-z0-9_]+\.tar\.gz$")
"""``<input-stem>-<target>.tar.gz`` directly under the prefix, e.g. ``model-ml_c5.tar.gz``."""


def choose_archive(keys: Sequence[str], prefix: str) -> tuple[str | None, str]:
    """The archive the build takes among ``keys`` (every key listed under ``prefix/``), and why.

    One ``.tar.gz`` under the prefix: that one. Several: the single one named as Neo names its output
    directly under the prefix (an input ``model.tar.gz`` beside its ``model-ml_c5.tar.gz``). Otherwise None,
    with the reason naming what was found."""
    base = prefix.rstrip("/") + "/" if prefix else ""
    archives = [k for k in keys if k.endswith(ARCHIVE_SUFFIX)]
    if len(archives) == 1:
        return archives[0], "the only archive under the prefix"
    if not archives:
        return None, "no .tar.gz under the prefix"
    named = [k for k in archives if _NEO_NAME.match(k[len(base) :] if k.startswith(base) else k)]
    if len(named) == 1:
        return named[0], "the one archive named as Neo names its output (<input-stem>-<target>.tar.gz)"
    listed = ", ".join(archives[:5]) + (" ..." if len(archives) > 5 else "")
    return None, f"{len(archives)} archives under the prefix ({listed})"


def output_folder(neo_model_s3_uri: str) -> str:
    """The folder of the Neo output NEO_MODEL_S3_URI names (bucket/prefix, no ``s3://``, no trailing ``/``)."""
    uri = neo_model_s3_uri.strip().removeprefix("s3://").rstrip("/")
    return uri.rsplit("/", 1)[0] if uri.endswith(ARCHIVE_SUFFIX) and "/" in uri else uri


def sidecar_key(archive_or_prefix_key: str) -> str:
    """The sidecar's key: in the folder of an archive key, or inside a prefix."""
    key = archive_or_prefix_key.rstrip("/")
    if key.endswith(ARCHIVE_SUFFIX):
        key = key.rsplit("/", 1)[0] if "/" in key else ""
    return f"{key}/{SIDECAR_NAME}" if key else SIDECAR_NAME


def compiled_member(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    """The compiled model at the archive's root, by its documented names (``model.pth``, else ``compiled.pt``)."""
    members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
    for name in COMPILED_MODEL_NAMES:
        if name in members:
            return members[name]
    return None


def compiled_model_in(body: bytes) -> tuple[str, bytes] | None:
    """(file name, bytes) of the compiled model inside a Neo archive's bytes; None if neither name is there."""
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
            member = compiled_member(tar)
            if member is None:
                return None
            handle = tar.extractfile(member)
            return (member.name.removeprefix("./"), handle.read()) if handle else None
    except (tarfile.TarError, EOFError, OSError):
        return None


def extract_archive(tar: tarfile.TarFile, dest: str | os.PathLike[str]) -> None:
    """Unpack ``tar`` into ``dest`` as tarfile's ``data`` filter does: nothing outside ``dest``, no links,
    no devices. The filters came in Python 3.11.4; on an earlier 3.11 (Debian bookworm's python3 is 3.11.2)
    the archive is checked member by member first and only plain files and folders are written."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    members = tar.getmembers()
    for m in members:
        parts = m.name.replace("\\", "/").split("/")
        if m.name.startswith(("/", "\\")) or ".." in parts or not (m.isfile() or m.isdir()):
            raise tarfile.TarError(f"refused to unpack {m.name!r}: only plain files and folders inside the archive")
    tar.extractall(dest, members=members)  # noqa: S202 (every member checked above)
