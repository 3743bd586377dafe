"""Rank statistics between proxy scores and ground-truth accuracies.

All functions take two equal-length 1-D arrays ``scores`` and ``truth``; entries where the
score is missing (``None``/NaN/inf: a failed proxy) are dropped, and the count of dropped
entries is reported. Directions: pass ``higher_is_better=False`` for a proxy whose low values
mean good architectures; it is negated before ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: The rank correlations :func:`correlation_interval` has a standard error for.
RANK_STATISTICS = ("kendall", "spearman")


@dataclass(frozen=True)
class Correlation:
    """Agreement of one proxy with the truth over ``n`` architectures (``dropped`` ignored)."""

    n: int
    dropped: int
    kendall: float | None
    spearman: float | None
    top10_precision: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"kendall": self.kendall, "spearman": self.spearman,
                "top10_precision": self.top10_precision, "dropped": self.dropped, "n": self.n}

    def interval(self, statistic: str, level: float = 0.95) -> tuple[float, float] | None:
        """The ``level`` confidence interval of ``kendall`` or ``spearman``
        (:func:`correlation_interval`)."""
        if statistic not in RANK_STATISTICS:
            raise ValueError(f"unknown statistic {statistic!r}; choose one of {', '.join(RANK_STATISTICS)}")
        return correlation_interval(getattr(self, statistic), self.n, statistic, level)


def clean_pairs(scores: Sequence[float | None], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop pairs whose score is missing or non-finite. Returns ``(scores, truth, dropped)``."""
    s = np.array([np.nan if v is None else v for v in scores], dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if s.shape != t.shape:
        raise ValueError(f"scores and truth differ in length: {s.shape[0]} vs {t.shape[0]}")
    keep = np.isfinite(s) & np.isfinite(t)
    return s[keep], t[keep], int((~keep).sum())


def top_fraction_precision(scores: np.ndarray, truth: np.ndarray, fraction: float = 0.1) -> float:
    """Share of the proxy's top ``fraction`` that is also in the true top ``fraction``.

    ``k = max(1, round(fraction * n))``; ties are broken by position (stable sort).
    """
    n = len(scores)
    if n == 0:
        raise ValueError("no scores")
    k = max(1, int(round(fraction * n)))
    top_proxy = set(np.argsort(-scores, kind="stable")[:k].tolist())
    top_true = set(np.argsort(-truth, kind="stable")[:k].tolist())
    return len(top_proxy & top_true) / k


def correlate(scores: Sequence[float | None], truth: Sequence[float], *,
              higher_is_better: bool = True, fraction: float = 0.1) -> Correlation:
    """Kendall tau-b and Spearman rho (scipy.stats) and top-``fraction`` precision."""
    s, t, dropped = clean_pairs(scores, truth)
    if not higher_is_better:
        s = -s
    if len(s) < 2 or np.all(s == s[0]) or np.all(t == t[0]):
        prec = top_fraction_precision(s, t, fraction) if len(s) else None
        return Correlation(len(s), dropped, None, None, prec)
    return Correlation(
        n=len(s), dropped=dropped,
        kendall=float(sps.kendalltau(s, t).statistic),
        spearman=float(sps.spearmanr(s, t).statistic),
        top10_precision=top_fraction_precision(s, t, fraction),
    )


def correlation_interval(estimate: float | None, n: int, statistic: str,
                         level: float = 0.95) -> tuple[float, float] | None:
    """Confidence interval of a Kendall tau-b or Spearman rho from ``n`` pairs.

    Fisher's z = atanh(estimate) is taken as normal with variance 0.437 / (n - 4) for Kendall's
    tau (Fieller, Hartley & Pearson, Biometrika 1957) and (1 + rho^2 / 2) / (n - 3) for Spearman's
    rho (Bonett & Wright, Psychometrika 2000, eq. 5); the interval is
    ``tanh(z -+ q * se)`` with ``q`` the normal quantile of ``(1 + level) / 2``.

    ``None`` when there is no estimate or too few pairs (Kendall needs 5, Spearman 4). An
    estimate of +-1 gives the degenerate interval at that value.
    """
    if statistic not in RANK_STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; choose one of {', '.join(RANK_STATISTICS)}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if estimate is None or not np.isfinite(estimate):
        return None
    if statistic == "kendall":
        if n < 5:
            return None
        variance = 0.437 / (n - 4)
    else:
        if n < 4:
            return None
        variance = (1.0 + estimate ** 2 / 2.0) / (n - 3)
    if abs(estimate) >= 1.0:
        edge = float(np.sign(estimate))
        return edge, edge
    z = float(np.arctanh(estimate))
    half = float(sps.norm.ppf((1.0 + level) / 2.0)) * float(np.sqrt(variance))
    return float(np.tanh(z - half)), float(np.tanh(z + half))
