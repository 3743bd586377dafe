"""Proxy ensembles by rank aggregation, as in AZ-NAS (Lee & Ham, "AZ-NAS: Assembling Zero-Cost
Proxies for Network Architecture Search", CVPR 2024).

Each member proxy ranks the candidates (rank 1 = worst, ``n`` = best, in its own direction);
the ensemble score of candidate ``i`` is ``sum_m log(rank_m(i) / n)``: higher is better, and a
candidate must be good under every proxy to score well. A candidate any member failed on gets
no ensemble score. Scores are relative to the candidate set they were computed on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata


def log_rank_aggregate(member_scores: Mapping[str, Sequence[float | None]],
                       higher_is_better: Mapping[str, bool] | None = None) -> list[float | None]:
    """Sum of log-ranks over members; ``member_scores[proxy][i]`` is candidate ``i``'s score."""
    if not member_scores:
        raise ValueError("an ensemble needs at least one proxy")
    lengths = {len(v) for v in member_scores.values()}
    if len(lengths) != 1:
        raise ValueError("every member must score the same candidates")
    n = lengths.pop()
    valid = np.ones(n, dtype=bool)
    for values in member_scores.values():
        valid &= np.array([v is not None and np.isfinite(v) for v in values], dtype=bool)
    total = np.zeros(int(valid.sum()))
    for proxy, values in member_scores.items():
        v = np.array([values[i] for i in range(n) if valid[i]], dtype=np.float64)
        if higher_is_better is not None and not higher_is_better.get(proxy, True):
            v = -v
        total += np.log(rankdata(v, method="average") / len(v)) if len(v) else 0.0
    out: list[float | None] = [None] * n
    for slot, i in enumerate(np.flatnonzero(valid)):
        out[int(i)] = float(total[slot])
    return out
