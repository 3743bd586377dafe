"""Searches: every search with its status, stage, progress, rate, ETA and best architecture."""

from __future__ import annotations

import streamlit as st

from app.ui import export_buttons, md_text, writable
from app.views import annotations
from app.views.export import to_frame
from app.views.searches import any_active, can_cancel, overview_rows
from tasks.api import cancel_search

st.title("Searches")


def _cancel(search_id: int) -> None:
    if not writable():  # checked again when the action runs, not only when drawn
        st.session_state["cancel_message"] = "read-only: cancelling is not allowed here"
        return
    p = cancel_search(search_id)
    st.session_state["cancel_message"] = f"search {search_id}: {p['status']}"


def _annotate(search_id: int) -> None:
    if not writable():  # checked again when the action runs, not only when drawn
        st.session_state["cancel_message"] = "read-only: tags and notes cannot be changed here"
        return
    try:
        tags, _ = annotations.save(search_id, st.session_state[f"tags-{search_id}"],
                                   st.session_state[f"note-{search_id}"])
    except (annotations.AnnotationError, KeyError) as exc:
        st.session_state["cancel_message"] = f"search {search_id}: not saved: {exc}"
        return
    saved = ", ".join(tags) or "none"
    st.session_state["cancel_message"] = f"search {search_id}: tags ({saved}) and note saved"


def _table() -> bool:
    rows = overview_rows()
    if not rows:
        st.info("No searches yet: start one on the New search page.")
        st.page_link("screens/2_New_search.py", label="Start a search", icon=":material/add:")
        return False
    st.dataframe(
        to_frame(rows), hide_index=True, key="searches-table",
        # what a search is, where it stands and what it found first; the long architecture string
        # last, so the best index and accuracy show without scrolling sideways (1400 px)
        column_order=("id", "name", "status", "progress", "best_index", "best_accuracy", "strategy",
                      "proxies", "dataset", "seed", "tags", "stage", "scored", "total", "failed", "rate",
                      "eta_s", "duration_s", "note", "created", "best_arch"),
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                        format="percent"),
            "rate": st.column_config.NumberColumn(
                "rate (/s)", format="%.2f",
                help="per second: architectures scored by the search itself (cache hits left out); "
                     "NASI: optimisation steps; random search: evaluations"),
            "eta_s": st.column_config.NumberColumn("ETA (s)", format="%.0f"),
            "best_index": st.column_config.NumberColumn("best index", format="%d"),
            "best_accuracy": st.column_config.NumberColumn("best acc (%)", format="%.2f"),
            "best_arch": st.column_config.TextColumn("best architecture", width="large"),
            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.0f"),
            "tags": st.column_config.ListColumn("tags"),
        })
    export_buttons(rows, "searches", "searches")
    return any_active(rows)


_rows = overview_rows()
ids = [r["id"] for r in _rows]
ACTIVE = any_active(_rows)


@st.fragment(run_every=2.0 if ACTIVE else None)
def live_table() -> None:
    """Redrawn every 2 s while a search is queued or running (no page reload); once the last
    one ends, one full rerun stops the refreshing."""
    still = _table()
    if ACTIVE and not still:
        st.rerun()


live_table()

if ids:
    st.subheader("Actions")
    wanted = int(st.query_params["search"]) if st.query_params.get("search", "").isdigit() else None
    chosen = st.selectbox("Search", ids, key="action-search", index=ids.index(wanted) if wanted in ids else 0)
    cols = st.columns(3)
    if cols[0].button("Open", key="open"):
        st.switch_page("screens/3_Search_detail.py", query_params={"search": str(chosen)})
    status = next(r["status"] for r in _rows if r["id"] == chosen)
    if writable():
        if can_cancel(status):
            cols[1].button("Cancel", key="cancel", on_click=_cancel, args=(chosen,))
        else:
            cols[1].caption(f"{md_text(status)}: nothing to cancel.")
        if cols[2].button("Clone as new", key="clone"):
            st.switch_page("screens/2_New_search.py", query_params={"clone": str(chosen)})
        row = next(r for r in _rows if r["id"] == chosen)
        with st.form(f"annotate-{chosen}"):
            st.text_input("Tags (comma-separated)", ", ".join(row["tags"]), key=f"tags-{chosen}")
            st.text_area("Note", row["note"], key=f"note-{chosen}", height=80)
            st.form_submit_button("Save tags and note", on_click=_annotate, args=(chosen,))
    else:
        cols[1].caption("Read-only: cancel, clone and editing tags are not offered.")
    if st.session_state.get("cancel_message"):
        st.info(md_text(st.session_state.pop("cancel_message")))
