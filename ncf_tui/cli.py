"""``ncf-tui``: argument parsing, mode selection and exit codes.

Only the standard library is imported at module level so that ``ncf-tui --help`` stays instant; every mode
imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _scenarios() -> tuple[str, ...]:
    """The sandbox's scenario names, from its own table (``ncf_tui.sandbox.scenarios`` imports no moto)."""
    from .sandbox.scenarios import SCENARIOS

    return tuple(SCENARIOS)


def _steps() -> tuple[str, ...]:
    """The engine's step names, from its registry (``ncf_tui.engine.steps`` imports no torch)."""
    from .engine.steps import STEPS

    return tuple(STEPS)


def _default_until() -> str:
    """The last step a plain run runs (opt-in steps such as deploy come after it only when asked)."""
    from .engine.steps import DEFAULT_STEPS

    return DEFAULT_STEPS[-1]


def scenario_name(value: str) -> str:
    """A scenario, or several joined with '+' (``logs-5xx+neo-quota``): each part must be known."""
    scenarios = _scenarios()
    parts = [p.strip().lower() for p in value.split("+")]
    unknown = [p for p in parts if p not in scenarios]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown)!s}; choose from {', '.join(scenarios)}, or join several with '+'"
        )
    return "+".join(parts)


EPILOG = """\
modes:
  ncf-tui                       interactive wizard
  ncf-tui --sandbox             the same against the embedded local AWS, bundled sample preselected
  ncf-tui --headless [--json]   non-interactive run of every step (scripts, CI)
  ncf-tui --checklist           troubleshooting checklist
  ncf-tui --teardown            delete what ncf-tui created (buckets, roles, repository), after asking

exit codes:
  0 done   2 bad input or usage   3 preflight failed (settings or IAM)
  4 no variant compiled   5 build failed   6 deploy failed   130 interrupted
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser, one argument group per concern (mode, run, aws): a new flag is one ``add_argument`` in its
    group, plus a line in ``ncf_tui.context.REFUSED`` for each front end that cannot honour it."""
    scenarios, steps = _scenarios(), _steps()
    p = argparse.ArgumentParser(
        prog="ncf-tui",
        description="Take a pruned NCF checkpoint through SageMaker Neo and AWS CodeBuild to an image in ECR.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_argument_group("mode")
    mode.add_argument("--headless", action="store_true", help="run without the interactive UI")
    mode.add_argument("--json", action="store_true", help="with --headless: one JSON event per line on stdout")
    mode.add_argument("--checklist", action="store_true", help="run the troubleshooting checklist")
    mode.add_argument(
        "--fix",
        action="store_true",
        help="with --checklist: apply the safe fixes after confirmation (--yes confirms them all)",
    )
    mode.add_argument(
        "--teardown",
        action="store_true",
        help="delete what ncf-tui created for a run (--state FILE, else the newest such run), after asking",
    )
    mode.add_argument("--sandbox", action="store_true", help="use the embedded local AWS (no account needed)")
    mode.add_argument(
        "--sandbox-scenario",
        metavar="NAME",
        type=scenario_name,
        default=None,
        help=f"sandbox fault scenario: {', '.join(scenarios)} (default healthy); join several with '+'",
    )
    run = p.add_argument_group("run")
    run.add_argument(
        "--checkpoint", type=Path, metavar="PATH", help="checkpoint file or folder (default: bundled sample)"
    )
    run.add_argument(
        "--key-map",
        type=Path,
        metavar="FILE",
        help='TOML file naming the checkpoint\'s tensors: "our name" = "theirs" (for layouts ncf-tui does not know)',
    )
    run.add_argument(
        "--gmf-norm",
        choices=("none", "l2"),
        default=None,
        help="the model's GMF embeddings: l2 (F.normalize) or none (He et al.); default: from the checkpoint",
    )
    run.add_argument(
        "--output",
        choices=("sigmoid", "logits"),
        default=None,
        help="what the model returns: a sigmoid score or raw logits (BCEWithLogitsLoss); default: from the checkpoint",
    )
    run.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        default=None,
        help="where variant archives go (default: output/models/pruned)",
    )
    run.add_argument(
        "--until",
        choices=steps,
        metavar="STEP",
        default=None,
        help=f"stop after this step: {', '.join(steps)} (default: {_default_until()})",
    )
    run.add_argument(
        "--tvm-release",
        metavar="vX.Y.Z",
        default=None,
        help="TVM release whose operator table the Neo preflight emulates (default v0.12.0)",
    )
    run.add_argument("--config", type=Path, metavar="FILE", help="TOML file of answers")
    run.add_argument("--state", type=Path, metavar="FILE", help="run state file (for --resume)")
    run.add_argument("--resume", action="store_true", help="continue the unfinished run in the state file")
    run.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="answer yes to every confirmation (setting fixes, the IAM policy, the project update)",
    )
    run.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a setting, e.g. --set IMAGE_TAG=v2 --set bucket=my-models (repeatable)",
    )
    run.add_argument(
        "--force",
        action="append",
        metavar="VARIANT",
        help="submit this variant to Neo even if the offline preflight rejects it (repeatable)",
    )
    run.add_argument(
        "--leave-running",
        action="store_true",
        help="on Ctrl-C, leave the Neo jobs and builds of this run running (default: stop them)",
    )
    run.add_argument("--deploy", action="store_true", help="after verify, serve the image from a SageMaker endpoint")
    run.add_argument("--delete-endpoint", action="store_true", help="with --deploy: delete it (and its config, model)")
    aws = p.add_argument_group("aws")
    aws.add_argument("--profile", metavar="NAME", help="AWS profile")
    aws.add_argument("--region", metavar="NAME", help="AWS region")
    aws.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint URL (a local AWS, for example)")
    return p


def _error(message: str) -> None:
    print(f"ncf-tui: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and not (args.headless or args.teardown):
        parser.error("--json goes with --headless or --teardown")
    if args.sandbox_scenario and not args.sandbox:
        parser.error("--sandbox-scenario goes with --sandbox")
    if args.delete_endpoint and not args.deploy:
        parser.error("--delete-endpoint goes with --deploy")
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from .engine.errors import NcfError

    try:
        interactive = not args.headless and os.environ.get("NCF_TUI_NO_TUI") is None and sys.stdout.isatty()
        if args.teardown:
            from .teardown_cli import run_teardown

            return run_teardown(args)
        if args.checklist and not interactive:
            from .checklist_report import run_checklist_cli

            return run_checklist_cli(args)
        if interactive:
            from .tui.app import run_tui  # Textual loads only here, so --help stays instant

            return run_tui(args)
        from .headless import run_headless

        return run_headless(args)
    except NcfError as exc:
        _error(exc.message)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return int(exc.exit_code)


if __name__ == "__main__":
    raise SystemExit(main())
