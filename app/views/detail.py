"""The Search-detail page: the headline figures, the ranking (every candidate with its scores
as stored, filtered, sorted and paged here: one sort and one export, both over the whole
ranking), score histogram, best-so-far accuracy and the top-k training curves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from app.views import scores
from db import queries
from db.session import session_scope
from db.status import CandidateStage
from knas_core.errors import InputError
from knas_core.groundtruth import canonical_dataset


def search_config(search_id: int) -> dict[str, Any] | None:
    with session_scope() as session:
        return queries.search_config(session, search_id)


# --- headline ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """One headline figure: its label, its value as shown ("-" when unknown) and what it is."""

    label: str
    value: str
    help: str


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def found(progress: dict[str, Any], leader: dict[str, Any] | None = None) -> dict[str, Any]:
    """The architecture to headline: the search's result once it has one, else ``leader`` (the
    ranking's first row: its scores as stored, so the ensemble's leader for several proxies),
    else the best score so far of :func:`tasks.api.search_progress`."""
    best = progress.get("best") or {}
    if "test_acc" in best or not leader:
        return best
    return {"arch": leader["arch"], "index": leader["index"], "score": leader["score"]}


def headline(progress: dict[str, Any], config: dict[str, Any],
             leader: dict[str, Any] | None = None) -> list[Metric]:
    """The figures at the top of the page. First the found architecture's NAS-Bench-201 200-epoch
    test accuracy and its percentile in the space (``search.result``'s ``test_acc`` and
    ``percentile``, as ``knas search --json`` reports them), then what the search evaluated
    its top-k with, labelled as what it is (the 12-epoch validation accuracy of the benchmark
    for ``eval: lookup``; the test accuracy after the search's own training for ``eval: train``),
    then the architecture's index (:func:`found`). ``progress`` is
    :func:`tasks.api.search_progress`'s."""
    best = found(progress, leader)
    try:
        dataset = canonical_dataset(str(config.get("dataset", "cifar10")))
    except InputError:
        dataset = str(config.get("dataset"))
    test = (best.get("test_acc") or {}).get(dataset)
    percentile = best.get("percentile")
    if config.get("eval", "lookup") == "lookup":
        evaluated = Metric("12-epoch validation (look-up, %)", _percent(best.get("accuracy")),
                           "what the search ranked its top-k by: NAS-Bench-201's validation accuracy "
                           "after the 12-epoch schedule, looked up")
    else:
        epochs = config.get("epochs", 12)
        evaluated = Metric(f"test after {epochs} epochs trained (%)", _percent(best.get("accuracy")),
                           f"what the search ranked its top-k by: test accuracy after training {epochs} "
                           "epochs here")
    return [
        Metric("test accuracy, 200 epochs (%)", _percent(test),
               f"NAS-Bench-201's 200-epoch test accuracy on {dataset} of the architecture the search "
               "found (known once it has ended)"),
        Metric("percentile", "-" if percentile is None else f"{percentile:.1f}",
               f"share of the space's architectures whose 200-epoch test accuracy on {dataset} is at "
               "most the found one's"),
        evaluated,
        Metric("index", "-" if best.get("index") is None else str(best["index"]),
               "NAS-Bench-201 index of the found architecture (the ranking's first while it runs)"),
    ]


# --- ranking -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RankingFilter:
    """Filters of a search's ranking. ``ops``: keep cells holding every one of these operations;
    ranges are inclusive and ``None`` leaves a side open (accuracy in %, score in the units of
    the ranking's ``score``)."""

    ops: tuple[str, ...] = ()
    score_min: float | None = None
    score_max: float | None = None
    acc_min: float | None = None
    acc_max: float | None = None
    stage: CandidateStage | None = None

    def keeps(self, row: dict[str, Any]) -> bool:
        if any(f"|{op}~" not in row["arch"] for op in self.ops):  # the canonical string: "|op~j|"
            return False
        for value, low, high in ((row["score"], self.score_min, self.score_max),
                                 (row["accuracy"], self.acc_min, self.acc_max)):
            if (low is not None or high is not None) and value is None:
                return False
            if low is not None and value < low or high is not None and value > high:
                return False
        return self.stage is None or row["stage"] == self.stage


#: The columns every ranking sorts by; a search with several proxies adds one per proxy.
SORTS = ("rank", "score", "accuracy", "position", "index")


@dataclass(frozen=True)
class RankingTable:
    """Every candidate of a search with its scores as stored (:func:`app.views.scores.live_rows`),
    in sampling order, and the search's proxies."""

    proxies: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    @property
    def ensemble(self) -> bool:
        return len(self.proxies) > 1

    @property
    def proxy_columns(self) -> list[str]:
        """One column per proxy when there are several (the ``score`` is then the ensemble's)."""
        return [scores.proxy_column(p) for p in self.proxies] if self.ensemble else []

    @property
    def score_label(self) -> str:
        """What the ``score`` column holds: ``ensemble score``, or the proxy's score."""
        if self.ensemble:
            return "ensemble score"
        return scores.proxy_column(self.proxies[0]) if self.proxies else "score"

    @property
    def sorts(self) -> tuple[str, ...]:
        return SORTS + tuple(self.proxy_columns)

    def scores(self) -> list[float]:
        return [r["score"] for r in self.rows if r["score"] is not None]

    def accuracies(self) -> list[float]:
        return [r["accuracy"] for r in self.rows if r["accuracy"] is not None]


def ranking_table(search_id: int) -> RankingTable:
    """The whole ranking of a search, scored candidates as they are stored (live while it scores)."""
    proxies, rows = scores.candidates_with_scores(search_id)
    return RankingTable(tuple(proxies), tuple(rows))


def select_rows(table: RankingTable, flt: RankingFilter | None = None, *, sort: str = "rank",
                descending: bool = False, page: int = 1, page_size: int | None = 50
                ) -> tuple[list[dict[str, Any]], int]:
    """One page (1-based) of the rows ``flt`` keeps, sorted by ``sort``, and the number kept;
    ``page_size=None`` gives every match (for export). Missing values sort last whatever the
    direction; ties keep the sampling order."""
    if sort not in table.sorts:
        raise ValueError(f"unknown sort column {sort!r}; choose one of {', '.join(table.sorts)}")
    flt = flt or RankingFilter()
    kept = list(table.rows) if flt == RankingFilter() else [r for r in table.rows if flt.keeps(r)]
    present = sorted((r for r in kept if r[sort] is not None), key=lambda r: r["position"])
    present.sort(key=lambda r: r[sort], reverse=descending)  # stable: ties stay in sampling order
    ordered = present + [r for r in kept if r[sort] is None]
    offset = (max(page, 1) - 1) * page_size if page_size else 0
    chosen = ordered[offset:offset + page_size] if page_size else ordered
    return [dict(r) for r in chosen], len(kept)


def leader(table: RankingTable) -> dict[str, Any] | None:
    """The ranking's first row (rank 1), or None before any candidate has a rank."""
    ranked = (r for r in table.rows if r["rank"] is not None)  # rank order, ties by sampling order
    first = min(ranked, key=lambda r: (r["rank"], r["position"]), default=None)
    return dict(first) if first is not None else None


def ranking(search_id: int, flt: RankingFilter | None = None, *, sort: str = "rank",
            descending: bool = False, page: int = 1, page_size: int | None = 50
            ) -> tuple[list[dict[str, Any]], int]:
    """:func:`select_rows` of the search's :func:`ranking_table`."""
    return select_rows(ranking_table(search_id), flt, sort=sort, descending=descending, page=page,
                       page_size=page_size)


def score_range(search_id: int) -> tuple[list[float], list[float]]:
    """``(scores, accuracies)`` present among the candidates (for histograms and slider bounds)."""
    table = ranking_table(search_id)
    return table.scores(), table.accuracies()


def format_score(value: float | None, digits: int = 6) -> str:
    """A score with ``digits`` significant digits, every one shown: plain for moderate values
    (``1662.42``), scientific beyond (``1.23457e+36``, synflow's products of weights); empty
    when missing. Text, so the table never clips nor refuses it (Streamlit's grid cuts the
    leading digits of a number wider than its column, and draws a whole number above 2**53,
    as 1e36 is as a float, as an error cell, whatever the column's format)."""
    if value is None:
        return ""
    return f"{value:.{digits}g}"


def _whole(value: int | None) -> str:
    return "" if value is None else str(int(value))


def display_rows(rows: list[dict[str, Any]], table: RankingTable) -> list[dict[str, str]]:
    """The ranking rows as the page shows them: text columns in display order, scores by
    :func:`format_score`, accuracy with two decimals; one column per proxy before the
    ensemble's (:attr:`RankingTable.score_label`); ``error`` only when a row has one."""
    errors = any(r.get("error") for r in rows)
    out = []
    for r in rows:
        shown = {"rank": _whole(r["rank"]), "index": _whole(r["index"]), "architecture": r["arch"]}
        shown.update({c: format_score(r.get(c)) for c in table.proxy_columns})
        shown[table.score_label] = format_score(r["score"])
        shown["accuracy (%)"] = "" if r["accuracy"] is None else f"{r['accuracy']:.2f}"
        shown.update({"stage": r["stage"] or "", "eval": r["eval"] or "", "position": _whole(r["position"])})
        if errors:
            shown["error"] = r.get("error") or ""
        out.append(shown)
    return out


# --- charts --------------------------------------------------------------------------------------

#: Positive scores spanning at least this many decades are drawn on a log scale (synflow's
#: products of weights run from 1e30 to 1e40: on a linear axis all but the largest sit at 0).
LOG_DECADES = 3.0


def log_scaled(scores: list[float]) -> bool:
    """Whether ``scores`` are drawn on a log scale: none negative, and the positive ones (at
    least two) spanning at least :data:`LOG_DECADES` decades. Zeros (synflow's where no path
    carries a signal) do not prevent it; the charts leave them out and say how many.

    >>> log_scaled([2.5e35, 1.3e39]), log_scaled([0.0, 2.5e35, 1e39]), log_scaled([-1.0, 1e39])
    (True, True, False)
    >>> log_scaled([1.0, 500.0])
    False
    """
    values = np.asarray(scores, dtype=float)
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    return bool(positive.size > 1 and not (values < 0).any()
                and np.log10(positive.max() / positive.min()) >= LOG_DECADES)


def score_histogram_figure(scores: list[float], label: str, bins: int = 40) -> go.Figure:
    """The scores' histogram; ``label`` names them on the x-axis (``synflow score``, ``ensemble
    score``: :attr:`RankingTable.score_label`). Scores spanning many decades
    (:func:`log_scaled`) are binned by their base-10 logarithm, the axis says so, and the title
    counts the scores of 0 left out."""
    values = np.asarray(scores, dtype=float)  # an array: Streamlit deep-copies a figure's data on every run
    title = "Score distribution"
    if log_scaled(scores):
        zeros = int((values == 0).sum())
        values, label = np.log10(values[values > 0]), f"log10({label})"
        title += f" ({zeros} {'score' if zeros == 1 else 'scores'} of 0 left out)" if zeros else ""
    fig = px.histogram(x=values, nbins=bins, labels={"x": label}, title=title)
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
