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


#: Where along an edge (0..1) its arrow shaft starts: the shaft is the edge's last segment.
ARROW_FROM = 0.8
#: The 0->3 edge bends below node 2; its label sits at this point (the curve's middle).
LONG_EDGE_MIDDLE = (1.5, -0.5)


def edge_path(src: int, dst: int) -> list[tuple[float, float]]:
    """The points an edge is drawn through, ending with the segment that carries its arrowhead.

    Edges are straight except 0->3, which would pass through node 2: it is a quadratic Bezier
    curve ``B(t) = (1-t)^2 P0 + 2t(1-t) C + t^2 P1`` whose control point ``C`` puts ``B(1/2)``
    at :data:`LONG_EDGE_MIDDLE`, sampled up to ``t = ARROW_FROM`` and then joined to node ``dst``
    by one straight segment (the arrow shaft, which so never leaves the drawn edge)."""
    (x0, y0), (x1, y1) = NODE_XY[src], NODE_XY[dst]
    if (src, dst) != (0, 3):
        return [(x0, y0), (x0 + ARROW_FROM * (x1 - x0), y0 + ARROW_FROM * (y1 - y0)), (x1, y1)]
    mx, my = LONG_EDGE_MIDDLE
    cx, cy = 2 * mx - (x0 + x1) / 2, 2 * my - (y0 + y1) / 2
    steps = [k / 20 for k in range(round(20 * ARROW_FROM) + 1)]
    return [((1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t ** 2 * x1,
             (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t ** 2 * y1) for t in steps] + [(x1, y1)]


def edge_label_xy(src: int, dst: int) -> tuple[float, float]:
    """Where an edge's operation is written: the middle of the edge."""
    if (src, dst) == (0, 3):
        return LONG_EDGE_MIDDLE
    (x0, y0), (x1, y1) = NODE_XY[src], NODE_XY[dst]
    return (x0 + x1) / 2, (y0 + y1) / 2


def cell_figure(arch: str, title: str = "") -> go.Figure:
    """Draw the cell: nodes as circles, edges as arrows labelled with their operation
    (``none`` edges dotted grey: they carry nothing). Each arrow's shaft is the last segment
    of its edge's path (:func:`edge_path`)."""
    fig = go.Figure()
    for e in cell_edges(arch):
        path = edge_path(e.src, e.dst)
        (tx, ty), (hx, hy) = path[-2], path[-1]
        mx, my = edge_label_xy(e.src, e.dst)
        colour = OP_COLOURS.get(e.op, "#333")
        fig.add_trace(go.Scatter(x=[x for x, _ in path], y=[y for _, y in path], mode="lines",
                                 hoverinfo="text", text=f"{e.src}→{e.dst}: {e.op}", showlegend=False,
                                 line={"color": colour, "width": 3, "shape": "linear",
                                       "dash": "dot" if e.op == "none" else "solid"}))
        fig.add_annotation(x=hx, y=hy, ax=tx, ay=ty, xref="x", yref="y", axref="x", ayref="y",
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
