"""``ncf-tui``: argument parsing, mode selection and exit codes.

Only the standard library is imported at module level so that ``ncf-tui --help`` stays instant; every mode
imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .engine.steps import DEFAULT_STEPS, STEPS

SCENARIOS = (
    "healthy",
    "missing-permissions",
    "boundary-denied",
    "wrong-model-uri",
    "no-privileged-mode",
    "throttling",
    "flaky-logs",
    "neo-compiled-pt",
    "logs-5xx",
    "logs-lag",
    "iam-propagation",
    "s3-no-list",
    "neo-quota",
    "build-quota",
)


def scenario_name(value: str) -> str:
    """A scenario, or several joined with '+' (``logs-5xx+neo-quota``): each part must be known."""
    parts = [p.strip().lower() for p in value.split("+")]
    unknown = [p for p in parts if p not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown)!s}; choose from {', '.join(SCENARIOS)}, or join several with '+'"
        )
    return "+".join(parts)


EPILOG = """\
modes:
  ncf-tui                       interactive wizard
  ncf-tui --sandbox             the same against the embedded local AWS, bundled sample preselected
  ncf-tui --headless [--json]   non-interactive run of every step (scripts, CI)
  ncf-tui --checklist           troubleshooting checklist

exit codes:
  0 done   2 bad input or usage   3 preflight failed (settings or IAM)
  4 no variant compiled   5 build failed   130 interrupted
"""


def build_parser() -> argparse.ArgumentParser:
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
    mode.add_argument("--sandbox", action="store_true", help="use the embedded local AWS (no account needed)")
    mode.add_argument(
        "--sandbox-scenario",
        metavar="NAME",
        type=scenario_name,
        default=None,
        help=f"sandbox fault scenario: {', '.join(SCENARIOS)} (default healthy); join several with '+'",
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
        choices=STEPS,
        metavar="STEP",
        default=None,
        help=f"stop after this step: {', '.join(STEPS)} (default: {DEFAULT_STEPS[-1]})",
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
    if args.json and not args.headless:
        parser.error("--json goes with --headless")
    if args.sandbox_scenario and not args.sandbox:
        parser.error("--sandbox-scenario goes with --sandbox")
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from .engine.errors import ExitCode, NcfError

    try:
        interactive = not args.headless and os.environ.get("NCF_TUI_NO_TUI") is None and sys.stdout.isatty()
        if args.fix and not args.checklist:
            _error("--fix goes with --checklist (the wizard and headless runs fix with --yes)")
            return int(ExitCode.BAD_INPUT)
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
