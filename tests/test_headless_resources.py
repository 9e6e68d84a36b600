"""Headless's readable output names every input of the run (``ResourceEvent``), one line each."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from ncf_tui.engine.account import CREATE, ORDER, default_bucket, preflight
from ncf_tui.engine.settings import resolve_settings
from ncf_tui.headless import HumanPrinter
from tests.engine.aws_kit import aws_for


def test_the_human_printer_prints_one_line_per_resource_event(sandbox: Any, tmp_path: Any) -> None:
    sandbox.reset("empty-account")
    out = io.StringIO()
    printer = HumanPrinter(Console(file=out, width=200, force_terminal=False))
    settings = resolve_settings(flags={}, env={}, config=None, saved_dir=tmp_path, derived={})
    pre = preflight(aws_for(sandbox), settings, ORDER, emit=printer, check_rights=False)
    lines = [line for line in out.getvalue().splitlines() if CREATE in line]
    assert len(lines) == len(pre.inputs) == 4
    bucket = default_bucket(sandbox.names.account_id, sandbox.region)
    assert f"+ bucket {bucket} will be created  (S3 bucket for the models" in lines[0]
    assert "+ role ncf-tui-sagemaker-execution will be created" in lines[1]
    assert "+ role ncf-tui-codebuild-service will be created" in lines[2]
    assert "+ repository ncf-recommender will be created" in lines[3]
