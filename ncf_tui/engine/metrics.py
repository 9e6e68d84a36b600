"""Ranking metrics of the NCF protocol on plain numpy arrays: ROC AUC, HR@k and top-k shares.

The variants measure their fidelity with them and the sample checkpoint records its HR@10 with them; they
live here, apart from both, so neither module imports the other for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

TOP_K = 10

SCORE_NOISE = 1e-6
"""Score differences below this are float32 rounding, not a different model.

A float32 score in [0, 1] has a step (ulp) of at most 6e-8, and two variants that compute the same function
through other operators (or the same operators on another CPU's vector kernels, or another thread count) sum
in another order and land a few steps apart: 1.2e-07 on one machine and 2.7e-07 on another, for the same
variant of the same checkpoint. Below this they are shown as ``<1e-06`` and rank as equal, so neither the
screen nor the chosen variant depends on the machine.
"""


def score_diff_text(diff: float) -> str:
    """A max |score difference| for a person: two significant figures, ``<1e-06`` within rounding, and
    ``0`` only where the scores are the same numbers (the original against itself)."""
    if diff == 0:
        return "0"
    return f"<{SCORE_NOISE:.0e}" if diff < SCORE_NOISE else f"{diff:.2g}"


def faithfulness_key(top10_overlap: float, max_abs_diff: float) -> tuple[float, float]:
    """Sort key part, most faithful first: top-10 overlap, then the score difference (to two figures, and
    none at all within rounding, see SCORE_NOISE)."""
    return (-round(top10_overlap, 4), 0.0 if max_abs_diff < SCORE_NOISE else float(f"{max_abs_diff:.2g}"))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC via the rank-sum formula (ties share their average rank)."""
    import numpy as np

    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(sorted_scores):
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def hit_rate(scores: np.ndarray, users: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> float:
    """HR@k over per-user groups of one positive and its sampled negatives (the NCF protocol)."""
    import numpy as np

    boundaries = np.flatnonzero(np.diff(users)) + 1
    hits = 0
    groups = np.split(np.arange(len(users)), boundaries)
    for idx in groups:
        s, lab = scores[idx], labels[idx]
        pos = np.flatnonzero(lab > 0.5)
        if len(pos) != 1:
            continue
        # Rank = how many other items score at least as high as the positive: ties count against it, so a
        # variant whose scores saturate to one value cannot look perfect.
        if int((s >= s[pos[0]]).sum()) - 1 < k:
            hits += 1
    return hits / len(groups) if groups else float("nan")


def top_k_shares(scores: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Each item's chance of being in the top ``k`` of ``scores`` when ties are broken at random.

    Items above the k-th best score are in (1.0); the items tied at it share the places left, so a variant
    whose scores saturate to one value gets the same answer on every machine and thread count, where a
    sort would pick among the tied items by whatever order the arithmetic left them in.
    """
    import numpy as np

    s = np.asarray(scores)
    if k >= len(s):
        return np.ones(len(s), dtype=np.float64)
    kth = np.partition(s, len(s) - k)[len(s) - k]
    above: np.ndarray = s > kth
    tied: np.ndarray = s == kth
    shares: np.ndarray = above.astype(np.float64)
    shares[tied] = (k - int(above.sum())) / int(tied.sum())
    return shares
