"""Data and figures of the Proxy lab page (no Streamlit here, so they are testable alone).

Data functions read and write through ``db.discovery`` / ``tasks.discovery``; figure functions
turn their rows into Plotly figures.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from db import discovery as repo
from db.session import session_scope
from db.status import Status
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


#: The lab's own minimums, above what :class:`~knas_core.discovery.run.DiscoveryConfig` accepts
#: (``knas evolve`` may gather tensors only, or skip the held-out set): a run started here evolves
#: a program and measures it on architectures it never saw.
LAB_MINIMUMS = {
    "generations": (1, "with 0 generations nothing is evolved: the run only scores a random first "
                       "population"),
    "heldout": (2, "the held-out Kendall tau, how the lab judges a program on architectures it never "
                   "saw, needs at least two of them (0: nothing is held out)"),
}


def lab_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, message)`` for each :data:`LAB_MINIMUMS` that ``config`` falls below (a value
    that is not a whole number is left to the config's own check)."""
    out = []
    for field, (low, why) in LAB_MINIMUMS.items():
        value = config.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value < low:
            out.append((field, f"must be at least {low} here, got {value}: {why}"))
    return out


def start_run(config: dict[str, Any], name: str = "") -> int:
    """Submit a discovery run to the workers (queue ``score``); returns its id. Raises
    :class:`ConfigError` with every problem of the config and of :func:`lab_problems` (see
    :func:`form_errors`), writing nothing, or ``ConnectionError`` (no broker)."""
    from knas_core.discovery.run import DiscoveryConfig
    from tasks.discovery import submit_discovery

    problems = lab_problems(config)
    try:
        DiscoveryConfig.from_dict(config)
    except ConfigError as exc:
        own = {field for field, _ in exc.problems}
        problems = list(exc.problems) + [p for p in problems if p[0] not in own]
    if problems:
        raise ConfigError("\n".join(f"{field}: {message}" for field, message in problems), problems)
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


class PromotionRefused(ValueError):
    """A promotion that needs confirming; ``concerns`` are the reasons (:func:`promotion_concerns`)."""

    def __init__(self, concerns: list[str]) -> None:
        super().__init__("; ".join(concerns))
        self.concerns = concerns


def _tau_concern(tau: float | None, which: str, none: str) -> str | None:
    if tau is None:
        return none
    if tau <= 0:
        how = "in reverse (a higher score goes with a lower accuracy)" if tau < 0 else "no better than chance"
        return (f"its {which} Kendall tau is {tau:.3f}: it ranks those architectures {how}, and a "
                "search keeps the highest scores")
    return None


def promotion_concerns(detail: dict[str, Any]) -> list[str]:
    """Why promoting the best program of a run (a :func:`run_detail`) may be a mistake: a training
    or held-out Kendall tau (Akhauri et al. 2022's fitness) that is missing or at most 0, or a
    run that has not finished. Empty when there is nothing to say."""
    concerns = [c for c in (
        _tau_concern(detail.get("train_kendall"), "training", "it has no training Kendall tau yet"),
        _tau_concern(detail.get("heldout_kendall"), "held-out",
                     "it has no held-out Kendall tau: how it ranks unseen architectures was not measured"),
    ) if c]
    status = detail.get("status")
    if status in Status.ACTIVE:
        concerns.append(f"the run is still {status}: its best program may change")
    elif status != Status.DONE:
        concerns.append(f"the run ended {status}: the program comes from an unfinished run")
    return concerns


def promote(run_id: int, name: str, url: str | None = None, confirmed: bool = False) -> dict[str, Any]:
    """Promote the best program of ``run_id`` to proxy ``name``. Raises :class:`PromotionRefused`
    when :func:`promotion_concerns` has anything to say and ``confirmed`` is false."""
    from tasks.discovery import promote_run

    detail = run_detail(run_id, url)
    concerns = promotion_concerns(detail) if detail["best_formula"] else []  # none: promote_run says so
    if concerns and not confirmed:
        raise PromotionRefused(concerns)
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
