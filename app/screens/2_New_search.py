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


def _weight_key(proxy: str) -> str:
    """The widget key of an ensemble member's weight box."""
    return f"{K}weight_{proxy}"


def _load(values: dict) -> None:
    for field, value in values.items():
        st.session_state[K + field] = value
    for proxy, weight in (values.get("weights") or {}).items():
        st.session_state[_weight_key(proxy)] = float(weight)


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
L = newsearch.LABELS


def note(field: str) -> None:
    """The validation message of ``field``, right under its widget."""
    if field in errors:
        st.error(md_text(errors[field]), icon=":material/error:")


def _edited(field: str) -> None:
    """A field's message goes when the field changes (it named the value it refused)."""
    st.session_state.get("ns_errors", {}).pop(field, None)


def number(field: str, where=st, **options: int) -> None:  # noqa: ANN001 - the page or a column
    """The number input of ``field``, without bounds: the browser keeps no value of its own
    (with ``min_value`` a typed 0 stays in the box while the old value is submitted), and
    :func:`app.views.newsearch.validate` says under the field what is out of range."""
    where.number_input(L[field], key=K + field, on_change=_edited, args=(field,), **options)


def values() -> dict:
    defaults = newsearch.defaults()  # for a field not shown now (e.g. epochs with look-up)
    out = {f: st.session_state.get(K + f, defaults[f]) for f in newsearch.FIELDS}
    out["weights"] = {p: st.session_state.get(_weight_key(p), 1.0) for p in out["proxies"] or []}
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
    st.text_input(L["name"], key=K + "name", max_chars=200, on_change=_edited, args=("name",))
    note("name")
    st.selectbox(L["space"], SPACES.names(), key=K + "space", on_change=_edited, args=("space",))
    note("space")
    st.selectbox(L["dataset"], list(DATASETS), key=K + "dataset", on_change=_edited, args=("dataset",))
    note("dataset")
    st.selectbox(L["data_source"], list(SOURCES), key=K + "data_source", on_change=_edited,
                 args=("data_source",))
    note("data_source")
    st.text_input(L["data_dir"], key=K + "data_dir", on_change=_edited, args=("data_dir",))
    note("data_dir")
    found, images = _images(st.session_state[K + "dataset"], st.session_state[K + "data_source"],
                            st.session_state.get(K + "data_dir") or "")
    if found:
        st.caption(md_text(images))
    else:
        st.warning(md_text(images))
    st.selectbox(L["strategy"], STRATEGIES.names(), key=K + "strategy", on_change=_edited, args=("strategy",),
                 help="knas: score a sample, evaluate the top-k; nasi: one-shot supernet; evolution: "
                      "regularised evolution with the proxy as fitness; random: the baseline")
    note("strategy")
    strategy = st.session_state[K + "strategy"]
    if strategy == "evolution":
        number("population", step=1)
        note("population")
        number("tournament", step=1)
        note("tournament")
    elif strategy == "nasi":
        number("steps", step=10)
        note("steps")
    st.multiselect(L["proxies"], proxy_names(), key=K + "proxies", on_change=_edited, args=("proxies",),
                   help="Default: synflow + eznas + params, equal weights, the best configuration "
                        "measured for search (docs/RESULTS.md: 99th percentile on all three datasets "
                        "with the KNAS procedure). Weights 0.75 / 1.5 / 1 rank the whole space best "
                        "(Kendall tau 0.763 against 0.752) but find no better architectures. `knas` "
                        "alone is the KNAS paper's score (66th-78th percentile).")
    note("proxies")
    members = st.session_state[K + "proxies"]
    if len(members) > 1:
        boxes = st.container(horizontal=True)  # one weight per member: sum of weight x log-rank
        for proxy in members:
            st.session_state.setdefault(_weight_key(proxy), 1.0)
            boxes.number_input(f"{proxy} weight", key=_weight_key(proxy), step=0.25, width=170,
                               on_change=_edited, args=("weights",),
                               help="the ensemble sums weight x log(rank); 1 for every member is "
                                    "AZ-NAS's sum")
        note("weights")
with right:
    number("samples", step=50)
    note("samples")
    number("topk", step=1)
    note("topk")
    st.radio(L["eval"], ["lookup", "train"], horizontal=True, key=K + "eval",
             format_func=lambda v: {"lookup": "benchmark look-up (12-epoch valid acc)",
                                    "train": "real training"}[v])
    if st.session_state[K + "eval"] == "train":
        number("epochs", step=1)
        note("epochs")
        number("train_subset", step=1000)
        note("train_subset")
    st.text_input(L["seeds"], key=K + "seeds", on_change=_edited, args=("seeds",))
    note("seeds")
    number("batch_size", step=1)
    note("batch_size")
    st.selectbox(L["device"], list(DEVICES), key=K + "device", on_change=_edited, args=("device",),
                 help="scoring runs on the `score` queue, training on the `train` queue "
                      "(`knas worker --queues train` on a GPU machine)")
    network = st.container(horizontal=True)  # side by side where they fit, else one under another
    number("C", network, step=1, width=150)
    number("N", network, step=1, width=150)
    number("chunk_size", network, step=1, width=150)
    note("C")
    note("N")
    note("chunk_size")

if writable():
    st.button("Submit search", type="primary", on_click=_submit, key="ns_submit")
    if errors:
        st.error(md_text(newsearch.refused(errors)), icon=":material/error:")
else:
    st.info("Read-only dashboard: searches cannot be submitted here.")

submitted = st.session_state.pop("ns_submitted", None)
warned = st.session_state.pop("ns_warnings", None)
if submitted:
    st.success(f"Submitted search {', '.join(map(str, submitted))}.")
    if not warned:
        st.switch_page("screens/3_Search_detail.py", query_params={"search": str(submitted[0])})
    for warning in warned:  # e.g. cuda where this machine sees no GPU: stay to show it
        st.warning(warning, icon=":material/warning:")
    st.page_link("screens/3_Search_detail.py", label=f"Open search {submitted[0]}",
                 query_params={"search": str(submitted[0])})
