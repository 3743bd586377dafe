"""Proxy lab: evolve zero-cost proxies by genetic programming (EZNAS), watch fitness per
generation, read the best program as a formula and a tree, and promote it to the proxy list.

A page of the dashboard's ``app/screens/`` (discovered by ``app/main.py``); data and figures
live in :mod:`app.views.proxy_lab`."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # run as a page file on its own (streamlit run / AppTest.from_file)
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from app.views import proxy_lab as lab  # noqa: E402
from db.discovery import register_discovered_proxies  # noqa: E402
from db.session import database_url  # noqa: E402
from db.status import DiscoveryStage, Status  # noqa: E402
from knas_core.data import SOURCES  # noqa: E402
from knas_core.device import DEVICES  # noqa: E402
from knas_core.discovery.tensors import KINDS  # noqa: E402
from knas_core.errors import ConfigError  # noqa: E402
from knas_core.groundtruth import DATASETS  # noqa: E402

try:  # the dashboard's access control
    from app.ui import md_code, md_text, writable
except ImportError:  # fail closed: without the access check nothing is written
    from app.views.markup import md_code, md_text

    def writable() -> bool:
        return False

st.title("Proxy lab")
st.caption("Evolve a zero-cost proxy as a program over per-layer tensors (EZNAS, Akhauri et al., "
           "NeurIPS 2022): fitness is Kendall tau on training architectures, reported on held-out ones.")
url = database_url()
register_discovered_proxies(url)
can_write = writable()

errors: dict[str, str] = st.session_state.get("pl-errors", {})


def note(field: str, where=st) -> None:  # noqa: ANN001 - a column or the page
    """The message of ``field`` (a DiscoveryConfig field, or ``lab.FORM``) under its widget."""
    if field in errors:
        where.error(md_text(errors[field]), icon="⚠️")


def _start() -> None:
    """The Start button: validate and submit the form's run, or keep a message per widget."""
    if not writable():  # checked again when the action runs
        return
    ss = st.session_state
    config = {"archs": int(ss["pl-archs"]), "heldout": int(ss["pl-heldout"]),
              "generations": int(ss["pl-gens"]), "population": int(ss["pl-pop"]), "C": int(ss["pl-C"]),
              "N": int(ss["pl-N"]), "images": int(ss["pl-images"]) or None, "seed": int(ss["pl-seed"]),
              "dataset": ss["pl-dataset"], "kinds": ss["pl-kinds"], "device": ss["pl-device"],
              "data_source": ss["pl-source"]}
    try:
        run_id = lab.start_run(config, ss["pl-name"])
    except ConfigError as exc:
        ss["pl-errors"] = lab.form_errors(exc)
    except (ValueError, ConnectionError) as exc:
        ss["pl-errors"] = {lab.FORM: str(exc)}
    else:
        ss["pl-errors"] = {}
        ss["pl-run"] = ss["pl-started"] = run_id


with st.expander("Start a discovery run", expanded=bool(errors)):
    label = lab.FORM_LABELS
    with st.form("pl-start"):
        c1, c2, c3, c4 = st.columns(4)
        c1.number_input(label["archs"], 3, 15625, 200, key="pl-archs")
        note("archs", c1)
        c2.number_input(label["heldout"], 0, 15000, 500, key="pl-heldout")
        note("heldout", c2)
        c3.number_input(label["generations"], 0, 1000, 10, key="pl-gens")
        note("generations", c3)
        c4.number_input(label["population"], 2, 5000, 20, key="pl-pop")
        note("population", c4)
        c5, c6, c7, c8 = st.columns(4)
        c5.number_input(label["C"], 1, 64, 16, key="pl-C")
        note("C", c5)
        c6.number_input(label["N"], 1, 5, 5, key="pl-N")
        note("N", c6)
        c7.number_input(label["images"], 0, 64, 2, key="pl-images")
        note("images", c7)
        c8.number_input(label["seed"], 0, 2**31 - 1, 0, key="pl-seed")
        note("seed", c8)
        c9, c10, c11, c12 = st.columns(4)
        c9.selectbox(label["dataset"], list(DATASETS), key="pl-dataset")
        note("dataset", c9)
        c10.multiselect(label["kinds"], list(KINDS), default=list(KINDS), key="pl-kinds")
        note("kinds", c10)
        c11.selectbox(label["device"], list(DEVICES), key="pl-device")
        note("device", c11)
        c12.selectbox(label["data_source"], list(SOURCES), key="pl-source")
        note("data_source", c12)
        st.text_input("Run name", key="pl-name")
        st.form_submit_button("Start", disabled=not can_write, on_click=_start)
    if lab.FORM in errors:
        st.error(f"Not started: {md_text(errors[lab.FORM])}")
    elif errors:
        st.error("Not started: see the message under each field marked above.")
    started = st.session_state.pop("pl-started", None)
    if started is not None:
        st.success(f"Discovery run {started} queued; a worker on queue `score` will pick it up.")

