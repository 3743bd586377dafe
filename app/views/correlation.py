"""The Correlation page: proxy score against benchmark accuracy, the Kendall / Spearman /
top-10% table of every proxy x dataset, the proxy-vs-proxy matrix and the published marks.

Statistics come from :func:`knas_core.stats.correlate` (scipy.stats Kendall tau-b and Spearman
rho; top-10% precision as in Abdelfattah et al., ICLR 2021).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from app.views.reference import PUBLISHED, published_spearman
from db import queries
from db.session import session_scope
from knas_core.groundtruth import GroundTruth, accuracy_column
from knas_core.proxies import get_proxy
from knas_core.stats import correlate

STATISTICS = ("kendall", "spearman", "top10_precision")


def higher_is_better(proxy: str) -> bool:
    try:
        return get_proxy(proxy).higher_is_better
    except Exception:  # noqa: BLE001 - a plugin proxy this process has not loaded: assume higher
        return True


def catalogue() -> list[tuple[str, str, int]]:
    """``(proxy, dataset, scores)`` with at least one stored score."""
    with session_scope() as session:
        return queries.score_catalogue(session)


@lru_cache(maxsize=1)
def _params_table() -> pd.DataFrame | None:
    """Parameter counts (MB) of the benchmark networks from the shared table, if it is there."""
    try:
        return GroundTruth.load().frame
    except Exception:  # noqa: BLE001 - no table: the scatter is drawn without the colour
        return None


def params_mb(index: int | None, dataset: str) -> float | None:
    frame = _params_table()
    col = f"params_mb_{dataset.replace('-', '_')}"
    if frame is None or index is None or col not in frame.columns or index not in frame.index:
        return None
    return float(frame.at[index, col])


def scatter_rows(proxy: str, dataset: str, metric: str = "test") -> list[dict[str, Any]]:
    """One row per architecture with a score and a benchmark accuracy:
    ``architecture_id, index, arch, score, accuracy (%), params_mb``."""
    accuracy_column(dataset, metric)  # validates both names with a clear message
    with session_scope() as session:
        scores = queries.proxy_scores(session, proxy, dataset)
        truth = queries.benchmark_values(session, dataset, metric, list(scores))
        names = queries.architectures(session, [a for a in scores if a in truth])
    rows = []
    for arch_id, (arch, index) in sorted(names.items(), key=lambda kv: (kv[1][1] is None, kv[1][1])):
        rows.append({"architecture_id": arch_id, "index": index, "arch": arch, "score": scores[arch_id],
                     "accuracy": truth[arch_id], "params_mb": params_mb(index, dataset)})
    return rows


def scatter_figure(rows: list[dict[str, Any]], proxy: str, dataset: str, log_x: bool = False) -> go.Figure:
    """Score vs accuracy; hover shows the architecture, colour the parameter count. With
    ``log_x`` only positive scores can be drawn (the others are left out and counted in the title)."""
    frame = pd.DataFrame(rows, columns=["architecture_id", "index", "arch", "score", "accuracy", "params_mb"])
    title = f"{proxy} vs {dataset} accuracy (n={len(frame)})"
    if log_x:
        dropped = int((frame["score"] <= 0).sum())
        frame = frame[frame["score"] > 0]
        if dropped:
            title += f"; {dropped} non-positive scores not drawn on the log scale"
    colour = "params_mb" if frame["params_mb"].notna().any() else None
    fig = px.scatter(frame, x="score", y="accuracy", color=colour, log_x=log_x,
                     hover_data={"index": True, "arch": True, "params_mb": True},
                     labels={"score": f"{proxy} score", "accuracy": f"{dataset} accuracy (%)",
                             "params_mb": "params (MB)"}, title=title, color_continuous_scale="Viridis")
    fig.update_traces(marker={"size": 6, "opacity": 0.75})
    fig.update_layout(height=450, margin={"t": 50, "b": 10})
    return fig


def statistics_rows(metric: str = "test") -> list[dict[str, Any]]:
    """Kendall tau, Spearman rho and top-10% precision for every stored proxy x dataset, with
    the published Spearman rho where there is one. Rows are sorted by proxy, then dataset."""
    rows = []
    for proxy, dataset, _ in catalogue():
        pairs = scatter_rows(proxy, dataset, metric)
        if not pairs:
            continue
        corr = correlate([r["score"] for r in pairs], [r["accuracy"] for r in pairs],
                         higher_is_better=higher_is_better(proxy))
        ref = published_spearman(proxy, dataset)
        rows.append({"proxy": proxy, "dataset": dataset, "n": corr.n, "kendall": corr.kendall,
                     "spearman": corr.spearman, "top10_precision": corr.top10_precision,
                     "published_spearman": ref.spearman if ref else None,
                     "published_source": ref.source if ref else None})
    return sorted(rows, key=lambda r: (r["proxy"], r["dataset"]))


def statistics_heatmap_figure(rows: list[dict[str, Any]], statistic: str = "spearman") -> go.Figure:
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    frame = pd.DataFrame(rows).pivot(index="proxy", columns="dataset", values=statistic)
    fig = px.imshow(frame.astype(float), text_auto=".2f", color_continuous_scale="RdBu", zmin=-1, zmax=1,
                    aspect="auto", title=f"{statistic} by proxy and dataset")
    fig.update_layout(height=max(300, 30 * len(frame) + 120), margin={"t": 50, "b": 10})
    return fig


def reference_rows(rows: list[dict[str, Any]], dataset: str = "cifar10") -> list[dict[str, Any]]:
    """Measured Spearman rho beside the published mark, for every proxy with either on ``dataset``."""
    measured = {r["proxy"]: r["spearman"] for r in rows if r["dataset"] == dataset}
    names = sorted(set(measured) | {p.proxy for p in PUBLISHED if p.dataset == dataset})
    out = []
    for name in names:
        ref = published_spearman(name, dataset)
        out.append({"proxy": name, "measured": measured.get(name),
                    "published": ref.spearman if ref else None, "low": ref.low if ref else None,
                    "high": ref.high if ref else None, "source": ref.source if ref else None})
    return out


def reference_figure(refs: list[dict[str, Any]], dataset: str = "cifar10") -> go.Figure:
    """Bars: measured Spearman rho; diamonds with range bars: the published figure."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=[r["proxy"] for r in refs], y=[r["measured"] for r in refs], name="measured"))
    pub = [r for r in refs if r["published"] is not None]
    fig.add_trace(go.Scatter(
        x=[r["proxy"] for r in pub], y=[r["published"] for r in pub], mode="markers", name="published",
        marker={"symbol": "diamond", "size": 12, "color": "black"}, hovertext=[r["source"] for r in pub],
        error_y={"type": "data", "symmetric": False, "array": [r["high"] - r["published"] for r in pub],
                 "arrayminus": [r["published"] - r["low"] for r in pub]}))
    fig.update_layout(title=f"Spearman rho on {dataset}: measured vs published", yaxis_title="Spearman rho",
                      yaxis_range=[-0.2, 1], height=360, margin={"t": 50, "b": 10})
    return fig


