"""The model side of the anchors' handlers (TorchServe, MMS + sagemaker-inference), for bench/serve/run.py.

It does what container/ncf_serve/model.py and app.py do with the same files, so the servers differ in the
server and not in the model: `model.pth` (the engine's variant export) loaded with `torch.jit.load`,
frozen and optimised for inference as ours is, ids range-checked against the sidecar, and
- one pair `{"user_id", "item_id"}` -> `{"score"}`,
- a batch `{"instances": [{"user_id", "item_id"}, ...]}` -> `{"scores"}` in one forward,
- `{"user_id", "top_k"}` -> the top-k over all items in one forward.
A bad request raises ValueError (or KeyError / TypeError), which the handlers turn into a 400.
Not shipped: the image serves with container/ncf_serve.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch

TOP_K_MAX = 1000


class NcfModel:
    def __init__(self, model_dir: Path, threads: int) -> None:
        torch.set_num_threads(max(1, threads))
        sidecar = json.loads((model_dir / "ncf-model.json").read_text())
        self.users = tuple(sidecar["user_id_range"])
        self.items = tuple(sidecar["item_id_range"])
        module = torch.jit.load(str(model_dir / "model.pth"), map_location="cpu").eval()
        # as container/ncf_serve/model.py does for plain TorchScript; a module that cannot be frozen is
        # served as loaded
        with contextlib.suppress(Exception):
            module = torch.jit.optimize_for_inference(torch.jit.freeze(module))
        self.module = module
        self.all_items = torch.arange(self.items[0], self.items[1] + 1, dtype=torch.float32)
        for _ in range(3):  # the shapes the requests use, so the first request pays no JIT profiling
            self.forward(torch.zeros((1, 2)))
            self.forward(torch.zeros((64, 2)))
            self.top_k(self.users[0], 10)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(batch).reshape(-1)

    def _check(self, user: Any, item: Any) -> None:
        for value, (low, high) in ((user, self.users), (item, self.items)):
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"id {value!r} is out of range {low}..{high}")

    def top_k(self, user: int, k: int) -> list[dict[str, Any]]:
        batch = torch.empty((self.all_items.numel(), 2), dtype=torch.float32)
        batch[:, 0] = float(user)
        batch[:, 1] = self.all_items
        best = torch.topk(self.forward(batch), k)
        ids = self.all_items[best.indices].to(torch.int64).tolist()
        return [{"item_id": i, "score": s} for i, s in zip(ids, best.values.tolist(), strict=True)]

    def answer(self, payload: Any) -> dict[str, Any]:
        if isinstance(payload, (bytes, bytearray, str)):
            payload = json.loads(payload)
        if not isinstance(payload, dict):
            raise ValueError("JSON body must be an object")
        if "instances" in payload:
            pairs = [(obj["user_id"], obj["item_id"]) for obj in payload["instances"]]
            for user, item in pairs:
                self._check(user, item)
            scores = self.forward(torch.tensor(pairs, dtype=torch.float32).reshape(-1, 2))
            return {"scores": scores.tolist()}
        if "top_k" in payload:
            user, k = payload["user_id"], payload["top_k"]
            self._check(user, self.items[0])
            if type(k) is not int or not 1 <= k <= min(TOP_K_MAX, self.all_items.numel()):
                raise ValueError(f"bad top_k {k!r}")
            return {"user_id": user, "items": self.top_k(user, k)}
        self._check(payload["user_id"], payload["item_id"])
        pair = torch.tensor([[payload["user_id"], payload["item_id"]]], dtype=torch.float32)
        return {"score": self.forward(pair).item()}
