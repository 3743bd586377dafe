"""Search detail: live progress, the ranking (sorted, filtered, paged in the database), the
selected cell, best-so-far accuracy, score histogram and top-k training curves."""

from __future__ import annotations

import math

import streamlit as st

from app import ui
from app.views import detail
from app.views.cell import cell_figure
from app.views.searches import progress_fraction
from db.queries import RANKING_SORTS, RankingFilter
from db.status import Status
from knas_core.spaces.nb201 import OPS
from tasks.api import cancel_search, search_progress

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
proxy = "+".join(config.get("proxies") or [config.get("proxy", "knas")])
#: Cells, their operations and the Architecture page are NAS-Bench-201's; a plugin space's
#: architectures are shown as their strings.
nb201 = config.get("space", "nb201") == "nb201"


@st.fragment(run_every=2.0 if first["status"] in Status.ACTIVE else None)
def live() -> None:
    p = search_progress(search_id)
    p["topk"] = config.get("topk")
    st.subheader(f"#{p['id']} {ui.md_text(p['name'] or '')} · {ui.md_text(p['status'])} · "
                 f"stage {ui.md_text(p['stage'])}")
    st.progress(progress_fraction(p), text=f"scored {p['scored']}/{p['total']} ({p['failed']} failed), "
                f"evaluated {p['evaluated']}")
    cols = [st.container(horizontal=True, gap="large")] * 4  # one row that wraps when narrow
    cols[0].metric("scored/s", f"{p['rate']:.2f}" if p["rate"] else "-")
    cols[1].metric("ETA", f"{p['eta_seconds']:.0f} s" if p["eta_seconds"] else "-")
    best = p.get("best") or {}
    acc = best.get("accuracy")
    cols[2].metric("best accuracy (%)", f"{acc:.2f}" if acc is not None else "-")
    cols[3].metric("best index", best.get("index") if best.get("index") is not None else "-")
    if best.get("arch"):
        st.caption(f"best so far: {ui.md_code(best['arch'])}")
    if p.get("data_description"):
        st.caption(f"images: {ui.md_text(p['data_description'])} · {ui.md_code(p['data'])}")
    if p["error"]:
        st.error(ui.md_text(p["error"]))
    if first["status"] in Status.ACTIVE and p["status"] not in Status.ACTIVE:
        st.rerun()  # finished: redraw the whole page once (charts, cached ranking)


live()

if ui.writable() and first["status"] in Status.ACTIVE \
        and st.button("Cancel this search", key="detail-cancel"):
    cancel_search(search_id)
    st.rerun()
with st.expander("Configuration"):
    st.json(config)
    if ui.writable():
        st.page_link("screens/2_New_search.py", label="Clone as new", query_params={"clone": str(search_id)})

# --- ranking ------------------------------------------------------------------------------------
st.subheader("Ranking")
charts = ui.search_charts(search_id, first["status"], int(config.get("topk") or 10))
scores, accs = charts["scores"], charts["accuracies"]
# fixed widths in a row that wraps: at 800 px they go on two lines instead of being cut to "r", "D."
f1 = f2 = f3 = f4 = st.container(horizontal=True, vertical_alignment="bottom")
ops = f1.multiselect("Cells containing", OPS, key="rk-ops", help="keep cells with every chosen operation",
                     width=190) if nb201 else []
score_lo = score_hi = acc_lo = acc_hi = None
if scores and min(scores) < max(scores):
    lo, hi = float(min(scores)), float(max(scores))
    score_lo, score_hi = f2.slider("Score range", lo, hi, (lo, hi), key="rk-score", width=190)
if accs and min(accs) < max(accs):
    lo, hi = math.floor(min(accs)), math.ceil(max(accs))
    acc_lo, acc_hi = f3.slider("Accuracy range (%)", float(lo), float(hi), (float(lo), float(hi)),
                               key="rk-acc", width=190)
sort = f4.selectbox("Sort by", list(RANKING_SORTS), key="rk-sort", width=140)
desc = f4.toggle("Descending", key="rk-desc")
full_score = scores and (score_lo, score_hi) == (min(scores), max(scores))
full_acc = accs and (acc_lo, acc_hi) == (math.floor(min(accs)), math.ceil(max(accs)))
flt = RankingFilter(ops=tuple(ops), score_min=None if full_score else score_lo,
                    score_max=None if full_score else score_hi,
                    acc_min=None if full_acc else acc_lo, acc_max=None if full_acc else acc_hi)
size = 50
_, total = ui.ranking(search_id, first["status"], flt, sort, desc, 1, 1)
pages = max(1, math.ceil(total / size))
page = st.number_input(f"Page (of {pages}; {total} architectures)", 1, pages, 1, key="rk-page", width=260)
rows, total = ui.ranking(search_id, first["status"], flt, sort, desc, int(page), size)
if not rows:
    st.info("No architectures match yet: widen the filters, or wait for the search to sample.")
else:
    event = st.dataframe(rows, hide_index=True, key="ranking", on_select="rerun", selection_mode="single-row",
                         column_order=("rank", "index", "score", "accuracy", "stage", "eval", "position",
                                       "arch"),  # the long string last: the numbers show at 800 px
                         column_config={"arch": st.column_config.TextColumn("architecture", width="large"),
                                        "accuracy": st.column_config.NumberColumn("accuracy (%)",
                                                                                  format="%.2f")})
    export_rows, _ = ui.ranking(search_id, first["status"], flt, sort, desc, 1, None)
    ui.export_buttons(export_rows, f"search-{search_id}-ranking", "ranking")
    picked = event.selection.rows if event and event.selection else []
    chosen = rows[picked[0]] if picked else rows[0]
    c1, c2 = st.columns([3, 2])
    title = f"cell of index {chosen['index']} (rank {chosen['rank']})"
    if nb201:
        c1.plotly_chart(cell_figure(chosen["arch"], title=title), key="cell")
    c2.markdown(ui.md_code(chosen["arch"]))
    if chosen["index"] is not None and nb201:
        st.page_link("screens/5_Architecture.py", label="Everything about this architecture",  # full width
                     query_params={"arch": str(chosen["index"])})

# --- charts -------------------------------------------------------------------------------------
left, right = st.columns(2)
if scores:
    left.plotly_chart(detail.score_histogram_figure(scores, proxy), key="histogram")
else:
    left.info("No scores yet.")
trace = charts["best_so_far"]
if trace:
    right.plotly_chart(detail.best_so_far_figure(trace), key="best-so-far")
else:
    right.info("No architecture evaluated yet.")
curves = charts["curves"]
if curves:
    st.plotly_chart(detail.training_curves_figure(curves), key="curves")
elif config.get("eval") == "train":
    st.info("Training curves appear as the top-k train.")
