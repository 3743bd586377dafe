"""Plotly drawing of the comparison, Pareto, operation and sampling-order views. The numbers are
computed (and tested) in :mod:`app.views.compare`, :mod:`app.views.pareto`,
:mod:`app.views.operations` and :mod:`app.views.sampling`; these functions only draw them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from knas_core.spaces.nb201 import EDGES, OPS, parse_arch

#: One colour per operation, the same on every chart.
OP_COLOURS = dict(zip(OPS, ("#9e9e9e", "#4c78a8", "#f58518", "#e45756", "#54a24b")))
_LAYOUT: dict[str, Any] = {"height": 360, "margin": {"t": 50, "b": 10}}


def cell_hover(arch: str) -> str:
    """An NB201 cell for a hover label: one line per edge (``0>1 nor_conv_3x3``); the string as
    it is for another space's architecture."""
    try:
        ops = parse_arch(arch)
    except ValueError:
        return arch
    return "<br>".join(f"{j}>{i} {op}" for (j, i), op in zip(EDGES, ops))


def compare_figure(curves: Mapping[int, Sequence[dict[str, Any]]], labels: Mapping[int, str],
                   x: str, y: str, x_title: str) -> go.Figure:
    """One step line per search (``x`` against ``y`` of its rows), named by ``labels``."""
    fig = go.Figure()
    for search_id, rows in curves.items():
        if not rows:
            continue
        fig.add_trace(go.Scatter(
            x=[r[x] for r in rows], y=[r[y] for r in rows], mode="lines+markers", line={"shape": "hv"},
            name=labels.get(search_id, f"#{search_id}"),
            hovertext=[cell_hover(r["arch"]) if r.get("arch") else "" for r in rows]))
    fig.update_layout(title="Best so far", xaxis_title=x_title, yaxis_title="accuracy (%)",
                      legend={"orientation": "h", "y": -0.25}, **{**_LAYOUT, "height": 440})
    return fig


def pareto_figure(space: Sequence[dict[str, Any]], cost_title: str, acc_title: str,
                  search: Sequence[dict[str, Any]] | None = None, search_label: str = "search") -> go.Figure:
    """Accuracy against cost: ``space`` rows in grey (their front as a line), ``search`` rows
    coloured (their own front as a line); rows as :func:`app.views.pareto.front_rows`. Hover
    shows the index, the cell's operations, cost and accuracy."""
    fig = go.Figure()
    groups = [("space", space, "#bbbbbb", "#333333")]
    if search is not None:
        groups.append((search_label, search, "#4c78a8", "#e45756"))
    # WebGL for a large space; then for every trace, since WebGL draws above the SVG ones
    scatter = go.Scattergl if len(space) > 2000 else go.Scatter
    for name, rows, colour, front_colour in groups:
        if not rows:
            continue
        fig.add_trace(scatter(
            x=[r["cost"] for r in rows], y=[r["accuracy"] for r in rows], mode="markers", name=name,
            marker={"color": colour, "size": 4 if name == "space" else 7, "opacity": 0.6},
            customdata=[[r["index"], cell_hover(r["arch"])] for r in rows],
            hovertemplate="index %{customdata[0]}<br>%{customdata[1]}<br>cost %{x:.3f}, "
                          "accuracy %{y:.2f}<extra></extra>"))
        front = sorted((r for r in rows if r["on_front"]), key=lambda r: r["cost"])
        fig.add_trace(scatter(
            x=[r["cost"] for r in front], y=[r["accuracy"] for r in front], mode="lines+markers",
            name=f"{name}: Pareto front ({len(front)})", line={"shape": "hv", "color": front_colour},
            marker={"size": 8, "color": front_colour},
            customdata=[[r["index"], cell_hover(r["arch"])] for r in front],
            hovertemplate="index %{customdata[0]}<br>%{customdata[1]}<br>cost %{x:.3f}, "
                          "accuracy %{y:.2f}<extra>front</extra>"))
    fig.update_layout(title="Accuracy against cost", xaxis_title=cost_title, yaxis_title=acc_title,
                      **{**_LAYOUT, "height": 520})
    return fig


def operations_figure(stats: Sequence[dict[str, Any]], value_title: str) -> go.Figure:
    """Grouped boxes: for each edge, one box per operation (precomputed statistics from
    :func:`app.views.operations.edge_op_stats`)."""
    fig = go.Figure()
    for op in OPS:
        mine = [s for s in stats if s["op"] == op]
        if not mine:
            continue
        fig.add_trace(go.Box(
            x=[s["edge"] for s in mine], q1=[s["q1"] for s in mine], median=[s["median"] for s in mine],
            q3=[s["q3"] for s in mine], lowerfence=[s["lowerfence"] for s in mine],
            upperfence=[s["upperfence"] for s in mine], mean=[s["mean"] for s in mine], name=op,
            marker_color=OP_COLOURS[op], hovertext=[f"n={s['n']}" for s in mine]))
    fig.update_layout(boxmode="group", title="By the operation on each edge (j>i: node j into node i)",
                      xaxis_title="edge", yaxis_title=value_title, **{**_LAYOUT, "height": 460})
    return fig


def score_order_figure(rows: Sequence[dict[str, Any]], label: str, log_y: bool = False) -> go.Figure:
    """Each architecture's score by sampling order, and the best score so far; ``label`` names
    the scores on the y-axis (``synflow score``, ``ensemble score``), a log axis with ``log_y``."""
    scatter = go.Scattergl if len(rows) > 2000 else go.Scatter
    # arrays, not lists: Streamlit deep-copies a figure's data on every run (a whole space's rows)
    sampled = np.fromiter((r["sampled"] for r in rows), np.int64, len(rows))
    fig = go.Figure()
    fig.add_trace(scatter(x=sampled, y=np.fromiter((r["score"] for r in rows), float, len(rows)),
                          mode="markers", name="score", marker={"color": "#999", "size": 4}))
    best = np.fromiter((r["best"] for r in rows), float, len(rows))
    fig.add_trace(scatter(x=sampled, y=best, mode="lines", name="best so far", line={"shape": "hv"}))
    fig.update_layout(title="Score by sampling order", xaxis_title="architectures sampled", yaxis_title=label,
                      yaxis_type="log" if log_y else "linear", yaxis_exponentformat="power",
                      **{**_LAYOUT, "height": 320})
    return fig
