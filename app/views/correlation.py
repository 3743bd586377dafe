"""The Correlation page: proxy score against benchmark accuracy, the Kendall / Spearman /
top-10% table of every proxy x dataset x scoring set-up with confidence intervals, the
proxy-vs-proxy matrix with the number of architectures behind each pair, and the published
marks (against 200-epoch test accuracy only).

Statistics come from :func:`knas_core.stats.correlate` (scipy.stats Kendall tau-b and Spearman
rho; top-10% precision as in Abdelfattah et al., ICLR 2021) and their intervals from
:func:`knas_core.stats.correlation_interval`. A score's set-up (batch size, seed, device,
network, images: :class:`db.queries.ScoreSetup`) is part of what it measures: set-ups are
never mixed, and each figure says which one it shows.
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
from db.queries import ScoreSetup
from db.session import session_scope
from knas_core.groundtruth import GroundTruth, accuracy_column
from knas_core.proxies import get_proxy
from knas_core.stats import correlate, correlation_interval

STATISTICS = ("kendall", "spearman", "top10_precision")
#: The benchmark's accuracies, as the page names them.
METRIC_LABELS = {"test": "200-epoch test", "valid": "200-epoch valid", "valid_12ep": "12-epoch valid"}
#: What the published marks were measured against (:mod:`app.views.reference`).
PUBLISHED_METRIC = "test"


def higher_is_better(proxy: str) -> bool:
    try:
        return get_proxy(proxy).higher_is_better
    except Exception:  # noqa: BLE001 - a plugin proxy this process has not loaded: assume higher
        return True


def catalogue() -> list[tuple[str, str, int]]:
    """``(proxy, dataset, scores)`` with at least one stored score."""
    with session_scope() as session:
        return queries.score_catalogue(session)


# --- scoring set-ups ---------------------------------------------------------------------------

def setups(proxy: str, dataset: str) -> list[tuple[ScoreSetup, int]]:
    """The set-ups ``proxy`` was scored under on ``dataset`` with their counts, most first."""
    with session_scope() as session:
        return queries.score_setups(session, proxy, dataset)


def setup_label(setup: ScoreSetup) -> str:
    """``batch 64 · seed 0 · cpu · C=16,N=5 · images npz:...``, for people."""
    images = f"images {setup.data}" if setup.data else "images not recorded (stored before they were)"
    return (f"batch {setup.batch_size} · seed {setup.seed} · {setup.device_type} · "
            f"{setup.model or 'default network'} · {images}")


def setup_param(setup: ScoreSetup) -> str:
    """The set-up as one URL parameter (``64:0:cpu:C=16,N=5:npz:name:hash``; :func:`parse_setup`)."""
    return ":".join((str(setup.batch_size), str(setup.seed), setup.device_type, setup.model, setup.data))


def parse_setup(text: str | None) -> ScoreSetup | None:
    """:func:`setup_param` read back; None for anything else (an old or hand-written link)."""
    parts = (text or "").split(":", 4)
    if len(parts) != 5 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return ScoreSetup(int(parts[0]), int(parts[1]), parts[2], parts[3], parts[4])


def differing_fields(chosen: list[ScoreSetup]) -> list[str]:
    """The set-up fields that differ among ``chosen`` (what tells them apart in a short label)."""
    return [f for f in ScoreSetup._fields if len({getattr(s, f) for s in chosen}) > 1]


def short_label(setup: ScoreSetup, fields: list[str]) -> str:
    """``fields`` of ``setup`` in a few words (``seed 1 images npz:...``)."""
    names = {"batch_size": "batch", "seed": "seed", "device_type": "", "model": "", "data": "images"}
    words = [f"{names[f]} {getattr(setup, f) if f != 'data' or setup.data else 'not recorded'}".strip()
             for f in fields]
    return " ".join(words)


# --- score against accuracy --------------------------------------------------------------------

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


def scatter_rows(proxy: str, dataset: str, metric: str = "test",
                 setup: ScoreSetup | None = None) -> list[dict[str, Any]]:
    """One row per architecture with a score under ``setup`` (default: the set-up holding the
    most scores) and a benchmark accuracy:
    ``architecture_id, index, arch, score, accuracy (%), params_mb``."""
    accuracy_column(dataset, metric)  # validates both names with a clear message
    with session_scope() as session:
        scores = queries.proxy_scores(session, proxy, dataset, setup)
        truth = queries.benchmark_values(session, dataset, metric, list(scores))
        names = queries.architectures(session, [a for a in scores if a in truth])
    rows = []
    for arch_id, (arch, index) in sorted(names.items(), key=lambda kv: (kv[1][1] is None, kv[1][1])):
        rows.append({"architecture_id": arch_id, "index": index, "arch": arch, "score": scores[arch_id],
                     "accuracy": truth[arch_id], "params_mb": params_mb(index, dataset)})
    return rows


def scatter_figure(rows: list[dict[str, Any]], proxy: str, dataset: str, log_x: bool = False,
                   metric: str = "test") -> go.Figure:
    """Score vs accuracy; hover shows the architecture, colour the parameter count; the accuracy
    axis names the benchmark's metric. With ``log_x`` only positive scores can be drawn (the
    others are left out and counted in the title)."""
    frame = pd.DataFrame(rows, columns=["architecture_id", "index", "arch", "score", "accuracy", "params_mb"])
    truth = f"{dataset} {METRIC_LABELS.get(metric, metric)} accuracy (%)"
    title = f"{proxy} vs {dataset} accuracy, {METRIC_LABELS.get(metric, metric)} (n={len(frame)})"
    if log_x:
        dropped = int((frame["score"] <= 0).sum())
        frame = frame[frame["score"] > 0]
        if dropped:
            title += f"; {dropped} non-positive scores not drawn on the log scale"
    colour = "params_mb" if frame["params_mb"].notna().any() else None
    fig = px.scatter(frame, x="score", y="accuracy", color=colour, log_x=log_x,
                     hover_data={"index": True, "arch": True, "params_mb": True},
                     labels={"score": f"{proxy} score", "accuracy": truth, "params_mb": "params (MB)"},
                     title=title, color_continuous_scale="Viridis")
    fig.update_traces(marker={"size": 6, "opacity": 0.75})
    fig.update_layout(height=450, margin={"t": 50, "b": 10})
    return fig


# --- statistics --------------------------------------------------------------------------------

def statistics_rows(metric: str = "test", level: float = 0.95) -> list[dict[str, Any]]:
    """Kendall tau and Spearman rho with their ``level`` confidence intervals
    (``kendall_low``/``kendall_high``, ``spearman_low``/``spearman_high``) and top-10% precision,
    one row per stored proxy x dataset x set-up (``setup``: its label; ``n``: architectures
    behind the row). The published Spearman rho is given for ``metric`` ``test`` only (what it
    was measured against). Sorted by proxy, dataset, then the set-ups' sizes."""
    rows = []
    for proxy, dataset, _ in catalogue():
        for setup, _count in setups(proxy, dataset):
            pairs = scatter_rows(proxy, dataset, metric, setup)
            if not pairs:
                continue
            corr = correlate([r["score"] for r in pairs], [r["accuracy"] for r in pairs],
                             higher_is_better=higher_is_better(proxy))
            kendall = correlation_interval(corr.kendall, corr.n, "kendall", level) or (None, None)
            spearman = correlation_interval(corr.spearman, corr.n, "spearman", level) or (None, None)
            ref = published_spearman(proxy, dataset) if metric == PUBLISHED_METRIC else None
            rows.append({"proxy": proxy, "dataset": dataset, "setup": setup_label(setup),
                         "setup_param": setup_param(setup), "n": corr.n,
                         "kendall": corr.kendall, "kendall_low": kendall[0], "kendall_high": kendall[1],
                         "spearman": corr.spearman, "spearman_low": spearman[0], "spearman_high": spearman[1],
                         "top10_precision": corr.top10_precision,
                         "published_spearman": ref.spearman if ref else None,
                         "published_source": ref.source if ref else None})
    return sorted(rows, key=lambda r: (r["proxy"], r["dataset"]))  # stable: set-ups stay most first


