"""The serving benchmark's anchors (TorchServe, MMS + sagemaker-inference) answer as ncf-serve does.

bench/serve/run.py compares servers, not models: its handlers' model side (`bench/serve/anchor_model.py`)
must give the same scores and rankings as container/ncf_serve on the same export, or a ratio would
compare different work. Real torch on the engine's own export; no server runs here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from .container_kit import REPO

sys.path.insert(0, str(REPO / "bench" / "serve"))


@pytest.fixture(scope="module")
def both(model_dirs: dict[str, Path]) -> tuple[Any, Any, Any]:
    from anchor_model import NcfModel
    from ncf_serve.model import Scorer, check_model_dir

    model_dir = model_dirs["full_manual_norm"]
    sidecar, runtime = check_model_dir(model_dir)
    return NcfModel(model_dir, threads=1), Scorer(model_dir, sidecar, runtime, threads=1), sidecar


def test_pairs_and_batches_score_as_ncf_serve(both: tuple[Any, Any, Any]) -> None:
    anchor, scorer, sidecar = both
    users, items = sidecar.num_users, sidecar.num_items
    pairs = [(u % users, (u * 7 + 3) % items) for u in range(0, 640, 10)]
    batch = anchor.answer({"instances": [{"user_id": u, "item_id": i} for u, i in pairs]})["scores"]
    assert batch == scorer.score_pairs(pairs)
    single = anchor.answer(b'{"user_id": 5, "item_id": 11}')
    assert single == {"score": scorer.score_pairs([(5, 11)])[0]}


def test_top_k_ranks_as_ncf_serve(both: tuple[Any, Any, Any]) -> None:
    anchor, scorer, _ = both
    for user in (0, 17, 500):
        got = anchor.answer({"user_id": user, "top_k": 10})
        assert got["user_id"] == user
        assert [(r["item_id"], r["score"]) for r in got["items"]] == scorer.top_k(user, 10, None, [])


@pytest.mark.parametrize(
    "payload",
    [
        {"user_id": 10**6, "item_id": 1},
        {"user_id": 1, "item_id": -1},
        {"user_id": True, "item_id": 1},
        {"user_id": 1, "top_k": 0},
        {"instances": [{"user_id": 1}]},
        [1, 2],
    ],
)
def test_bad_requests_are_refused_as_ncf_serve_refuses_them(both: tuple[Any, Any, Any], payload: Any) -> None:
    anchor, _, _ = both
    with pytest.raises((ValueError, KeyError, TypeError)):
        anchor.answer(payload)
