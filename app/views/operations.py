"""Which operations matter: accuracy (or a search's score) by the operation on each of the 6 cell
edges, the NAS analogue of Optuna's parameter importance.

Each edge is a categorical parameter with the 5 operations as its values. Its importance is the
share of the variance its main effect explains, eta^2 = SS_between / SS_total of a one-way
analysis of variance (the first-order term of the functional ANOVA decomposition behind Optuna's
``FanovaImportanceEvaluator``: Hutter, Hoos & Leyton-Brown, ICML 2014, Eq. 3). On the whole
space, where every operation appears equally often on every edge, this is exact; on a search's
sample it is the sample's share. The box statistics are computed here (quartiles by linear
interpolation, whiskers at the furthest value within 1.5 IQR: Tukey), so a chart over 15,625
architectures sends six small summaries to the browser, not 94,000 points.

No Plotly here (drawing: :mod:`app.views.plots`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from knas_core.spaces.nb201 import EDGES, OPS, parse_arch

#: Edge labels in string order (``"0>1"``: from node 0 into node 1).
EDGE_LABELS = tuple(f"{j}>{i}" for j, i in EDGES)


def edge_frame(points: pd.DataFrame, value: str = "accuracy") -> pd.DataFrame:
    """One row per architecture and edge: ``edge`` (a label of :data:`EDGE_LABELS`), ``op`` and
    ``value`` (the ``value`` column of ``points``, which also holds ``arch``). Rows whose value is
    missing are left out."""
    kept = points[points[value].notna()]
    ops = np.array([parse_arch(a) for a in kept["arch"]], dtype=object).reshape(-1, len(EDGES))
    values = kept[value].to_numpy(dtype=float)
    return pd.DataFrame({"edge": np.repeat(np.array(EDGE_LABELS)[None, :], len(kept), axis=0).ravel(),
                         "op": ops.ravel(), "value": np.repeat(values, len(EDGES))})


def box_stats(values: np.ndarray) -> dict[str, float]:
    """``n, mean, min, q1, median, q3, max, lowerfence, upperfence`` of ``values`` (Tukey whiskers)."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    return {"n": int(values.size), "mean": float(values.mean()), "min": float(values.min()),
            "q1": float(q1), "median": float(median), "q3": float(q3), "max": float(values.max()),
            "lowerfence": float(inside.min()), "upperfence": float(inside.max())}


def edge_op_stats(long: pd.DataFrame) -> list[dict[str, Any]]:
    """Box statistics of every (edge, operation) present in ``long`` (:func:`edge_frame`): rows
    ``edge, op`` and :func:`box_stats`, edges in string order, operations in :data:`OPS` order."""
    rows = []
    for edge in EDGE_LABELS:
        mine = long[long["edge"] == edge]
        for op in OPS:
            values = mine.loc[mine["op"] == op, "value"].to_numpy(dtype=float)
            if values.size:
                rows.append({"edge": edge, "op": op, **box_stats(values)})
    return rows


def edge_importance(long: pd.DataFrame) -> list[dict[str, Any]]:
    """Per edge: ``eta2`` (SS_between / SS_total, 0 when every value is equal), ``best_op`` and
    ``worst_op`` (highest and lowest mean) and ``spread`` (their difference), most important
    edge first."""
    rows = []
    for edge in EDGE_LABELS:
        mine = long[long["edge"] == edge]
        if mine.empty:
            continue
        values = mine["value"].to_numpy(dtype=float)
        total = float(((values - values.mean()) ** 2).sum())
        means = mine.groupby("op")["value"].agg(["mean", "size"])
        between = float((means["size"] * (means["mean"] - values.mean()) ** 2).sum())
        rows.append({"edge": edge, "eta2": between / total if total > 0 else 0.0,
                     "best_op": str(means["mean"].idxmax()), "worst_op": str(means["mean"].idxmin()),
                     "spread": float(means["mean"].max() - means["mean"].min()), "n": int(values.size)})
    return sorted(rows, key=lambda r: -r["eta2"])


def search_points(search_id: int, dataset: str, metric: str = "test", value: str = "accuracy",
                  truth: Any = None) -> pd.DataFrame:
    """The architectures a search sampled with ``arch`` and ``value``: ``accuracy`` (the
    benchmark's ``metric`` on ``dataset``, from the table) or ``score`` (the search's own proxy
    score; None where it failed or was never stored)."""
    from app.views.pareto import space_points
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        cands = queries.candidate_rows(session, search_id)
    if value == "score":
        return pd.DataFrame({"arch": [c["arch"] for c in cands],
                             "score": [c["score"] for c in cands]}, dtype=object).astype({"score": float})
    if value != "accuracy":
        raise ValueError(f"unknown value {value!r}; choose accuracy or score")
    table = space_points(dataset, metric, "params", truth)
    indices = [i for i in dict.fromkeys(c["index"] for c in cands if c["index"] is not None)
               if i in table.index]
    return table.loc[indices, ["arch", "accuracy"]]
