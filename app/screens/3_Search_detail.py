"""Search detail: live progress and the headline figures, the ranking with the scores as they
are stored (live while the search scores), the chosen cell, best-so-far accuracy, score
histogram, score by sampling order and top-k training curves."""

from __future__ import annotations

import math

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app import ui
from app.views import detail
from app.views.searches import can_cancel, progress_fraction, progress_text, shown_stage
from db.status import Status
from knas_core.spaces.nb201 import OPS
from tasks.api import cancel_search, search_progress
from tasks.pace import PaceUnit

st.title("Search detail")

search_id = ui.int_param("search")
if search_id is None:
    st.info("No search chosen: open one from the Searches page, or start one.")
    st.page_link("screens/1_Searches.py", label="Searches")
    st.page_link("screens/2_New_search.py", label="Start a search")
    st.stop()
try:
    first = search_progress(search_id)
except KeyError:
    st.error(f"No search with id {search_id}.")
    st.page_link("screens/1_Searches.py", label="Searches")
    st.stop()
config = detail.search_config(search_id) or {}
#: Cells, their operations and the Architecture page are NAS-Bench-201's; a plugin space's
#: architectures are shown as their strings.
nb201 = config.get("space", "nb201") == "nb201"
ACTIVE = first["status"] in Status.ACTIVE
RATE_HELP = {PaceUnit.SCORED: "architectures scored per second by this search (cache hits left out)",
             PaceUnit.STEPS: "NASI's supernet optimisation steps per second",
             PaceUnit.EVALUATED: "architectures evaluated per second (random search scores nothing)"}


@st.fragment(run_every=2.0 if ACTIVE else None)
def live() -> None:
    p = search_progress(search_id)
    p["topk"] = config.get("topk")
    ended = p["status"] in Status.ENDED
    where = "" if p["status"] == Status.DONE else \
        f" · {'ended at' if ended else 'stage'} {ui.md_text(shown_stage(p['status'], p['stage']))}"
    st.subheader(f"#{p['id']} {ui.md_text(p['name'] or '')} · {ui.md_text(p['status'])}{where}")
    st.progress(progress_fraction(p), text=progress_text(p, config.get("strategy")))
    first_row = detail.leader(ui.ranking_table(search_id, first["status"]))
    figures = detail.headline(p, config, first_row)
    row = st.container(horizontal=True, gap="large")  # one row that wraps when narrow, nothing cut
    for m in figures:
        row.metric(m.label, m.value, help=m.help, width="content")
    if p["status"] == Status.RUNNING:  # the pace of tasks.pace, as `knas status` shows it
        rate = eta = st.container(horizontal=True, gap="large")
        rate.metric(f"{p['rate_unit']}/s", f"{p['rate']:.2f}" if p["rate"] else "-",
                    help=RATE_HELP[p["rate_unit"]])
        eta.metric("ETA", f"{p['eta_seconds']:.0f} s" if p["eta_seconds"] is not None else "-")
    best = detail.found(p, first_row)
    if best.get("arch"):
        st.caption(f"{'found' if p['status'] == Status.DONE else 'best so far'}: {ui.md_code(best['arch'])}")
    if p.get("data_description"):
        st.caption(f"images: {ui.md_text(p['data_description'])} · {ui.md_code(p['data'])}")
    if p["error"]:
        st.error(ui.md_text(p["error"]))
    if ACTIVE and ended:
        st.rerun()  # finished: redraw the whole page once (charts, cached ranking)


live()

if ui.writable() and can_cancel(first["status"]) and st.button("Cancel this search", key="detail-cancel"):
    cancel_search(search_id)
    st.rerun()
with st.expander("Configuration"):
    st.json(config)
    if ui.writable():
        st.page_link("screens/2_New_search.py", label="Clone as new", query_params={"clone": str(search_id)})


def _score_filter(scores: list[float], column: DeltaGenerator) -> tuple[float | None, float | None]:
    """The score range chosen (None: that side open); no slider until two scores differ."""
    if not scores or min(scores) >= max(scores):
        return None, None
    lo, hi = float(min(scores)), float(max(scores))
    low, high = column.slider("Score range", lo, hi, (lo, hi), step=(hi - lo) / 200, format="%.4g",
                              key="rk-score", width=190)
    return (None, None) if (low, high) == (lo, hi) else (low, high)


