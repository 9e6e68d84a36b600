"""The seed's kind of server, as the baseline: Flask's development server, the eager PyTorch model,
one forward per request, no validation beyond what Flask does. Started by `run.py`; not for production.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from flask import Flask, jsonify, request

from ncf_tui.engine.checkpoint import load_checkpoint
from ncf_tui.engine.sample import sample_checkpoint_path
from ncf_tui.engine.variants import build_module


def create_app(variant: str, checkpoint: Path | None = None) -> Flask:
    ckpt = load_checkpoint(checkpoint or sample_checkpoint_path())
    model = build_module(variant, ckpt)
    num_items = ckpt.architecture.num_items
    app = Flask(__name__)

    @app.get("/ping")
    def ping() -> tuple[str, int]:
        return "", 200

    @app.post("/invocations")
    def invocations():  # type: ignore[no-untyped-def]
        data = request.get_json()
        with torch.no_grad():
            if "instances" in data:
                pairs = [[d["user_id"], d["item_id"]] for d in data["instances"]]
                scores = model(torch.tensor(pairs, dtype=torch.float32))
                return jsonify({"scores": scores.tolist()})
            if "top_k" in data:
                items = torch.arange(num_items, dtype=torch.float32)
                x = torch.stack([torch.full_like(items, float(data["user_id"])), items], dim=1)
                best = torch.topk(model(x), int(data["top_k"]))
                ranked = zip(best.indices.tolist(), best.values.tolist(), strict=True)
                return jsonify({"user_id": data["user_id"], "items": [{"item_id": i, "score": s} for i, s in ranked]})
            x = torch.tensor([[data["user_id"], data["item_id"]]], dtype=torch.float32)
            return jsonify({"score": model(x).item()})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variant", default="full_manual_norm")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled sample")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    # the threaded development server, as the seed ran it
    create_app(args.variant, args.checkpoint).run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
