"""The Correlation page: proxy score against benchmark accuracy, the Kendall / Spearman /
top-10% table of every proxy x dataset, the proxy-vs-proxy matrix and the published marks.

Statistics come from :func:`knas_core.stats.correlate` (scipy.stats Kendall tau-b and Spearman
rho; top-10% precision as in Abdelfattah et al., ICLR 2021).
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from app.views.reference import PUBLISHED, published_spearman
from db import queries
from db.atlas import score_label
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


def store_version() -> tuple[int, ...]:
    """The store's fingerprint (:func:`db.queries.store_version`): the pages cache this module's
    views under it, so they are computed again only when the store changed."""
    with session_scope() as session:
        return queries.store_version(session)


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
    values = params_column([index], dataset)
    return values[0]


def params_column(indices: list[int | None], dataset: str) -> list[float | None]:
    """The parameter counts (MB) of the networks at ``indices`` on ``dataset`` (None where the
    table has none), looked up at once."""
    frame = _params_table()
    col = f"params_mb_{dataset.replace('-', '_')}"
    if frame is None or col not in frame.columns:
        return [None] * len(indices)
    values = frame[col].reindex([-1 if i is None else i for i in indices])
    return [None if v != v else float(v) for v in values.tolist()]  # NaN (not in the table) -> None


def scatter_rows(proxy: str, dataset: str, metric: str = "test") -> list[dict[str, Any]]:
    """One row per architecture with a score (under the proxy's main set-up: see
    :func:`db.queries.main_setup`) and a benchmark accuracy, in index order:
    ``architecture_id, index, arch, score, accuracy (%), params_mb``. One query, joined in SQL."""
    accuracy_column(dataset, metric)  # validates both names with a clear message
    with session_scope() as session:
        found = queries.scored_accuracies(session, proxy, dataset, metric)
    params = params_column([r[1] for r in found], dataset)
    keys = ("architecture_id", "index", "arch", "score", "accuracy")
    return [dict(zip(keys, r), params_mb=p) for r, p in zip(found, params)]


def provenance(proxy: str, dataset: str) -> list[str]:
    """Where the scores a view of ``proxy`` on ``dataset`` shows came from: for every atlas
    import that stored some, ``precomputed atlas: <set-up>, imported <date> from <file> (n of
    N scores)``, and how many were computed here; empty when there are none."""
    with session_scope() as session:
        sources = queries.score_sources(session, proxy, dataset)
        setup = queries.main_setup(session, proxy, dataset)
        records = queries.atlas_imports(session) if any(k is not None for k in sources) else {}
    if setup is None or not any(k is not None for k in sources):
        return []
    total = sum(sources.values())
    lines = []
    for import_id, n in sorted(sources.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        if import_id is None:
            lines.append(f"computed in this store: {n:,} of {total:,} scores")
        elif import_id in records:
            key = {"dataset": dataset, **{f: getattr(setup, f) for f in
                                          ("data", "batch_size", "seed", "device_type", "model")}}
            lines.append(f"{score_label(records[import_id], key)} ({n:,} of {total:,} scores)")
    return lines


def _source(sources: Collection[int | None]) -> str:
    """``precomputed atlas``, ``computed`` or ``atlas + computed``: where a view's scores came
    from (``sources``: their atlas import ids, None for a computed one)."""
    imported = any(k is not None for k in sources)
    computed = None in sources
    return "atlas + computed" if imported and computed else "precomputed atlas" if imported else "computed"


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
                     render_mode="webgl" if len(frame) > 2000 else "auto",  # the whole space: WebGL
                     hover_data={"index": True, "arch": True, "params_mb": True},
                     labels={"score": f"{proxy} score", "accuracy": f"{dataset} accuracy (%)",
                             "params_mb": "params (MB)"}, title=title, color_continuous_scale="Viridis")
    fig.update_traces(marker={"size": 6, "opacity": 0.75})
    fig.update_layout(height=450, margin={"t": 50, "b": 10})
    return fig


def statistics_rows(metric: str = "test") -> list[dict[str, Any]]:
    """Kendall tau, Spearman rho and top-10% precision for every stored proxy x dataset, with
    the published Spearman rho where there is one and where the scores came from (``source``:
    precomputed atlas, computed, or both). Rows are sorted by proxy, then dataset."""
    rows = []
    with session_scope() as session:
        setups = queries.main_setups(session)
        pairs = {(p, d): queries.scored_accuracies(session, p, d, metric, names=False, setup=setup)
                 for (p, d), setup in setups.items()}
    for (proxy, dataset), found in pairs.items():
        if not found:
            continue
        values = np.asarray([r[:2] for r in found], dtype=float)
        corr = correlate(values[:, 0], values[:, 1], higher_is_better=higher_is_better(proxy))
        ref = published_spearman(proxy, dataset)
        rows.append({"proxy": proxy, "dataset": dataset, "n": corr.n, "kendall": corr.kendall,
                     "spearman": corr.spearman, "top10_precision": corr.top10_precision,
                     "published_spearman": ref.spearman if ref else None,
                     "published_source": ref.source if ref else None,
                     "source": _source({r[2] for r in found})})
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
        setups = queries.main_setups(session, dataset=dataset)
        names = sorted(p for p, _ in setups)
        columns = {}
        for name in names:
            values = queries.proxy_scores(session, name, dataset, setups[(name, dataset)])
            sign = 1.0 if higher_is_better(name) else -1.0
            columns[name] = pd.Series(np.fromiter(values.values(), float, len(values)) * sign,
                                      index=np.fromiter(values.keys(), np.int64, len(values)))
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
