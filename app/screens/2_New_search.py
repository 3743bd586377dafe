"""New search: configure a search, validate it field by field, and submit it to the queue."""

from __future__ import annotations

import streamlit as st

from app.ui import int_param, md_text, writable
from app.views import newsearch
from app.views.detail import search_config
from db.discovery import register_discovered_proxies
from knas_core.data import SOURCES
from knas_core.device import DEVICES
from knas_core.groundtruth import DATASETS
from knas_core.proxies import proxy_names
from knas_core.search import STRATEGIES
from knas_core.spaces import SPACES
from tasks.api import BrokerUnavailableError, ConfigError, submit_search

st.title("New search")
register_discovered_proxies()  # programs promoted in the Proxy lab or by `knas evolve --name`

K = "ns_"  # widget keys: ns_<field>


def _load(values: dict) -> None:
    for field, value in values.items():
        st.session_state[K + field] = value


clone = int_param("clone")
if clone is not None and st.session_state.get("ns_cloned") != clone:
    config = search_config(clone)
    if config is None:
        st.warning(f"No search {clone} to clone; starting from the defaults.")
    else:
        _load(newsearch.values_from_config(config))
        st.session_state["ns_errors"] = {}
        st.caption(f"Pre-filled from search {clone}.")
    st.session_state["ns_cloned"] = clone
if "ns_dataset" not in st.session_state:
    _load(newsearch.defaults())

errors: dict[str, str] = st.session_state.get("ns_errors", {})


def note(field: str) -> None:
    """The validation message of ``field``, right under its widget."""
    if field in errors:
        st.error(md_text(errors[field]), icon="⚠️")


def values() -> dict:
    out = {f: st.session_state.get(K + f) for f in newsearch.FIELDS}
    for hidden in ("archs", "lease_seconds"):  # carried over from a cloned search
        if st.session_state.get(K + hidden):
            out[hidden] = st.session_state[K + hidden]
    return out


def _submit() -> None:
    if not writable():
        st.session_state["ns_errors"] = {"_submit": "read-only dashboard: submitting is not allowed"}
        return
    configs, errs = newsearch.validate(values())
    if errs:
        st.session_state["ns_errors"] = errs
        return
    ids = []
    try:
        for config in configs:
            ids.append(submit_search(config))
    except (ConfigError, BrokerUnavailableError) as exc:
        st.session_state["ns_errors"] = {"_submit": str(exc)}
        return
    st.session_state["ns_errors"] = {}
    st.session_state["ns_submitted"] = ids
    st.session_state["ns_warnings"] = sorted({w for i in ids for w in getattr(i, "warnings", ())})


@st.cache_data(ttl=60, show_spinner="Opening the images…")
def _images(dataset: str, data_source: str, data_dir: str) -> tuple[bool, str]:
    return newsearch.images_note(dataset, data_source, data_dir)


left, right = st.columns(2)
with left:
    st.text_input("Name", key=K + "name", max_chars=200)
    note("name")
    st.selectbox("Search space", SPACES.names(), key=K + "space")
    note("space")
    st.selectbox("Dataset", list(DATASETS), key=K + "dataset")
    note("dataset")
    st.selectbox("Data source", list(SOURCES), key=K + "data_source")
    note("data_source")
    st.text_input("Data directory (optional)", key=K + "data_dir")
    note("data_dir")
    found, images = _images(st.session_state[K + "dataset"], st.session_state[K + "data_source"],
                            st.session_state.get(K + "data_dir") or "")
    if found:
        st.caption(md_text(images))
    else:
        st.warning(md_text(images))
    st.selectbox("Strategy", STRATEGIES.names(), key=K + "strategy",
                 help="knas: score a sample, evaluate the top-k; nasi: one-shot supernet; evolution: "
                      "regularised evolution with the proxy as fitness; random: the baseline")
    note("strategy")
    strategy = st.session_state[K + "strategy"]
    if strategy == "evolution":
        st.number_input("Population", min_value=2, step=1, key=K + "population")
        note("population")
        st.number_input("Tournament size", min_value=1, step=1, key=K + "tournament")
        note("tournament")
    elif strategy == "nasi":
        st.number_input("Supernet steps (T)", min_value=1, step=10, key=K + "steps")
        note("steps")
    st.multiselect("Proxies (several: a log-rank ensemble)", proxy_names(), key=K + "proxies",
                   help="Default: synflow + eznas + params, the best configuration measured "
                        "(docs/RESULTS.md: 99th percentile on all three datasets with the KNAS "
                        "procedure). `knas` alone is the KNAS paper's score (66th-78th percentile).")
    note("proxies")
with right:
    st.number_input("Sample size", min_value=1, max_value=15625, step=50, key=K + "samples")
    note("samples")
    st.number_input("Top-k evaluated", min_value=1, step=1, key=K + "topk")
    note("topk")
    st.radio("Evaluation", ["lookup", "train"], horizontal=True, key=K + "eval",
             format_func=lambda v: {"lookup": "benchmark look-up (12-epoch valid acc)",
                                    "train": "real training"}[v])
    if st.session_state[K + "eval"] == "train":
        st.number_input("Epochs", min_value=1, max_value=400, key=K + "epochs")
        note("epochs")
        st.number_input("Training subset (images, 0 = all)", min_value=0, step=1000, key=K + "train_subset")
        note("train_subset")
    st.text_input("Seeds (one search per seed, e.g. 0,1,2)", key=K + "seeds")
    note("seeds")
    st.number_input("Batch size", min_value=1, max_value=4096, key=K + "batch_size")
    note("batch_size")
    st.selectbox("Device", list(DEVICES), key=K + "device",
                 help="scoring runs on the `score` queue, training on the `train` queue "
                      "(`knas worker --queues train` on a GPU machine)")
    c1, c2, c3 = st.columns(3)
    c1.number_input("Width C", min_value=1, max_value=256, key=K + "C")
    c2.number_input("Cells N", min_value=0, max_value=20, key=K + "N")
    c3.number_input("Chunk size", min_value=1, max_value=1000, key=K + "chunk_size")
    note("C")
    note("N")
    note("chunk_size")

if writable():
    st.button("Submit search", type="primary", on_click=_submit, key="ns_submit")
    note("_submit")
else:
    st.info("Read-only dashboard: searches cannot be submitted here.")

submitted = st.session_state.pop("ns_submitted", None)
warned = st.session_state.pop("ns_warnings", None)
if submitted:
    st.success(f"Submitted search {', '.join(map(str, submitted))}.")
    if not warned:
        st.switch_page("screens/3_Search_detail.py", query_params={"search": str(submitted[0])})
    for warning in warned:  # e.g. cuda where this machine sees no GPU: stay to show it
        st.warning(warning, icon="⚠️")
    st.page_link("screens/3_Search_detail.py", label=f"Open search {submitted[0]}",
                 query_params={"search": str(submitted[0])})
