"""Correlation: proxy score vs benchmark accuracy, the statistics of every proxy x dataset,
the proxy-vs-proxy matrix, and the published figures as reference marks."""

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
qp_proxy, qp_dataset = st.query_params.get("proxy"), st.query_params.get("dataset")
c1 = c2 = c3 = c4 = st.container(horizontal=True, vertical_alignment="bottom")  # wraps when narrow
proxy = c1.selectbox("Proxy", proxies, index=proxies.index(qp_proxy) if qp_proxy in proxies else 0,
                     key="co-proxy", width=200)
dataset = c2.selectbox("Dataset", datasets, index=datasets.index(qp_dataset) if qp_dataset in datasets else 0,
                       key="co-dataset", width=200)
metric = c3.selectbox("Ground truth", list(METRICS), key="co-metric", width=200,
                      format_func=lambda m: {"test": "200-epoch test", "valid": "200-epoch valid",
                                             "valid_12ep": "12-epoch valid"}[m])
log_x = c4.toggle("Log-scale score", key="co-log")
st.query_params["proxy"], st.query_params["dataset"] = proxy, dataset  # the URL reopens this view

rows = ui.scatter_rows(url, proxy, dataset, metric)
if rows:
    st.plotly_chart(corr.scatter_figure(rows, proxy, dataset, log_x), key="scatter")
else:
    st.info(f"No {ui.md_code(proxy)} scores on {ui.md_text(dataset)} have a benchmark accuracy: "
            "run `knas db load-groundtruth`.")

st.subheader("Rank correlation of every proxy x dataset")
stats = ui.statistics_rows(url, metric)
if stats:
    st.dataframe(stats, hide_index=True, key="stats-table",
                 column_config={k: st.column_config.NumberColumn(k, format="%.3f")
                                for k in ("kendall", "spearman", "top10_precision", "published_spearman")})
    ui.export_buttons(stats, "correlations", "stats")
    statistic = st.radio("Heatmap of", corr.STATISTICS, horizontal=True, index=1, key="co-stat")
    st.plotly_chart(corr.statistics_heatmap_figure(stats, statistic), key="heatmap")
    refs = corr.reference_rows(stats, "cifar10")
    st.plotly_chart(corr.reference_figure(refs, "cifar10"), key="reference")
    st.caption("Published Spearman rho on CIFAR-10 (whole space): Abdelfattah et al., ICLR 2021; "
               "Mellor et al., ICML 2021 (naswot, range 0.78-0.80); Akhauri et al., NeurIPS 2022 (eznas). "
               "See docs/RESULTS.md.")

st.subheader("Proxy vs proxy")
names, matrix, n = ui.proxy_matrix(url, dataset)
if len(names) >= 2:
    st.plotly_chart(corr.proxy_matrix_figure(names, matrix, dataset), key="matrix")
    st.caption(f"{n} architectures with a score on {ui.md_text(dataset)}; "
               "each pair uses the architectures both proxies scored.")
else:
    st.info(f"Only one proxy scored on {ui.md_text(dataset)}: score more proxies to compare them.")
