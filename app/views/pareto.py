"""Accuracy against cost, and the Pareto front: the architectures no other one beats on both
(at most the cost and at least the accuracy, one of them strictly).

Points come from the benchmark table (:class:`knas_core.groundtruth.GroundTruth`): for the whole
space, or for the architectures a search sampled (by their official index). Costs:

* ``params``: the table's ``params_mb_<dataset>`` (millions of parameters, NAS-Bench-201's own
  count; docs/RESULTS.md "Parameter counts against the table" lists 150 rows that look joined
  from another architecture);
* ``flops``: the table has no FLOPs column, so they are the ``flops`` proxy's count
  (NAS-Bench-201's ``#FLOPs``, millions per image) on the benchmark network, priced per cell by
  the additive model of :mod:`knas_core.costs`.

No Plotly here (drawing: :mod:`app.views.plots`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from db import queries
from db.session import session_scope
from knas_core.groundtruth import GroundTruth, accuracy_column, canonical_dataset

#: Cost axes: ``name -> axis title``.
COSTS = {"params": "parameters (M)", "flops": "FLOPs (M, per image)"}


def pareto_mask(cost: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Whether each point is on the front of low ``cost`` and high ``accuracy`` (no other point
    has cost <= and accuracy >= with one strictly better). Equal points are all on it or all off.
    O(n log n): sweep by cost, then accuracy descending, keeping the best accuracy seen."""
    x = np.asarray(cost, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"cost and accuracy differ in length ({x.size} vs {y.size})")
    order = np.lexsort((-y, x))  # by cost, then accuracy descending
    mask = np.zeros(x.size, dtype=bool)
    best = -np.inf
    last: tuple[float, float] | None = None  # the last point put on the front
    for i in order:
        point = (x[i], y[i])
        if y[i] > best or point == last:
            mask[i] = True
            best, last = y[i], point
    return mask


@lru_cache(maxsize=1)
def _table() -> GroundTruth:
    return GroundTruth.load()


def space_points(dataset: str, metric: str = "test", cost: str = "params",
                 truth: GroundTruth | None = None) -> pd.DataFrame:
    """Every architecture of the table: ``index`` (the frame's index), ``arch``, ``accuracy``
    (``metric`` on ``dataset``, %) and ``cost`` (:data:`COSTS`). ``truth``: the table (default:
    the one the data look-up order finds)."""
    if cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}; choose one of {', '.join(COSTS)}")
    truth = truth or _table()
    ds = canonical_dataset(dataset)
    frame = pd.DataFrame({"arch": truth.frame["arch"], "accuracy": truth.frame[accuracy_column(ds, metric)]})
    if cost == "params":
        frame["cost"] = truth.frame[f"params_mb_{ds.replace('-', '_')}"]
    else:
        from knas_core.costs import flops_model

        model = flops_model(ds)
        frame["cost"] = [model.flops(a) for a in frame["arch"]]
    frame.index.name = "index"
    return frame


def search_indices(search_id: int) -> list[int]:
    """Official indices of the architectures a search sampled (those with one), in sampling order."""
    with session_scope() as session:
        return [c["index"] for c in queries.candidate_rows(session, search_id) if c["index"] is not None]


def front_rows(points: pd.DataFrame) -> list[dict[str, Any]]:
    """``points`` (as :func:`space_points`) as rows ``index, arch, cost, accuracy, on_front``,
    the front first by cost, then the others by index."""
    frame = points.assign(on_front=pareto_mask(points["cost"], points["accuracy"]))
    frame = frame.reset_index().sort_values(["on_front", "cost", "index"], ascending=[False, True, True])
    return [{"index": int(r.index), "arch": r.arch, "cost": float(r.cost), "accuracy": float(r.accuracy),
             "on_front": bool(r.on_front)} for r in frame.itertuples()]


def pareto(dataset: str, metric: str = "test", cost: str = "params", search_id: int | None = None,
           truth: GroundTruth | None = None) -> list[dict[str, Any]]:
    """:func:`front_rows` of the whole space, or of the architectures search ``search_id``
    sampled (its front among them)."""
    points = space_points(dataset, metric, cost, truth)
    if search_id is not None:
        wanted = [i for i in dict.fromkeys(search_indices(search_id)) if i in points.index]
        points = points.loc[wanted]
    return front_rows(points)
