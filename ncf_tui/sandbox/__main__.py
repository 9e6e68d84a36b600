"""`python -m ncf_tui.sandbox`: run the sandbox standalone so a user can rehearse with the aws CLI."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .names import DEFAULT_REGION
from .scenarios import SCENARIOS, get_scenario


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ncf_tui.sandbox",
        description="Serve the ncf-tui sandbox (a local AWS account on 127.0.0.1) until Ctrl-C.",
    )
    parser.add_argument("--scenario", default="healthy", help=f"one of: {', '.join(SCENARIOS)}; join several with '+'")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument("--region", default=DEFAULT_REGION, help=f"AWS region (default {DEFAULT_REGION})")
    parser.add_argument("--neo-seconds", type=float, default=None, help="how long a Neo job takes")
    parser.add_argument(
        "--prepare-docker",
        action="store_true",
        help="make the stand-in Neo base image the real-Docker builds use (once per machine, a few minutes) and exit",
    )
    return parser


def _prepare_docker(region: str) -> int:
    """Make the stand-in base image ahead of the first real-Docker build (which would otherwise make it)."""
    from ..engine.neo import neo_inference_image
    from .docker_engine import ensure_stand_in_base, probe

    engine = probe()
    if not engine.available:
        print(f"error: {engine.reason}; nothing to prepare (builds use the fallback builder)", file=sys.stderr)
        return 3
    image = neo_inference_image(region)
    if image is None:
        print(f"error: the sagemaker SDK has no Neo PyTorch inference image for region {region}", file=sys.stderr)
        return 2
    try:
        kind = ensure_stand_in_base(image, lambda line: print(line, flush=True))
    except Exception as exc:  # debootstrap, pip or docker said why; one line, no traceback
        print(f"error: could not make the stand-in for {image}: {exc}", file=sys.stderr)
        return 1
    print(f"ready: {image} ({kind})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        scenario = get_scenario(args.scenario)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.prepare_docker:
        return _prepare_docker(args.region)
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    from .server import Sandbox

    sandbox = Sandbox(scenario, region=args.region, port=args.port, neo_seconds=args.neo_seconds)
    try:
        sandbox.start()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(f"ncf-tui sandbox ({scenario.name}: {scenario.description})", flush=True)
        print(f"endpoint: {sandbox.endpoint_url}", flush=True)
        print("# paste these lines into a shell to use the aws CLI against the sandbox:", flush=True)
        for line in sandbox.export_lines():
            print(line, flush=True)
        print("# serving until Ctrl-C", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        # What the scenario did, so a test or a rehearsal can tell a fault really happened.
        counts = sandbox.fault_counts
        print("faults: " + " ".join(f"{name}={count}" for name, count in counts.items()), flush=True)
        sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