def heatmap_label(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The heatmap's row name: the proxy, with what tells its set-ups apart when it has several."""
    mine = [parse_setup(r["setup_param"]) for r in rows if r["proxy"] == row["proxy"]]
    distinct = sorted({s for s in mine if s is not None})
    if len(distinct) < 2:
        return str(row["proxy"])
    setup = parse_setup(row["setup_param"])
    if setup is None:
        return str(row["proxy"])
    return f"{row['proxy']} ({short_label(setup, differing_fields(distinct))})"


def statistics_heatmap_figure(rows: list[dict[str, Any]], statistic: str = "spearman") -> go.Figure:
    """One cell per proxy (x set-up, when a proxy has several) and dataset."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    frame = pd.DataFrame([{**r, "row": heatmap_label(r, rows)} for r in rows])
    frame = frame.pivot_table(index="row", columns="dataset", values=statistic, aggfunc="first")
    fig = px.imshow(frame.astype(float), text_auto=".2f", color_continuous_scale="RdBu", zmin=-1, zmax=1,
                    aspect="auto", title=f"{statistic} by proxy and dataset")
    fig.update_layout(height=max(300, 30 * len(frame) + 120), margin={"t": 50, "b": 10}, yaxis_title="proxy")
    return fig


def reference_rows(rows: list[dict[str, Any]], dataset: str = "cifar10") -> list[dict[str, Any]]:
    """Measured Spearman rho beside the published mark, for every proxy with either on
    ``dataset``; a proxy measured under several set-ups shows the one with the most
    architectures. ``rows`` must be :func:`statistics_rows` of the published metric (200-epoch
    test): no mark is given against anything else."""
    measured: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["dataset"] == dataset and (r["proxy"] not in measured or r["n"] > measured[r["proxy"]]["n"]):
            measured[r["proxy"]] = r
    names = sorted(set(measured) | {p.proxy for p in PUBLISHED if p.dataset == dataset})
    out = []
    for name in names:
        ref = published_spearman(name, dataset)
        mine = measured.get(name)
        out.append({"proxy": name, "measured": mine["spearman"] if mine else None,
                    "measured_low": mine["spearman_low"] if mine else None,
                    "measured_high": mine["spearman_high"] if mine else None,
                    "n": mine["n"] if mine else None,
                    "published": ref.spearman if ref else None, "low": ref.low if ref else None,
                    "high": ref.high if ref else None, "source": ref.source if ref else None})
    return out


def reference_figure(refs: list[dict[str, Any]], dataset: str = "cifar10") -> go.Figure:
    """Bars with their confidence intervals: measured Spearman rho against 200-epoch test
    accuracy; diamonds with range bars: the published figure."""
    fig = go.Figure()
    bars = [r for r in refs if r["measured"] is not None]
    fig.add_trace(go.Bar(
        x=[r["proxy"] for r in bars], y=[r["measured"] for r in bars], name="measured",
        hovertext=[f"n={r['n']}" for r in bars],
        error_y={"type": "data", "symmetric": False,
                 "array": [(r["measured_high"] or r["measured"]) - r["measured"] for r in bars],
                 "arrayminus": [r["measured"] - (r["measured_low"] or r["measured"]) for r in bars]}))
    pub = [r for r in refs if r["published"] is not None]
    fig.add_trace(go.Scatter(
        x=[r["proxy"] for r in pub], y=[r["published"] for r in pub], mode="markers", name="published",
        marker={"symbol": "diamond", "size": 12, "color": "black"}, hovertext=[r["source"] for r in pub],
        error_y={"type": "data", "symmetric": False, "array": [r["high"] - r["published"] for r in pub],
                 "arrayminus": [r["published"] - r["low"] for r in pub]}))
    fig.update_layout(title=f"Spearman rho vs {dataset} 200-epoch test accuracy: measured vs published",
                      yaxis_title="Spearman rho", yaxis_range=[-0.2, 1], height=360,
                      margin={"t": 50, "b": 10})
    return fig


# --- proxy against proxy -----------------------------------------------------------------------

def proxy_matrix(dataset: str, min_common: int = 3
                 ) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, ScoreSetup]]:
    """Spearman rho between every pair of proxies over the architectures both scored on
    ``dataset`` (pairwise complete; ``nan`` below ``min_common`` shared architectures).
    Lower-is-better proxies are negated first, so a positive rho means the two agree. Each
    proxy's scores are those of its set-up holding the most scores.

    Returns ``(proxies, rho[p, p], n[p, p], set-up of each proxy)``: ``n`` counts the
    architectures behind each pair (the diagonal: the proxy's own)."""
    with session_scope() as session:
        names = sorted({p for p, d, _ in queries.score_catalogue(session) if d == dataset})
        columns, used = {}, {}
        for name in names:
            found = queries.score_setups(session, name, dataset)
            if not found:
                continue
            used[name] = found[0][0]
            sign = 1.0 if higher_is_better(name) else -1.0
            values = queries.proxy_scores(session, name, dataset, used[name])
            columns[name] = pd.Series({a: sign * v for a, v in values.items()}, dtype=float)
    names = list(columns)
    frame = pd.DataFrame(columns, columns=names)
    present = frame.notna().astype(float)
    counts = (present.T @ present).to_numpy().astype(int) if names else np.zeros((0, 0), dtype=int)
    if frame.empty:
        return names, np.full((len(names), len(names)), np.nan), counts, used
    matrix = frame.corr(method="spearman", min_periods=min_common).to_numpy()
    return names, matrix, counts, used


def proxy_matrix_figure(names: list[str], matrix: np.ndarray, counts: np.ndarray, dataset: str) -> go.Figure:
    """The matrix with rho and the number of architectures behind it in each cell."""
    text = [[("-" if np.isnan(matrix[i, j]) else f"{matrix[i, j]:.2f}") + f"<br>n={counts[i, j]}"
             for j in range(len(names))] for i in range(len(names))]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, text=text, texttemplate="%{text}",
                               colorscale="RdBu", zmin=-1, zmax=1,
                               hovertemplate="%{y} vs %{x}: %{text}<extra></extra>"))
    fig.update_layout(title=f"Proxy vs proxy Spearman rho on {dataset}", yaxis_autorange="reversed",
                      height=max(320, 32 * len(names) + 140), margin={"t": 50, "b": 10})
    return fig