runs = lab.runs(url)
if not runs:
    st.info("No discovery runs yet: start one above, or from the command line with `knas evolve`.")
    st.stop()

ids = [r["id"] for r in runs]
labels = {r["id"]: f"#{r['id']} {r['name'] or ''} ({r['status']})" for r in runs}
chosen = st.session_state.get("pl-run")
run_id = st.selectbox("Run", ids, index=ids.index(chosen) if chosen in ids else 0,
                      format_func=labels.__getitem__, key="pl-select")
detail = lab.run_detail(run_id, url)

m1, m2, m3, m4 = st.columns(4)
m1.metric("Status", f"{detail['status']} / {detail['stage']}")
gen = detail["generation"]
m2.metric("Generation", "-" if gen is None else f"{gen} / {detail['generations']}")
m3.metric("Train Kendall tau", "-" if detail["train_kendall"] is None else f"{detail['train_kendall']:.3f}")
m4.metric("Held-out Kendall tau",
          "-" if detail["heldout_kendall"] is None else f"{detail['heldout_kendall']:.3f}")
if detail["status"] in Status.ACTIVE:
    if detail["stage"] in (DiscoveryStage.QUEUED, DiscoveryStage.GATHER) and detail["total"]:
        st.progress(detail["gathered"] / detail["total"],
                    text=f"gathering tensors: {detail['gathered']}/{detail['total']} architectures")
    left, right = st.columns(2)
    right.button("Refresh", key="pl-refresh")
    if left.button("Cancel run", key="pl-cancel", disabled=not can_write) and writable():
        st.info(f"Run {run_id}: {md_text(lab.cancel(run_id))} (stops after the current architecture or "
                "generation)")
if detail["error"]:
    st.error(f"Run failed: {md_text(detail['error'])}")

if detail["history"]:
    st.subheader("Fitness per generation")
    st.plotly_chart(lab.fitness_figure(detail["history"]), key="pl-fitness")
    st.dataframe(detail["history"], hide_index=True, key="pl-history")

if detail["best_formula"]:
    st.subheader("Best program")
    st.markdown("Readable formula (averaged over ReLU-Conv-BN blocks):")
    st.code(detail["readable"], language=None)
    st.markdown("Program (as stored; `knas_core.discovery.language`):")
    st.code(detail["best_formula"], language=None)
    st.plotly_chart(lab.tree_figure(detail["best_formula"]), key="pl-tree")
    with st.form("pl-promote"):
        proxy_name = st.text_input("Proxy name", key="pl-proxy-name",
                                   help="letters, digits, '_' or '-'; then use it as --proxies NAME")
        promote = st.form_submit_button("Promote to the proxy list", disabled=not can_write)
    if promote and writable():
        try:
            row = lab.promote(run_id, proxy_name, url)
        except (ValueError, KeyError) as exc:
            st.error(f"Not promoted: {md_text(exc)}")
        else:
            st.success(f"Proxy {md_code(row['name'])} added: use it in searches, correlations and ensembles.")

st.subheader("Discovered proxies")
promoted = lab.discovered(url)
if promoted:
    st.dataframe(promoted, hide_index=True, key="pl-discovered")
else:
    st.caption("None promoted yet.")
