"""Which operations matter: accuracy (or a search's proxy score) by the operation on each of the
6 cell edges, and each edge's share of the variance (the NAS analogue of Optuna's parameter
importance)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import ui
from app.views import compare, detail, operations, plots
from app.views.pareto import space_points
from app.views.searches import proxies_label
from db.session import database_url
from knas_core.groundtruth import DATASETS, METRICS

METRIC_NAMES = {"test": "200-epoch test", "valid": "200-epoch valid", "valid_12ep": "12-epoch valid"}

st.title("Which operations matter")


@st.cache_data(ttl=3600, show_spinner="Grouping the space...")
def _space(dataset: str, metric: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    long = operations.edge_frame(space_points(dataset, metric))
    return operations.edge_op_stats(long), operations.edge_importance(long)


@st.cache_data(ttl=30, show_spinner=False)
def _search(url: str, search_id: int, dataset: str, metric: str, value: str
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    long = operations.edge_frame(operations.search_points(search_id, dataset, metric, value), value)
    return operations.edge_op_stats(long), operations.edge_importance(long)


searches = {o["id"]: o["label"] for o in compare.choices()}
c1 = c2 = c3 = c4 = st.container(horizontal=True, vertical_alignment="bottom")  # wraps when narrow
asked = ui.int_param("search")
search_id = c1.selectbox("Search", [None, *searches], key="op-search",
                         index=[None, *searches].index(asked) if asked in searches else 0,
                         format_func=lambda i: "none: the whole space" if i is None else searches[i])
config = (detail.search_config(search_id) or {}) if search_id is not None else {}
if config.get("space", "nb201") != "nb201":
    st.info("Edges and operations are NAS-Bench-201's; this search is of another space.")
    st.stop()
datasets = list(DATASETS)
default_ds = config.get("dataset", "cifar10")
dataset = c2.selectbox("Dataset", datasets, index=datasets.index(default_ds) if default_ds in datasets else 0,
                       key=f"op-dataset-{search_id}")
metric = c3.selectbox("Accuracy", list(METRICS), format_func=METRIC_NAMES.get, key="op-metric")
value = c4.radio("Value", ["accuracy", "score"], horizontal=True, key="op-value",
                 help="a search's own proxy score shows what its proxy favours") if search_id is not None \
    else "accuracy"
if search_id is not None:
    st.query_params["search"] = str(search_id)
elif "search" in st.query_params:
    del st.query_params["search"]

stats, importance = _space(dataset, metric) if search_id is None \
    else _search(database_url(), search_id, dataset, metric, value)
if not stats:
    st.info("No architectures with a value here yet.")
    st.stop()
value_title = f"{dataset} {METRIC_NAMES[metric]} accuracy (%)" if value == "accuracy" \
    else f"{proxies_label(config)} score"
st.plotly_chart(plots.operations_figure(stats, value_title), key="op-figure")
n_archs = sum(s["n"] for s in stats if s["edge"] == stats[0]["edge"])
st.caption(f"{n_archs} architectures. Boxes: quartiles; whiskers: the furthest value within 1.5 IQR; "
           "dashed: the mean.")
ui.table_section("Importance of each edge", importance, f"edge-importance-{dataset}", "op-importance",
                 "No architectures.", column_config={
                     "eta2": st.column_config.NumberColumn("variance share (eta^2)", format="%.3f"),
                     "spread": st.column_config.NumberColumn("best - worst mean", format="%.3f")})
st.caption("eta^2: the share of the variance explained by the edge's operation alone (a one-way analysis of "
           "variance, the first-order term of the functional ANOVA behind Optuna's parameter importance).")
with st.expander("Statistics per edge and operation"):
    st.dataframe(stats, hide_index=True, key="op-stats")
    ui.export_buttons(stats, f"edge-operations-{dataset}", "op-stats")
