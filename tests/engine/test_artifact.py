"""Unpacking a Neo archive: the same answer with tarfile's filters (3.11.4+) and without them (3.11.2)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from ncf_tui.engine.artifact import extract_archive

WITH_FILTERS = hasattr(tarfile, "data_filter")


def _archive(*members: tuple[str, bytes | None, str]) -> io.BytesIO:
    """A tar of (name, body, link target): body None with a target is a symlink, else a file."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, body, target in members:
            info = tarfile.TarInfo(name)
            if body is None:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    data.seek(0)
    return data


@pytest.fixture(params=["filters", "no-filters"])
def python(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test on this Python's tarfile, and as on a Python without extraction filters (before 3.11.4)."""
    if request.param == "filters" and not WITH_FILTERS:
        pytest.skip("this Python's tarfile has no extraction filters")
    if request.param == "no-filters" and WITH_FILTERS:
        monkeypatch.delattr(tarfile, "data_filter")
    return str(request.param)


def test_a_neo_archive_unpacks_its_files(python: str, tmp_path: Path) -> None:
    data = _archive(("model.pth", b"weights", ""), ("code/inference.py", b"print()", ""))
    with tarfile.open(fileobj=data) as tar:
        extract_archive(tar, tmp_path)
    assert (tmp_path / "model.pth").read_bytes() == b"weights"
    assert (tmp_path / "code" / "inference.py").read_bytes() == b"print()"


@pytest.mark.parametrize(
    "member",
    [("../escaped", b"x", ""), ("model.pth", None, "/etc/passwd"), ("model.pth", None, "../../escaped")],
    ids=["parent", "absolute-link", "link-outside"],
)
def test_a_member_that_would_leave_the_folder_is_refused(
    python: str, tmp_path: Path, member: tuple[str, bytes | None, str]
) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    with tarfile.open(fileobj=_archive(member)) as tar, pytest.raises(tarfile.TarError):
        extract_archive(tar, dest)
    assert not (tmp_path / "escaped").exists() and not (dest / "model.pth").exists()


def test_an_absolute_name_never_lands_outside_the_folder(python: str, tmp_path: Path) -> None:
    """The data filter strips the leading slash; without filters the member is refused. Either way the file
    is not written at its absolute path."""
    outside = tmp_path / "outside" / "escaped"
    dest = tmp_path / "model"
    dest.mkdir()
    with tarfile.open(fileobj=_archive((str(outside), b"x", ""))) as tar:
        try:
            extract_archive(tar, dest)
        except tarfile.TarError:
            assert python == "no-filters"
        else:
            assert python == "filters" and (dest / str(outside).lstrip("/")).read_bytes() == b"x"
    assert not outside.exists()
