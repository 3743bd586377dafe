"""Pareto front: accuracy against parameters or FLOPs, for the whole space (the benchmark table)
and for the architectures a search sampled; the front highlighted, the cell on hover."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import ui
from app.views import compare, detail, pareto, plots
from db.session import database_url
from knas_core.groundtruth import DATASETS, METRICS

METRIC_NAMES = {"test": "200-epoch test", "valid": "200-epoch valid", "valid_12ep": "12-epoch valid"}

st.title("Pareto front")


@st.cache_data(ttl=3600, show_spinner="Pricing the space...")
def _space(dataset: str, metric: str, cost: str) -> list[dict[str, Any]]:
    return pareto.pareto(dataset, metric, cost)


@st.cache_data(ttl=30, show_spinner=False)
def _search(url: str, search_id: int, dataset: str, metric: str, cost: str) -> list[dict[str, Any]]:
    return pareto.pareto(dataset, metric, cost, search_id=search_id)


searches = {o["id"]: o["label"] for o in compare.choices()}
c1 = c2 = c3 = c4 = st.container(horizontal=True, vertical_alignment="bottom")  # wraps when narrow
asked = ui.int_param("search")
search_id = c1.selectbox("Search", [None, *searches], key="pa-search",
                         index=[None, *searches].index(asked) if asked in searches else 0,
                         format_func=lambda i: "none: the whole space" if i is None else searches[i])
default_ds = (detail.search_config(search_id) or {}).get("dataset", "cifar10") if search_id else "cifar10"
datasets = list(DATASETS)
dataset = c2.selectbox("Dataset", datasets, index=datasets.index(default_ds) if default_ds in datasets else 0,
                       key=f"pa-dataset-{search_id}")
metric = c3.selectbox("Accuracy", list(METRICS), format_func=METRIC_NAMES.get, key="pa-metric")
cost = c4.radio("Cost", list(pareto.COSTS), horizontal=True, key="pa-cost")
if search_id is not None:
    st.query_params["search"] = str(search_id)
elif "search" in st.query_params:
    del st.query_params["search"]

space = _space(dataset, metric, cost)
mine = _search(database_url(), search_id, dataset, metric, cost) if search_id is not None else None
show_space = search_id is None or st.toggle("Show the whole space behind the search", value=True,
                                            key="pa-space")
acc_title = f"{dataset} {METRIC_NAMES[metric]} accuracy (%)"
st.plotly_chart(plots.pareto_figure(space if show_space else [], pareto.COSTS[cost], acc_title, mine,
                                    f"search #{search_id}"), key="pa-figure")
if cost == "flops":
    st.caption("FLOPs: the table has none; they are the `flops` proxy's count (NAS-Bench-201's #FLOPs, "
               "millions per image) on the benchmark network, summed per edge (knas_core/costs.py).")
else:
    st.caption("Parameters: the benchmark table's count (millions) for this data set's classifier.")
if mine is not None and not mine:
    st.info("This search has no architectures with an official index in the benchmark table.")
front = [r for r in (mine if mine is not None else space) if r["on_front"]]
ui.table_section(f"Pareto front ({len(front)} architectures)", front, f"pareto-{dataset}-{cost}", "pa-front",
                 "No architectures.", column_config={
                     "arch": st.column_config.TextColumn("architecture", width="large"),
                     "accuracy": st.column_config.NumberColumn("accuracy (%)", format="%.2f")},
                 column_order=("index", "cost", "accuracy", "arch"))
