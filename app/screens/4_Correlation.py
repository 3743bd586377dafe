"""Correlation: proxy score vs benchmark accuracy under one scoring set-up, the statistics of
every proxy x dataset x set-up with confidence intervals, the proxy-vs-proxy matrix with n per
pair, and the published figures as reference marks (against 200-epoch test accuracy)."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.views import correlation as corr
from db.session import database_url
from knas_core.groundtruth import DATASETS, METRICS

st.title("Correlation")
url = database_url()
catalogue = ui.catalogue(url)
if not catalogue:
    st.info("No proxy scores yet: start a search (or run `knas db load-groundtruth` and a search), "
            "then come back to compare proxies with the benchmark.")
    st.page_link("screens/2_New_search.py", label="Start a search")
    st.stop()

proxies = sorted({p for p, _, _ in catalogue})
datasets = [d for d in DATASETS if any(d == ds for _, ds, _ in catalogue)]
metrics = list(METRICS)
query = st.query_params
qp_proxy, qp_dataset, qp_metric = query.get("proxy"), query.get("dataset"), query.get("metric")
c1 = c2 = c3 = c4 = st.container(horizontal=True, vertical_alignment="bottom")  # wraps when narrow
proxy = c1.selectbox("Proxy", proxies, index=proxies.index(qp_proxy) if qp_proxy in proxies else 0,
                     key="co-proxy", width=200)
dataset = c2.selectbox("Dataset", datasets, index=datasets.index(qp_dataset) if qp_dataset in datasets else 0,
                       key="co-dataset", width=200)
metric = c3.selectbox("Ground truth", metrics, index=metrics.index(qp_metric) if qp_metric in metrics else 0,
                      key="co-metric", format_func=lambda m: corr.METRIC_LABELS[m], width=200)
if "co-log" not in st.session_state:  # the link's setting, once; the toggle's own after that
    st.session_state["co-log"] = query.get("log") == "1"
log_x = c4.toggle("Log-scale score", key="co-log")

found = ui.score_setups(url, proxy, dataset)
choices = [s for s, _ in found]
counts = dict(found)
wanted = corr.parse_setup(query.get("setup"))
setup = st.selectbox("Scoring set-up", choices, index=choices.index(wanted) if wanted in choices else 0,
                     key=f"co-setup-{proxy}-{dataset}",
                     format_func=lambda s: f"{corr.setup_label(s)} ({counts[s]} scores)",
                     help="scores of different batch sizes, seeds, devices, networks or images are "
                          "never mixed") if choices else None
# the URL reopens this view: proxy, dataset, ground truth, scale and set-up
query["proxy"], query["dataset"], query["metric"] = proxy, dataset, metric
query["log"] = "1" if log_x else "0"
if setup is not None:
    query["setup"] = corr.setup_param(setup)

rows = ui.scatter_rows(url, proxy, dataset, metric, setup)
if rows:
    st.plotly_chart(corr.scatter_figure(rows, proxy, dataset, log_x, metric), key="scatter")
    st.caption(f"n = {len(rows)} architectures scored by {ui.md_code(proxy)} and in the benchmark table; "
               f"ground truth: {ui.md_text(dataset)} {ui.md_text(corr.METRIC_LABELS[metric])} accuracy; "
               f"set-up: {ui.md_text(corr.setup_label(setup))}." if setup else "")
else:
    st.info(f"No {ui.md_code(proxy)} scores on {ui.md_text(dataset)} have a benchmark accuracy: "
            "run `knas db load-groundtruth`.")

st.subheader("Rank correlation of every proxy x dataset x set-up")
stats = ui.statistics_rows(url, metric)
if stats:
    shown = [{k: v for k, v in r.items() if k != "setup_param"} for r in stats]
    if metric != corr.PUBLISHED_METRIC:
        shown = [{k: v for k, v in r.items() if not k.startswith("published")} for r in shown]
    st.dataframe(shown, hide_index=True, key="stats-table",
                 column_config={k: st.column_config.NumberColumn(k, format="%.3f")
                                for k in ("kendall", "kendall_low", "kendall_high", "spearman",
                                          "spearman_low", "spearman_high", "top10_precision",
                                          "published_spearman")})
    st.caption(f"Against {ui.md_text(corr.METRIC_LABELS[metric])} accuracy. low / high: 95% confidence "
               "interval (Fisher z; standard errors of Fieller et al. 1957 for Kendall, Bonett & Wright "
               "2000 for Spearman). n: architectures behind the row.")
    ui.export_buttons(shown, "correlations", "stats")
    statistic = st.radio("Heatmap of", corr.STATISTICS, horizontal=True, index=1, key="co-stat")
    st.plotly_chart(corr.statistics_heatmap_figure(stats, statistic), key="heatmap")
    if metric == corr.PUBLISHED_METRIC:
        refs = corr.reference_rows(stats, "cifar10")
        st.plotly_chart(corr.reference_figure(refs, "cifar10"), key="reference")
        st.caption("Published Spearman rho against CIFAR-10 200-epoch test accuracy (whole space): "
                   "Abdelfattah et al., ICLR 2021; Mellor et al., ICML 2021 (naswot, range 0.78-0.80); "
                   "Akhauri et al., NeurIPS 2022 (eznas). Bars: measured, with their 95% interval. "
                   "See docs/RESULTS.md.")
    else:
        st.caption("The published figures were measured against 200-epoch test accuracy: choose that "
                   "ground truth to see them beside the measured ones.")

st.subheader("Proxy vs proxy")
names, matrix, pair_counts, used = ui.proxy_matrix(url, dataset)
if len(names) >= 2:
    st.plotly_chart(corr.proxy_matrix_figure(names, matrix, pair_counts, dataset), key="matrix")
    st.caption(f"On {ui.md_text(dataset)}; each cell: Spearman rho over the n architectures both proxies "
               "scored. Each proxy's set-up (the one holding most of its scores): "
               + "; ".join(f"{ui.md_code(n)}: {ui.md_text(corr.setup_label(used[n]))}" for n in names) + ".")
else:
    st.info(f"Only one proxy scored on {ui.md_text(dataset)}: score more proxies to compare them.")