def proxy_matrix(dataset: str, min_common: int = 3) -> tuple[list[str], np.ndarray, int]:
    """Spearman rho between every pair of proxies over the architectures both scored on
    ``dataset`` (pairwise complete; ``nan`` below ``min_common`` shared architectures).
    Lower-is-better proxies are negated first, so a positive rho means the two agree.
    Returns ``(proxies, matrix[p, p], architectures with any score)``."""
    with session_scope() as session:
        names = sorted({p for p, d, _ in queries.score_catalogue(session) if d == dataset})
        columns = {}
        for name in names:
            sign = 1.0 if higher_is_better(name) else -1.0
            values = queries.proxy_scores(session, name, dataset)
            columns[name] = pd.Series({a: sign * v for a, v in values.items()}, dtype=float)
    frame = pd.DataFrame(columns)
    if frame.empty:
        return names, np.zeros((len(names), len(names))), 0
    matrix = frame.corr(method="spearman", min_periods=min_common).to_numpy()
    return names, matrix, len(frame)


def proxy_matrix_figure(names: list[str], matrix: np.ndarray, dataset: str) -> go.Figure:
    fig = px.imshow(matrix, x=names, y=names, text_auto=".2f", color_continuous_scale="RdBu", zmin=-1, zmax=1,
                    title=f"Proxy vs proxy Spearman rho on {dataset}")
    fig.update_layout(height=max(320, 32 * len(names) + 140), margin={"t": 50, "b": 10})
    return fig
