"""Proxy ensembles by rank aggregation, as in AZ-NAS (Lee & Ham, "AZ-NAS: Assembling Zero-Cost
Proxies for Network Architecture Search", CVPR 2024).

Each member proxy ranks the candidates (rank 1 = worst, ``n`` = best, in its own direction);
the ensemble score of candidate ``i`` is ``sum_m w_m log(rank_m(i) / n)``: higher is better, and
a candidate must be good under every proxy to score well. AZ-NAS sums with equal weights
(``w_m = 1``, its Eq. 9); a weight ``w_m > 1`` lets member ``m``'s rank count more
(:data:`RANKING_ENSEMBLE`, weights chosen on one half of the NAS-Bench-201 score atlas and
measured on the other). A candidate any member failed on gets no ensemble score. Scores are
relative to the candidate set they were computed on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata


def log_rank_aggregate(member_scores: Mapping[str, Sequence[float | None]],
                       higher_is_better: Mapping[str, bool] | None = None,
                       weights: Mapping[str, float] | None = None) -> list[float | None]:
    """Weighted sum of log-ranks over members; ``member_scores[proxy][i]`` is candidate ``i``'s
    score, ``weights[proxy]`` the member's weight (1 for a member not named; positive)."""
    if not member_scores:
        raise ValueError("an ensemble needs at least one proxy")
    weight = {p: float((weights or {}).get(p, 1.0)) for p in member_scores}
    if any(not (np.isfinite(w) and w > 0) for w in weight.values()):
        raise ValueError(f"ensemble weights must be positive and finite, got {weight}")
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
        total += weight[proxy] * np.log(rankdata(v, method="average") / len(v)) if len(v) else 0.0
    out: list[float | None] = [None] * n
    for slot, i in enumerate(np.flatnonzero(valid)):
        out[int(i)] = float(total[slot])
    return out


#: The default score of a search: the log-rank ensemble of synflow, eznas and params, equal
#: weights. Its searches find the best architectures measured (docs/RESULTS.md: the 99th
#: percentile with the KNAS procedure on all three data sets; replayed on the score atlas over
#: 300 seeds, 0.02-0.04 points above :data:`RANKING_ENSEMBLE`'s). Member -> weight.
DEFAULT_ENSEMBLE: dict[str, float] = {"synflow": 1.0, "eznas": 1.0, "params": 1.0}

#: The best ranking of the whole space: the same members with the weights chosen on one random
#: half of the NAS-Bench-201 score atlas (CIFAR-10; ``benchmarks/atlas_correlation.py``) and
#: measured on the other half: held-out Kendall tau 0.763, against 0.752 with equal weights and
#: 0.597 for the best single proxy (docs/RESULTS.md, "Rank correlations over the whole space").
#: It ranks the space better as a whole, but its top is not better for a search: use it to rank
#: or export a population (``knas search --proxies synflow=0.75,eznas=1.5,params``).
RANKING_ENSEMBLE: dict[str, float] = {"synflow": 0.75, "eznas": 1.5, "params": 1.0}


def parse_members(text: str) -> tuple[list[str], dict[str, float]]:
    """``"synflow=0.75,eznas=1.5,params"`` -> the member names in order and the weights given
    (a member without ``=weight`` keeps weight 1 and is not in the dict). Raises ``ValueError``
    naming the item that is not ``NAME`` or ``NAME=NUMBER``; the names and values are checked
    where they are used (:class:`~knas_core.search.config.SearchConfig`).

    >>> parse_members("synflow=0.75, eznas=1.5, params")
    (['synflow', 'eznas', 'params'], {'synflow': 0.75, 'eznas': 1.5})
    """
    names: list[str] = []
    weights: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, weight = (s.strip() for s in item.partition("="))
        if not name or (sep and not weight):
            raise ValueError(f"{item!r}: write a proxy as NAME or NAME=WEIGHT, e.g. eznas=1.5")
        names.append(name)
        if sep:
            try:
                weights[name] = float(weight)
            except ValueError:
                raise ValueError(f"{item!r}: the weight {weight!r} is not a number") from None
    return names, weights


def format_members(proxies: Sequence[str], weights: Mapping[str, float] | None = None,
                   sep: str = ",", mark: str = "=") -> str:
    """The inverse of :func:`parse_members`: ``NAME=WEIGHT`` for a weight other than 1, joined
    by ``sep`` (``sep="+", mark="*"`` gives the dashboard's label, ``synflow*0.75+eznas*1.5+params``).

    >>> format_members(["synflow", "eznas", "params"], {"synflow": 0.75, "eznas": 1.5, "params": 1.0})
    'synflow=0.75,eznas=1.5,params'
    """
    given = weights or {}
    return sep.join(p if float(given.get(p, 1.0)) == 1.0 else f"{p}{mark}{float(given[p]):g}"
                    for p in proxies)
