"""Calibration: fit a few-shot ranking model on labelled architectures (``knas calibrate`` in a
form), save it as the proxy ``calibrated:NAME`` and see the ranking of the rest; the saved models
with what each was trained on. Data in :mod:`app.views.calibration`."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.views import calibration as cal
from knas_core.errors import InputError
from knas_core.groundtruth import DATASETS, METRICS

st.title("Few-shot calibration")
st.caption("Fit a model on the proxies and the NAS-Bench-201 cells of a few architectures whose "
           "accuracy you know: the mean of a Gaussian process on the proxies and the cell's structure "
           "(with fewer than 40 labels it starts from the proxies' log-rank ensemble) and one on the "
           "cell's paths alone, both learning the accuracies' warped error. The model becomes the proxy "
           "`calibrated:NAME`, usable in searches. It learns only from the labels given here or looked "
           "up in the benchmark table. Measured over the whole space: held-out Kendall tau 0.853 with "
           "100 labels, 0.87 with 200 (CIFAR-10; docs/RESULTS.md). Same as `knas calibrate --scores`.")

st.subheader("Saved calibrated proxies")
rows = cal.saved()
if rows:
    st.dataframe(rows, hide_index=True, key="cal-saved")
else:
    st.info("None yet: fit one below, or with `knas calibrate`.")

can_write = ui.writable()
st.subheader("Fit a new one")
with st.form("cal-form"):
    c1, c2, c3 = st.columns(3)
    c1.text_input("Name (the proxy is calibrated:NAME)", key="cal-name")
    c2.selectbox("Dataset", list(DATASETS), key="cal-dataset")
    c3.number_input("Seed", 0, 2**31 - 1, 0, key="cal-seed")
    st.file_uploader("Scores: long format (index, proxy, value), CSV / CSV.gz, or knas score JSON lines",
                     type=["csv", "gz", "jsonl"], key="cal-scores")
    how = st.radio("Labels", ["look up in the benchmark table", "my file (arch or index, accuracy)"],
                   horizontal=True, key="cal-how")
    c4, c5 = st.columns(2)
    c4.number_input("Architectures to look up", 5, 15624, 100, key="cal-lookup")
    c5.selectbox("Benchmark accuracy", list(METRICS), key="cal-metric")
    st.file_uploader("My labels (CSV)", type=["csv"], key="cal-labels")
    st.checkbox("Replace a saved model of this name", key="cal-replace")
    submitted = st.form_submit_button("Fit and save", disabled=not can_write)

if submitted and ui.writable():  # checked again when the action runs
    ss = st.session_state
    scores, labels = ss.get("cal-scores"), ss.get("cal-labels")
    lookup_mode = how.startswith("look up")
    if scores is None:
        st.error("Not fitted: upload a scores file.")
    elif not lookup_mode and labels is None:
        st.error("Not fitted: upload your labels, or choose to look them up.")
    else:
        try:
            with st.spinner("Fitting..."):
                result = cal.run_calibration(
                    ss["cal-name"].strip(), scores.getvalue(), scores.name,
                    lookup=int(ss["cal-lookup"]) if lookup_mode else None,
                    labels=None if lookup_mode else labels.getvalue(),
                    labels_name=labels.name if labels is not None else "labels.csv",
                    dataset=ss["cal-dataset"], metric=ss["cal-metric"], seed=int(ss["cal-seed"]),
                    replace=bool(ss["cal-replace"]))
        except InputError as exc:
            st.error(f"Not fitted: {ui.md_text(exc)}")
        else:
            st.success(f"Saved as {ui.md_code(result['proxy'])}: {ui.md_text(result['description'])}")
            if result["dropped"]:
                st.warning(f"{result['dropped']} labelled architectures lacked a proxy value "
                           "and were left out.")
            ranking = result["ranking"]
            st.dataframe(ranking.head(50), hide_index=True, key="cal-ranking")
            stem = result["proxy"].split(":", 1)[1]
            st.download_button("Download the ranking (CSV)", ranking.to_csv(index=False),
                               f"{stem}-ranking.csv", "text/csv", key="cal-download")
