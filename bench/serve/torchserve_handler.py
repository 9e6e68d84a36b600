"""The TorchServe handler for bench/serve/run.py: what ncf-serve does, on TorchServe (not shipped).

TorchServe calls `handle(data, context)` with a list of requests (one unless the model's `batch_size` is
set), each a dict whose `body` (or `data`) is the decoded JSON of an `application/json` request, and
answers each with what the list holds at its index, JSON-encoded
(https://pytorch.org/serve/custom_service.html). The model side is `anchor_model.py`, an extra file of the
archive (TorchServe puts the model directory on `sys.path`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from anchor_model import NcfModel


class NcfHandler:
    def __init__(self) -> None:
        self.model: NcfModel | None = None
        self.initialized = False

    def initialize(self, context: Any) -> None:
        threads = int(os.environ.get("NCF_TORCH_THREADS", "1"))
        self.model = NcfModel(Path(context.system_properties["model_dir"]), threads)
        self.initialized = True

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[Any]:
        assert self.model is not None
        out: list[Any] = []
        for n, row in enumerate(data):
            body = row.get("body") if row.get("body") is not None else row.get("data")
            try:
                out.append(self.model.answer(body))
            except (ValueError, KeyError, TypeError) as exc:
                context.set_response_status(400, "Bad Request", idx=n)
                out.append({"error": f"{type(exc).__name__}: {exc}"})
        return out
