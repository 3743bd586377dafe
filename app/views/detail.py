"""The Search-detail page: ranking (server-side filtered and paged), score histogram,
best-so-far accuracy and the top-k training curves."""

from __future__ import annotations

from typing import Any

import plotly.express as px
import plotly.graph_objects as go

from db import queries
from db.queries import RankingFilter
from db.session import session_scope


def search_config(search_id: int) -> dict[str, Any] | None:
    with session_scope() as session:
        return queries.search_config(session, search_id)


def ranking(search_id: int, flt: RankingFilter | None = None, *, sort: str = "rank",
            descending: bool = False, page: int = 1, page_size: int | None = 50
            ) -> tuple[list[dict[str, Any]], int]:
    """One page (1-based) of the ranking and the number of matching candidates;
    ``page_size=None`` gives every match (for export)."""
    flt = flt or RankingFilter()
    offset = (max(page, 1) - 1) * page_size if page_size else 0
    with session_scope() as session:
        return queries.ranking_page(session, search_id, flt, sort=sort, descending=descending,
                                    limit=page_size, offset=offset)


def score_range(search_id: int) -> tuple[list[float], list[float]]:
    """``(scores, accuracies)`` present among the candidates (for histograms and slider bounds)."""
    with session_scope() as session:
        values = queries.candidate_values(session, search_id)
    return [s for _, s, _, _ in values if s is not None], [a for _, _, a, _ in values if a is not None]


def score_histogram_figure(scores: list[float], proxy: str, bins: int = 40) -> go.Figure:
    fig = px.histogram(x=scores, nbins=bins, labels={"x": f"{proxy} score"}, title="Score distribution")
    fig.update_layout(yaxis_title="architectures", height=320, margin={"t": 40, "b": 10})
    return fig


def best_so_far(search_id: int) -> list[dict[str, Any]]:
    """Best accuracy against architectures evaluated, in evaluation order (rank order: KNAS
    evaluates its top-k best score first; the other strategies store their trace in order).

    Rows: ``evaluated`` (1-based count), ``rank``, ``accuracy`` (%), ``best`` (running max, %).
    """
    with session_scope() as session:
        values = queries.candidate_values(session, search_id)
    done = sorted(((r, a) for _, _, a, r in values if a is not None and r is not None))
    rows, best = [], float("-inf")
    for n, (rank, acc) in enumerate(done, start=1):
        best = max(best, acc)
        rows.append({"evaluated": n, "rank": rank, "accuracy": acc, "best": best})
    return rows


def best_so_far_figure(rows: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[r["evaluated"] for r in rows], y=[r["accuracy"] for r in rows],
                             mode="markers", name="evaluated", marker={"color": "#999"}))
    fig.add_trace(go.Scatter(x=[r["evaluated"] for r in rows], y=[r["best"] for r in rows],
                             mode="lines+markers", name="best so far", line={"shape": "hv"}))
    fig.update_layout(title="Best accuracy so far", xaxis_title="architectures evaluated",
                      yaxis_title="accuracy (%)", height=320, margin={"t": 40, "b": 10})
    return fig


def training_curves(search_id: int, k: int = 10) -> list[dict[str, Any]]:
    """Per-epoch test accuracy of the ``k`` best-ranked trained candidates:
    rows ``rank, arch, epoch, test_acc, train_acc``."""
    with session_scope() as session:
        runs = queries.search_training_runs(session, search_id)
    rows = []
    for run in runs[:k]:
        for e in run["history"] or []:
            rows.append({"rank": run["rank"], "arch": run["arch"], "epoch": e.get("epoch"),
                         "test_acc": e.get("test_acc"), "train_acc": e.get("train_acc")})
    return rows


def training_curves_figure(rows: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for rank in sorted({r["rank"] for r in rows}):
        mine = [r for r in rows if r["rank"] == rank]
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in mine], y=[r["test_acc"] for r in mine],
                                 mode="lines+markers", name=f"rank {rank}", hovertext=mine[0]["arch"]))
    fig.update_layout(title="Top-k training curves", xaxis_title="epoch", yaxis_title="test accuracy (%)",
                      height=320, margin={"t": 40, "b": 10})
    return fig
