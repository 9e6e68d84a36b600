"""Layering and packaging rules that keep the product light and headless where it must be."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _engine_modules() -> list[str]:
    import ncf_tui.engine

    return [f"ncf_tui.engine.{m.name}" for m in pkgutil.iter_modules(ncf_tui.engine.__path__)]


def test_engine_never_imports_textual() -> None:
    mods = _engine_modules()
    assert "ncf_tui.engine.variants" in mods
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in mods)
    code += "import ncf_tui.engine.variants as v, ncf_tui.engine.checkpoint as c\n"
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual' or m.startswith('ncf_tui.tui')))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_import_linter_contracts_hold() -> None:
    out = subprocess.run(["lint-imports"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "broken" not in out.stdout.lower() or "0 broken" in out.stdout


def test_every_package_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "ncf_tui").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert "ncf_tui.assets" in listed


@pytest.mark.slow
def test_wheel_ships_the_sample_and_operator_tables(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("ncf_tui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ncf_tui/assets/sample_ncf_pruned.pt" in names
    assert "ncf_tui/assets/sample_ncf_pruned.heldout.npz" in names
    assert "ncf_tui/engine/data/tvm-ops/v0.12.0.txt" in names
    assert not any(n.startswith(("tests/", "assets/", "container/")) for n in names)
    # The build source, byte for byte what the checkout has (the package's symlinks were followed).
    shipped = {n.removeprefix("ncf_tui/build_source/") for n in names if n.startswith("ncf_tui/build_source/")}
    wanted = {"buildspec.yml"} | {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "container").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert wanted <= shipped, f"the wheel lacks {sorted(wanted - shipped)}"
    assert not any("__pycache__" in n for n in shipped)
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(wanted):
            assert zf.read(f"ncf_tui/build_source/{name}") == (ROOT / name).read_bytes(), name


def test_the_build_source_is_read_from_the_package() -> None:
    from ncf_tui.build_source import ITEMS, source_root
    from ncf_tui.engine.pipeline import RunOptions

    root = source_root()
    assert root.name == "build_source"
    assert root.parent.name == "ncf_tui"
    for item in ITEMS:
        assert (root / item).exists(), item
    assert (root / "buildspec.yml").read_bytes() == (ROOT / "buildspec.yml").read_bytes()
    assert RunOptions(checkpoint=Path("x")).source_root == root