def _accuracy_filter(accs: list[float], column: DeltaGenerator) -> tuple[float | None, float | None]:
    if not accs or min(accs) >= max(accs):
        return None, None
    lo, hi = float(math.floor(min(accs))), float(math.ceil(max(accs)))
    low, high = column.slider("Accuracy range (%)", lo, hi, (lo, hi), key="rk-acc", width=190)
    return (None, None) if (low, high) == (lo, hi) else (low, high)


# --- ranking ------------------------------------------------------------------------------------
@st.fragment(run_every=5.0 if ACTIVE else None)
def ranking() -> None:
    """The whole ranking with the scores as stored (redrawn every 5 s while the search runs):
    filtered, sorted and paged over every candidate; the export holds every filtered row."""
    st.subheader("Ranking")
    table = ui.ranking_table(search_id, first["status"])
    # fixed widths in a row that wraps: at 800 px they go on two lines instead of being cut to "r", "D."
    f1 = f2 = f3 = f4 = st.container(horizontal=True, vertical_alignment="bottom")
    ops = f1.multiselect("Cells containing", OPS, key="rk-ops", width=190,
                         help="keep cells with every chosen operation") if nb201 else []
    score_lo, score_hi = _score_filter(table.scores(), f2)
    acc_lo, acc_hi = _accuracy_filter(table.accuracies(), f3)
    sort = f4.selectbox("Sort by", table.sorts, key="rk-sort", width=140,
                        format_func=lambda c: table.score_label if c == "score" else c)
    desc = f4.toggle("Descending", key="rk-desc")
    flt = detail.RankingFilter(ops=tuple(ops), score_min=score_lo, score_max=score_hi, acc_min=acc_lo,
                               acc_max=acc_hi)
    size = 50
    # every row the filters keep, in order, at once: the page, its count and the export
    ordered, total = detail.select_rows(table, flt, sort=sort, descending=desc, page_size=None)
    pages = max(1, math.ceil(total / size))
    page = st.number_input(f"Page (of {pages}; {total} architectures)", 1, pages, 1, key="rk-page", width=260)
    rows = ordered[(int(page) - 1) * size:int(page) * size]
    if not rows:
        st.info("No architectures match yet: widen the filters, or wait for the search to sample.")
    else:
        shown = detail.display_rows(rows, table)
        for row in shown:  # st.table renders Markdown: user-facing text stays text
            # ... and goes last: the numbers show before the long strings (at 800 px too)
            row["architecture"] = ui.md_code(row.pop("architecture"))
            if "error" in row:
                row["error"] = ui.md_text(row.pop("error"))
        # A static table: the one sort is "Sort by" and the one download "Export", both over the
        # whole filtered ranking (a grid's own header sort and CSV would cover this page only).
        st.table(shown, hide_index=True, height=600 if len(shown) > 15 else "content")
        # every filtered row, selected and written only when a download is asked for
        ui.export_buttons(lambda: ordered, f"search-{search_id}-ranking", "ranking", disabled=False)
        c1, c2 = st.columns([3, 2])
        picked = c2.selectbox("Cell of", range(len(rows)), key="rk-cell",
                              format_func=lambda i: f"rank {rows[i]['rank']} · index {rows[i]['index']}"
                              if rows[i]["rank"] is not None else f"position {rows[i]['position']}")
        chosen = rows[picked if picked is not None and picked < len(rows) else 0]
        title = f"cell of index {chosen['index']} (rank {chosen['rank']})"
        if nb201:
            c1.plotly_chart(ui.cell_figure(chosen["arch"], title), key="cell")
        c2.markdown(ui.md_code(chosen["arch"]))
        if chosen["index"] is not None and nb201:
            st.page_link("screens/5_Architecture.py", label="Everything about this architecture",
                         query_params={"arch": str(chosen["index"])})  # full width: cut in the column

    # --- charts ---------------------------------------------------------------------------------
    figures = ui.search_figures(search_id, first["status"], int(config.get("topk") or 10))
    left, right, order = st.columns(3)
    if figures["histogram"] is not None:
        left.plotly_chart(figures["histogram"], key="histogram")
    else:
        left.info("No scores yet.")
    if figures["best_so_far"] is not None:
        right.plotly_chart(figures["best_so_far"], key="best-so-far")
    else:
        right.info("No architecture evaluated yet.")
    if figures["order"] is not None:  # progress before the top-k are evaluated
        order.plotly_chart(figures["order"], key="score-order")
    else:
        order.info("No per-architecture scores yet (searches other than KNAS keep only those they "
                   "evaluated).")
    if figures["curves"] is not None:
        st.plotly_chart(figures["curves"], key="curves")
    elif config.get("eval") == "train":
        st.info("Training curves appear as the top-k train.")


ranking()
