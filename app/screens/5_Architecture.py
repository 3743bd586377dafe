"""Architecture: one cell across everything known of it."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.views import architecture

st.title("Architecture")
ref = st.text_input("Official index or architecture string", value=st.query_params.get("arch", ""),
                    key="arch-ref", placeholder="e.g. 1462 or |nor_conv_3x3~0|+|...")
if not ref.strip():
    st.info("Type an index or an architecture string, or pick one in a search's ranking.")
    st.stop()
try:
    found = architecture.lookup(ref)
except ValueError as exc:
    st.error(f"Not an architecture: {ui.md_text(exc)}")
    st.stop()
if found is None:
    st.info("Nothing stored about this architecture yet: run `knas db load-groundtruth`, or a search "
            "that samples it.")
    st.stop()
st.query_params["arch"] = str(found["index"]) if found["index"] is not None else found["arch"]

info = architecture.profile(found["id"])
st.subheader(f"index {found['index']}" if found["index"] is not None else "architecture")
st.code(found["arch"], language=None)
st.plotly_chart(ui.cell_figure(found["arch"]), key="arch-cell")

stem = f"arch-{found['id']}"
ui.table_section("Benchmark accuracies", info["benchmark"], f"{stem}-benchmark", "arch-bench",
                 "No benchmark accuracies stored: `knas db load-groundtruth` adds them.",
                 column_config={"percentile": st.column_config.NumberColumn("percentile", format="%.1f")})
ui.table_section("Proxy scores", info["scores"], f"{stem}-scores", "arch-scores",
                 "Not scored yet: start a search that samples it.")
ui.table_section("Training runs", info["training"], f"{stem}-training", "arch-train",
                 "Never trained: choose real training in a new search to train it.",
                 shown=[{k: v for k, v in r.items() if k != "history"}
                        | {"epochs_done": len(r["history"] or [])} for r in info["training"]])
ui.table_section("Searches that sampled it", info["searches"], f"{stem}-searches", "arch-searches",
                 "No search has sampled it.")
