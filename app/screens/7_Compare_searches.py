"""Compare searches: best-so-far curves of several searches on one chart, and the mean +- std over
seeds of what each kind of search found (docs/RESULTS.md "Search strategies", from the browser)."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.views import compare, plots
from db.status import Status

st.title("Compare searches")

options = compare.choices()
if not options:
    ui.empty_state("No searches yet: start a few (several seeds of each strategy) to compare them.",
                   "screens/2_New_search.py", "Start a search")
    st.stop()
labels = {o["id"]: o["label"] for o in options}
asked = [int(v) for v in st.query_params.get("searches", "").split(",") if v.strip().isdigit()]
if "cmp-searches" not in st.session_state:  # first run: the link's choice, else the newest finished
    st.session_state["cmp-searches"] = ([i for i in asked if i in labels]
                                        or [o["id"] for o in options if o["status"] == Status.DONE][:5])
picked = st.multiselect("Searches", list(labels), format_func=lambda i: labels[i], key="cmp-searches",
                        help="the URL keeps the choice (?searches=3,5,8)")
st.query_params["searches"] = ",".join(str(i) for i in picked)

x = st.radio("Best so far against", list(compare.CURVES), horizontal=True, key="cmp-x",
             format_func=lambda k: compare.CURVES[k][2])
x_col, y_col, x_title = compare.CURVES[x]
curves = compare.curves(picked, x)
drawn = {i: rows for i, rows in curves.items() if rows}
if drawn:
    st.plotly_chart(plots.compare_figure(drawn, labels, x_col, y_col, x_title), key="cmp-curves")
elif picked:
    st.info("None of the chosen searches has this curve yet.")
missing = [labels[i] for i in picked if i not in drawn]
if missing:
    why = "nothing evaluated yet" + (", or no per-architecture scores stored" if x == "scored" else "")
    st.caption(f"Not drawn ({why}): " + "; ".join(ui.md_text(m) for m in missing))
if x == "scored":
    st.caption("After each architecture scored: the benchmark's 200-epoch test accuracy of the one the "
               "search would choose then (its best-scored so far).")

st.subheader("Mean +- std over seeds")
every = st.toggle("Every finished search, not only the chosen ones", key="cmp-all")
rows = compare.outcomes(None if every else picked)
table = compare.summary(rows)
if not table:
    st.info("No finished search among these: the table groups searches that are done.")
else:
    number = st.column_config.NumberColumn
    st.dataframe(table, hide_index=True, key="cmp-summary",
                 column_config={"test_acc_mean": number("test acc mean (%)", format="%.2f"),
                                "test_acc_std": number("+- std", format="%.2f"),
                                "percentile_mean": number("percentile", format="%.1f"),
                                "seconds_mean": number("search s", format="%.0f")})
    ui.export_buttons(table, "search-comparison", "cmp-summary")
    st.caption("Grouped by data set, strategy, proxies and budget (architectures scored, top-k, evaluation, "
               "strategy options); test accuracy of the architecture found (200 epochs, its data set), "
               "population std as benchmarks/search.py prints it.")
    with st.expander(f"The {len(rows)} searches"):
        st.dataframe(rows, hide_index=True, key="cmp-rows")
        ui.export_buttons(rows, "search-comparison-runs", "cmp-rows")
