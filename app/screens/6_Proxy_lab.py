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
RUN_PARAM = "run"  # the run shown, in the address (?run=ID): a link reopens it


def note(field: str, where=st) -> None:  # noqa: ANN001 - a column or the page
    """The message of ``field`` (a DiscoveryConfig field, or ``lab.FORM``) under its widget."""
    if field in errors:
        where.error(md_text(errors[field]), icon=":material/error:")


def _start() -> None:
    """The Start button: validate and submit the form's run, or keep a message per widget;
    a started run is the one shown (and put in the address)."""
    if not writable():  # checked again when the action runs
        return
    ss = st.session_state
    numbers = {field: ss[key] for field, key in NUMBERS.items()}
    config = {**numbers, "images": numbers["images"] or None, "dataset": ss["pl-dataset"],
              "kinds": ss["pl-kinds"], "device": ss["pl-device"], "data_source": ss["pl-source"]}
    try:
        run_id = lab.start_run(config, ss["pl-name"])
    except ConfigError as exc:
        ss["pl-errors"] = lab.form_errors(exc)
    except (ValueError, ConnectionError) as exc:
        ss["pl-errors"] = {lab.FORM: str(exc)}
    else:
        ss["pl-errors"] = {}
        ss["pl-started"] = ss["pl-select"] = run_id
        st.query_params[RUN_PARAM] = str(run_id)


#: Start form: DiscoveryConfig field -> widget key, and the widgets' defaults (no bounds on the
#: widgets: the browser would keep a refused value in the box and submit the old one; the config
#: and :func:`app.views.proxy_lab.lab_problems` say under the field what is out of range).
NUMBERS = {"archs": "pl-archs", "heldout": "pl-heldout", "generations": "pl-gens", "population": "pl-pop",
           "C": "pl-C", "N": "pl-N", "images": "pl-images", "seed": "pl-seed"}
DEFAULTS = {"archs": 200, "heldout": 500, "generations": 10, "population": 20, "C": 16, "N": 5, "images": 2,
            "seed": 0}

with st.expander("Start a discovery run", expanded=bool(errors)):
    label = lab.FORM_LABELS
    with st.form("pl-start", enter_to_submit=False):  # no "Press Enter" hint over the next field
        row = st.container(horizontal=True)
        for field, key in NUMBERS.items():
            cell = row.container(width=170)
            cell.number_input(label[field], value=DEFAULTS[field], step=1, key=key)
            note(field, cell)
        row = st.container(horizontal=True)
        for field, widget, key, options in (("dataset", st.selectbox, "pl-dataset", list(DATASETS)),
                                            ("kinds", st.multiselect, "pl-kinds", list(KINDS)),
                                            ("device", st.selectbox, "pl-device", list(DEVICES)),
                                            ("data_source", st.selectbox, "pl-source", list(SOURCES))):
            cell = row.container(width=260 if field == "kinds" else 170)
            extra = {"default": list(KINDS)} if field == "kinds" else {}
            with cell:
                widget(label[field], options, key=key, **extra)
            note(field, cell)
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
wanted = st.query_params.get(RUN_PARAM, "")
if wanted.isdigit() and int(wanted) in ids:
    st.session_state["pl-select"] = int(wanted)  # the address names the run shown
elif wanted:
    st.warning(f"No discovery run {md_text(wanted)} among the latest {len(ids)}; showing run {ids[0]}.")
if st.session_state.get("pl-select") not in ids:
    st.session_state["pl-select"] = ids[0]  # the newest


def _chosen() -> None:
    st.query_params[RUN_PARAM] = str(st.session_state["pl-select"])


with st.container(horizontal=True, vertical_alignment="bottom"):  # the button keeps its whole label
    run_id = st.selectbox("Run", ids, format_func=labels.__getitem__, key="pl-select", on_change=_chosen)
    st.button("Refresh", key="pl-refresh", icon=":material/refresh:", help="read the run again")
st.query_params[RUN_PARAM] = str(run_id)
first = lab.run_detail(run_id, url)


@st.fragment(run_every=2.0 if first["status"] in Status.ACTIVE else None)
def live() -> None:
    """The run's state, redrawn every 2 s while it is queued or running; once it ends, one full
    rerun draws the rest (run list, promotion)."""
    detail = lab.run_detail(run_id, url)
    st.subheader(f"#{detail['id']} {md_text(detail['name'] or '')} · {detail['status']} · "
                 f"stage {detail['stage']}")
    gen, train, held = detail["generation"], detail["train_kendall"], detail["heldout_kendall"]
    with st.container(horizontal=True, gap="large"):  # each as wide as its value; they wrap when narrow
        st.metric("Generation", "-" if gen is None else f"{gen} / {detail['generations']}", width="content")
        st.metric("Train Kendall tau", "-" if train is None else f"{train:.3f}", width="content")
        st.metric("Held-out Kendall tau", "-" if held is None else f"{held:.3f}", width="content")
    if detail["status"] in Status.ACTIVE:
        if detail["stage"] in (DiscoveryStage.QUEUED, DiscoveryStage.GATHER) and detail["total"]:
            st.progress(detail["gathered"] / detail["total"],
                        text=f"gathering tensors: {detail['gathered']}/{detail['total']} architectures")
        if st.button("Cancel run", key="pl-cancel", disabled=not can_write) and writable():
            st.info(f"Run {run_id}: {md_text(lab.cancel(run_id))} (stops after the current architecture or "
                    "generation)")
    if detail["error"]:
        st.error(f"Run failed: {md_text(detail['error'])}")
    if detail["history"]:
        st.subheader("Fitness per generation")
        st.plotly_chart(lab.fitness_figure(detail["history"]), key="pl-fitness")
        st.dataframe(detail["history"], hide_index=True, key="pl-history")
    if first["status"] in Status.ACTIVE and detail["status"] not in Status.ACTIVE:
        st.rerun()  # ended: redraw the whole page once


live()
detail = first

if detail["best_formula"]:
    st.subheader("Best program")
    st.markdown("Readable formula (averaged over ReLU-Conv-BN blocks):")
    st.code(detail["readable"], language=None)
    st.markdown("Program (as stored; `knas_core.discovery.language`):")
    st.code(detail["best_formula"], language=None)
    st.plotly_chart(lab.tree_figure(detail["best_formula"]), key="pl-tree")
    concerns = lab.promotion_concerns(detail)
    with st.form("pl-promote", enter_to_submit=False):
        proxy_name = st.text_input("Proxy name", key="pl-proxy-name",
                                   help="letters, digits, '_' or '-'; then use it as --proxies NAME")
        if concerns:
            st.warning(f"Before promoting this program: {'; '.join(concerns)}.",  # no user text in them
                       icon=":material/warning:")
            anyway = st.checkbox("Promote it all the same", key="pl-promote-anyway", disabled=not can_write)
        else:
            anyway = False
        promote = st.form_submit_button("Promote to the proxy list", disabled=not can_write)
    if promote and writable():
        try:
            row = lab.promote(run_id, proxy_name, url, confirmed=anyway)
        except lab.PromotionRefused as exc:
            st.error(f"Not promoted: {'; '.join(exc.concerns)}. Tick \"Promote it all the same\" "
                     "to promote it anyway.")
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
