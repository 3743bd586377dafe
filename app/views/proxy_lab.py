"""Data and figures of the Proxy lab page (no Streamlit here, so they are testable alone).

Data functions read and write through ``db.discovery`` / ``tasks.discovery``; figure functions
turn their rows into Plotly figures.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from db import discovery as repo
from db.session import session_scope
from knas_core.errors import ConfigError

RUN_COLUMNS = ("id", "name", "status", "stage", "generation", "generations", "train_kendall",
               "heldout_kendall", "best_formula", "created_at")


def runs(url: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The latest discovery runs, newest first (one dict per run, :data:`RUN_COLUMNS`)."""
    with session_scope(url) as session:
        return [{"id": r.id, "name": r.name, "status": r.status, "stage": r.stage, "generation": r.generation,
                 "generations": r.config.get("generations"), "train_kendall": r.train_kendall,
                 "heldout_kendall": r.heldout_kendall, "best_formula": r.best_formula,
                 "created_at": r.created_at.isoformat() if r.created_at else None}
                for r in repo.list_runs(session, limit)]


def run_detail(run_id: int, url: str | None = None) -> dict[str, Any]:
    """Status, counters, configuration, best program and per-generation rows of one run,
    plus the readable formula of the best program."""
    from knas_core.discovery.formula import readable
    from tasks.discovery import discovery_progress

    detail = discovery_progress(run_id, url)
    detail["readable"] = readable(detail["best_formula"]) if detail["best_formula"] else None
    return detail


def discovered(url: str | None = None) -> list[dict[str, Any]]:
    """Every promoted program (proxy name, formula, correlations, source run)."""
    with session_scope(url) as session:
        return [{"name": p.name, "formula": p.formula, "train_kendall": p.train_kendall,
                 "heldout_kendall": p.heldout_kendall, "run_id": p.run_id, "images": p.images,
                 "created_at": p.created_at.isoformat() if p.created_at else None}
                for p in repo.list_discovered(session)]


#: Field of :class:`~knas_core.discovery.run.DiscoveryConfig` -> the label of the Start form's
#: widget that sets it (a message is shown under its widget).
FORM_LABELS = {"archs": "Training archs", "heldout": "Held-out archs", "generations": "Generations",
               "population": "Population", "C": "C (stem width)", "N": "N (cells per stage)",
               "images": "Images kept per activation (0: all)", "seed": "Seed", "dataset": "Dataset",
               "kinds": "Input kinds", "device": "Device", "data_source": "Data source"}
#: The key of a message that belongs to no widget of the form (shown at its Start button).
FORM = "_start"


def start_run(config: dict[str, Any], name: str = "") -> int:
    """Submit a discovery run to the workers (queue ``score``); returns its id. Raises
    :class:`ConfigError` (see :func:`form_errors`) or ``ConnectionError`` (no broker)."""
    from tasks.discovery import submit_discovery

    return submit_discovery(config, name)


def form_errors(exc: ConfigError) -> dict[str, str]:
    """``{field: message}`` of a refused config, one per field that has a widget on the Start
    form; problems of other fields go under :data:`FORM`, named by the field."""
    if not exc.problems:
        return {FORM: str(exc)}
    out: dict[str, str] = {}
    for field, message in exc.problems:
        if field in FORM_LABELS:
            out.setdefault(field, message)
        else:
            out[FORM] = f"{out[FORM]}; {field}: {message}" if FORM in out else f"{field}: {message}"
    return out


def promote(run_id: int, name: str, url: str | None = None) -> dict[str, Any]:
    """Promote the best program of ``run_id`` to proxy ``name``."""
    from tasks.discovery import promote_run

    return promote_run(run_id, name, url)


def cancel(run_id: int) -> str:
    from tasks.discovery import cancel_discovery

    return cancel_discovery(run_id)


# --- figures ----------------------------------------------------------------------------------

def fitness_figure(history: list[dict[str, Any]]) -> go.Figure:
    """Best and mean training tau and the best program's held-out tau, per generation."""
    gens = [h["generation"] for h in history]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=gens, y=[h["best_fitness"] for h in history], name="best (train)",
                             mode="lines+markers"))
    fig.add_trace(go.Scatter(x=gens, y=[h["mean_fitness"] for h in history], name="mean (train)",
                             mode="lines+markers", line={"dash": "dot"}))
    fig.add_trace(go.Scatter(x=gens, y=[h["heldout_kendall"] for h in history], name="best (held-out)",
                             mode="lines+markers"))
    fig.update_layout(xaxis_title="generation", yaxis_title="Kendall tau", yaxis_range=[-1, 1],
                      hovermode="x unified", margin={"t": 30})
    return fig


def tree_figure(formula: str) -> go.Figure:
    """The program as a tree: operations above their operands, leaves at the bottom."""
    from knas_core.discovery.formula import tree_layout

    layout = tree_layout(formula)
    ex: list[float | None] = []
    ey: list[float | None] = []
    for parent, child in layout.edges:
        ex += [layout.x[parent], layout.x[child], None]
        ey += [layout.y[parent], layout.y[child], None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#999"}, hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=layout.x, y=layout.y, mode="markers+text", text=layout.labels,
                             textposition="top center", marker={"size": 14}, showlegend=False,
                             hovertext=layout.labels))
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, margin={"t": 30, "b": 10},
                      height=120 + 70 * (1 - min(layout.y, default=0)))
    return fig
