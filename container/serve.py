#!/usr/bin/env python3
"""Entry point of the inference image: `serve [--model-dir DIR] [--port N]`.

SageMaker starts a bring-your-own container as `docker run IMAGE serve`; the Dockerfile's exec-form
ENTRYPOINT runs this file, so the same command line works in the image, on a laptop and in the tests.
The master process only checks the model directory and names the runtime; workers load the model.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ncf_serve.app import log_event
from ncf_serve.model import ModelDirError, check_model_dir, file_sha256, model_file, torch_threads_default

RUNTIME_TEXT = {
    "torchscript": "TorchScript (torch.jit.load; no Neo runtime importable)",
    "neo-pytorch": "Neo PyTorch runtime (neopytorch + torch.jit.load)",
    "dlr": "Neo DLR runtime (dlr.DLRModel)",
}


def _env_int(name: str, default: int, low: int = 1) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"serve: {name}={raw!r} is not an integer") from None
    if value < low:
        raise SystemExit(f"serve: {name}={value} must be at least {low}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="serve", description="Serve the NCF model (SageMaker contract).")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"], help="only 'serve'")
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/model"))
    parser.add_argument("--port", type=int, default=None, help="default $SAGEMAKER_BIND_TO_PORT or 8080")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default all interfaces)")  # noqa: S104
    parser.add_argument("--workers", type=int, default=None, help="default $SAGEMAKER_MODEL_SERVER_WORKERS or cores")
    parser.add_argument("--threads", type=int, default=None, help="threads per worker (default 4)")
    args = parser.parse_args(argv)
    if args.port is None:
        args.port = _env_int("SAGEMAKER_BIND_TO_PORT", 8080)
    if not 0 < args.port < 65536:
        parser.error(f"port {args.port} is not in 1..65535")
    if args.workers is None:
        args.workers = _env_int("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1)
    if args.threads is None:
        args.threads = _env_int("NCF_SERVE_THREADS", 4)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        sidecar, runtime = check_model_dir(args.model_dir)
    except ModelDirError as exc:
        print(f"serve: cannot serve: {exc}", file=sys.stderr)
        return 2
    from ncf_serve.server import ServeOptions, run

    options = ServeOptions(
        model_dir=args.model_dir,
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        torch_threads=_env_int("NCF_TORCH_THREADS", torch_threads_default(args.workers)),
        max_body=_env_int("NCF_MAX_BODY_BYTES", 1 << 20),
        max_pairs=_env_int("NCF_MAX_PAIRS", 10_000),
        graceful_timeout=_env_int("NCF_GRACEFUL_TIMEOUT", 8, low=0),
        access_log=os.environ.get("NCF_ACCESS_LOG", "1") not in ("0", "false", "off"),
    )
    compiled = model_file(args.model_dir)
    actual_sha = file_sha256(compiled) if compiled.is_file() else ""
    log_event(
        "runtime",
        runtime=runtime,
        message=f"serving {args.model_dir} with {RUNTIME_TEXT[runtime]}",
        variant=sidecar.variant,
        compiled=sidecar.compiled,
        model_sha256=actual_sha,
        workers=options.workers,
        threads=options.threads,
        torch_threads=options.torch_threads,
        port=options.port,
    )
    if sidecar.model_sha256 and actual_sha and sidecar.model_sha256 != actual_sha:
        log_event(
            "warning",
            message=f"{compiled.name} sha256 differs from the sidecar's model_sha256",
            sidecar_sha256=sidecar.model_sha256,
        )
    run(options, sidecar, runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
