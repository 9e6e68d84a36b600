"""The suite never touches the developer's own config, run state or AWS files, whatever they exported.

The proof runs a small test session in a subprocess, as a developer would run the suite, with
NCF_TUI_CONFIG_DIR, NCF_TUI_STATE_DIR and the AWS files exported to folders of "their own"; the inner
tests save settings and a run state where the product puts them by default, and look for credentials.
Afterwards the exported folders are still empty and the inner tests passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

INNER = """
import os
from pathlib import Path

import boto3

from ncf_tui.engine import settings, state


def test_settings_are_saved_where_the_product_saves_them() -> None:
    path = settings.saved_config_path()
    assert os.environ["NCF_TUI_CONFIG_DIR"] != os.environ["OUTER_EXPORTED_CONFIG"]
    settings.save(settings.Settings(bucket="b", sources={"bucket": "flag"}), path)
    assert settings.load(path) == {"bucket": "b"}


def test_a_run_state_is_written_where_the_product_writes_it() -> None:
    store = state.StateStore.for_run(state.new_run_id())
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text("{}", encoding="utf-8")
    assert store.path.exists()


def test_the_exported_aws_profile_and_keys_are_not_seen() -> None:
    assert "AWS_PROFILE" not in os.environ and "AWS_ACCESS_KEY_ID" not in os.environ
    assert boto3.Session().get_credentials() is None
"""


def test_an_exported_config_dir_is_never_written_by_the_suite(tmp_path: Path) -> None:
    mine = tmp_path / "developer"
    config, run_state = mine / "config", mine / "state"
    config.mkdir(parents=True)
    run_state.mkdir()
    credentials = mine / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIADEVELOPER0000000\naws_secret_access_key = x\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_inner.py").write_text(INNER, encoding="utf-8")
    (inner / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {
        **os.environ,
        "NCF_TUI_CONFIG_DIR": str(config),
        "NCF_TUI_STATE_DIR": str(run_state),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_PROFILE": "default",
        "AWS_ACCESS_KEY_ID": "AKIADEVELOPER0000001",
        "AWS_SECRET_ACCESS_KEY": "y",
        "OUTER_EXPORTED_CONFIG": str(config),
        "PYTHONPATH": str(ROOT),
    }
    # tests.conftest loaded as a plugin: the same isolation the suite's own tests get.
    plugins = ["-p", "tests.conftest", "-p", "no:xdist", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(inner / "pytest.ini"), *plugins, "-q", str(inner / "test_inner.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 passed" in done.stdout
    assert list(config.iterdir()) == [] and list(run_state.iterdir()) == []
