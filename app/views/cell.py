"""A NAS-Bench-201 cell as a DAG: 4 nodes, 6 labelled edges (Dong & Yang, ICLR 2020, Fig. 1)."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from knas_core.spaces.nb201 import EDGES, parse_arch

#: Node positions (x, y) in a unit box: input node 0 left, output node 3 right.
NODE_XY: dict[int, tuple[float, float]] = {0: (0.0, 0.5), 1: (1.0, 1.0), 2: (2.0, 0.0), 3: (3.0, 0.5)}
OP_COLOURS = {"none": "#c7c7c7", "skip_connect": "#2ca02c", "nor_conv_1x1": "#1f77b4",
              "nor_conv_3x3": "#d62728", "avg_pool_3x3": "#9467bd"}


@dataclass(frozen=True)
class CellEdge:
    src: int
    dst: int
    op: str


def cell_edges(arch: str) -> list[CellEdge]:
    """The 6 edges of ``arch`` (``src -> dst`` with its operation), in :data:`EDGES` order."""
    return [CellEdge(s, d, op) for (s, d), op in zip(EDGES, parse_arch(arch))]


def cell_figure(arch: str, title: str = "") -> go.Figure:
    """Draw the cell: nodes as circles, edges as arrows labelled with their operation
    (``none`` edges dotted grey: they carry nothing)."""
    fig = go.Figure()
    for e in cell_edges(arch):
        (x0, y0), (x1, y1) = NODE_XY[e.src], NODE_XY[e.dst]
        long_edge = (e.src, e.dst) == (0, 3)  # passes well below node 2
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2 + (-1.0 if long_edge else 0.0)
        colour = OP_COLOURS.get(e.op, "#333")
        fig.add_trace(go.Scatter(x=[x0, mx, x1], y=[y0, my, y1], mode="lines", hoverinfo="text",
                                 text=f"{e.src}→{e.dst}: {e.op}", showlegend=False,
                                 line={"color": colour, "width": 3, "shape": "spline",
                                       "dash": "dot" if e.op == "none" else "solid"}))
        fig.add_annotation(x=x1, y=y1, ax=mx, ay=my, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowsize=1.5, arrowcolor=colour, text="",
                           standoff=16)
        fig.add_annotation(x=mx, y=my, text=f"{e.op}", showarrow=False, font={"size": 11, "color": colour},
                           bgcolor="rgba(255,255,255,0.85)")
    xs, ys = zip(*NODE_XY.values())
    fig.add_trace(go.Scatter(x=list(xs), y=list(ys), mode="markers+text", text=[str(n) for n in NODE_XY],
                             textfont={"color": "white", "size": 14}, hoverinfo="skip", showlegend=False,
                             marker={"size": 30, "color": "#444"}))
    fig.update_layout(title=title or None, height=340,
                      margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                      xaxis={"visible": False, "range": [-0.3, 3.3]},
                      yaxis={"visible": False, "range": [-0.75, 1.3]}, plot_bgcolor="white")
    return fig
