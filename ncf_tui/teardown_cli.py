"""``ncf-tui --teardown [--state FILE]``: list what ncf-tui created, ask, delete exactly that.

The run state names what the ``account`` step created; each resource is kept on the list only when its own
tags say ncf-tui made it in that run (``engine/account.teardown_plan``). Without ``--yes`` a terminal is
asked once; with no terminal the list is printed and nothing is deleted (exit 2, with the flag to pass).
``--sandbox`` is refused: the embedded account lives only as long as the process that made it (run
``python -m ncf_tui.sandbox`` and point both runs at it with ``--endpoint-url``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .engine.errors import BadInputError, ExitCode


def find_state(state: Path | None, state_dir: Path | None = None) -> Path:
    """The state file to tear down: ``--state``, else the newest run that recorded resources it created."""
    from .engine.state import default_state_dir

    if state is not None:
        if not Path(state).is_file():
            raise BadInputError(f"--state {state}: no such file")
        return Path(state)
    folder = state_dir or default_state_dir()
    for path in sorted(folder.glob("run-*.json"), reverse=True) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text("utf-8"))
        except (ValueError, OSError):
            continue
        account = (data.get("steps") or {}).get("account") if isinstance(data, dict) else None
        if isinstance(account, dict) and account.get("created") and not account.get("torn_down"):
            return path
    raise BadInputError(
        f"no run in {folder} recorded resources ncf-tui created", hint="pass --state FILE of the run that made them"
    )


def read_state(path: Path) -> Any:
    """The run state at ``path``; a file that is not one is refused and left exactly as it is."""
    from .engine.state import RunState

    try:
        return RunState.from_dict(json.loads(path.read_text("utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError, OSError, AttributeError) as exc:
        raise BadInputError(f"--state {path}: not an ncf-tui run state ({str(exc)[:100]})") from None


def run_teardown(args: argparse.Namespace, *, confirm: Any = None) -> int:
    """Tear down what the run in ``args.state`` created; ``confirm(text) -> bool`` asks (a terminal by default)."""
    from datetime import UTC, datetime

    from .engine.account import teardown, teardown_plan
    from .engine.aws import Aws, AwsTarget, resolve_region
    from .engine.state import StateStore

    if getattr(args, "sandbox", False):
        raise BadInputError(
            "--teardown cannot reach an embedded sandbox: its account ended with the run that made it",
            hint="run `python -m ncf_tui.sandbox`, and point both runs at it with --endpoint-url",
        )
    store = StateStore(find_state(args.state))
    store.lock()
    state = read_state(store.path)
    entry = state.steps.get("account") or {}
    region = resolve_region(args.region, args.profile) or str(entry.get("region") or "")
    if not region:
        raise BadInputError("no AWS region set", hint="pass --region, or set AWS_DEFAULT_REGION")
    from .engine.secrets import credentials_for

    choice = credentials_for(args.profile)
    target = AwsTarget(
        region=region,
        profile=None if choice.source == "keyring" else args.profile,
        endpoint_url=args.endpoint_url,
        credentials=choice.credentials,
    )
    aws = Aws(target)
    items = teardown_plan(aws, state.steps)
    out = sys.stdout if args.json else sys.stderr
    if args.json:
        print(json.dumps({"kind": "teardown-plan", "items": [_item(i) for i in items]}), file=out, flush=True)
    else:
        print(f"what run {state.run_id} ({store.path}) created:", file=out)
        for i in items:
            print(f"  {i.line()}", file=out)
    if not any(i.ours for i in items):
        print("nothing of ncf-tui's to delete", file=sys.stderr)
        return int(ExitCode.OK)
    if not args.yes:
        if confirm is None and not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise BadInputError("--teardown deletes the resources above", hint="pass --yes to delete them")
        ask = confirm or (lambda text: input(text).strip().lower() in ("y", "yes"))
        if not ask("delete them? [y/N] "):
            print("nothing deleted", file=sys.stderr)
            return int(ExitCode.OK)
    done = teardown(aws, items)
    entry["torn_down"] = [{**_item(i), "at": datetime.now(UTC).isoformat(timespec="seconds")} for i in done]
    state.steps["account"] = entry
    store.save(state)
    if args.json:
        print(json.dumps({"kind": "teardown", "items": [_item(i) for i in done]}), file=out, flush=True)
    else:
        for i in done:
            if i.ours:
                print(f"  {'deleted' if i.deleted else 'kept'} {i.record.kind} {i.record.name}", file=out)
    return int(ExitCode.OK)


def _item(i: Any) -> dict[str, Any]:
    return {
        "kind": i.record.kind,
        "name": i.record.name,
        "arn": i.record.arn,
        "ours": i.ours,
        "reason": i.reason,
        "written": len(i.empty),
        "foreign": i.foreign,
        "deleted": i.deleted,
    }
