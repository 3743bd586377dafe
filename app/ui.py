"""Streamlit helpers shared by the pages: access checks, cached queries, exports, empty states.

Queries are cached with ``st.cache_data`` keyed on the database URL as well, so two
dashboards (or tests) on different databases never share entries. Views of a finished search
never change and are cached for an hour; live ones for a few seconds.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.views import access, correlation, detail
from app.views.export import to_csv, to_json
from app.views.markup import md_code, md_text  # noqa: F401 - the pages' helpers for user text
from db.queries import ScoreSetup
from db.session import database_url
from db.status import Status

#: Database URLs whose schema this process found current (checked once per store).
_CURRENT_SCHEMA: set[str] = set()


def schema_problem() -> str | None:
    """Why the dashboard cannot use its store (e.g. "schema out of date: ... run `knas db
    upgrade`"), or None when the store is at this version's revision. The dashboard never
    migrates; a store found current is not checked again by this process."""
    from db.migrate import SchemaOutOfDateError, check_schema

    url = database_url()
    if url in _CURRENT_SCHEMA:
        return None
    try:
        check_schema(url)
    except SchemaOutOfDateError as exc:
        return str(exc)
    _CURRENT_SCHEMA.add(url)
    return None


def params() -> dict[str, str]:
    return {k: st.query_params.get(k, "") for k in st.query_params}


# session-state keys of the access rules (not widget keys: they outlive every page)
READ_ONLY_KEY = "knas_read_only"
GRANT_KEY = "knas_lab_grant"
TOKEN_NOTE_KEY = "knas_token_note"


def sync_access() -> None:
    """Carry the link's access into the browser session (idempotent; every run calls it).

    ``?view=readonly`` makes the session read-only for the rest of the visit: kept in session
    state, and put back into the address on every page (so a reload or a copied address stays
    read-only). ``?token=`` is taken once: the lab token grants writing for the session (never
    over a read-only one); a token given more than once grants nothing. Either way it is removed
    from the address."""
    query = st.query_params
    if access.link_read_only({"view": query.get_all("view")}):
        st.session_state[READ_ONLY_KEY] = True
    tokens = query.get_all("token")
    if tokens:
        given = access.link_token({"token": tokens})
        if given is None:
            st.session_state[TOKEN_NOTE_KEY] = "The link gave a token more than once: refused."
        elif st.session_state.get(READ_ONLY_KEY):
            st.session_state[TOKEN_NOTE_KEY] = "A read-only link: the token grants nothing here."
        elif access.token_matches(given):
            st.session_state[GRANT_KEY] = given
            st.session_state.pop(TOKEN_NOTE_KEY, None)
        elif access.lab_token() is not None:
            st.session_state[TOKEN_NOTE_KEY] = "The link's token is not the lab token."
        del query["token"]
    if st.session_state.get(READ_ONLY_KEY) and query.get_all("view") != ["readonly"]:
        query["view"] = "readonly"


def read_only() -> bool:
    """Whether the whole dashboard, or this browser session, is read-only."""
    sync_access()
    return access.env_read_only() or bool(st.session_state.get(READ_ONLY_KEY))


def writable() -> bool:
    """Whether this viewer may submit or cancel (see :mod:`app.views.access`)."""
    sync_access()
    return access.can_write({"view": st.query_params.get_all("view")}, st.session_state.get("lab_token"),
                            read_only=bool(st.session_state.get(READ_ONLY_KEY)),
                            tokens=(st.session_state.get(GRANT_KEY),))


def int_param(name: str) -> int | None:
    value = st.query_params.get(name)
    return int(value) if value and value.isdigit() else None


def export_buttons(rows: list[dict[str, Any]], stem: str, key: str) -> None:
    """CSV and JSON downloads of ``rows``."""
    left, right = st.columns(2)
    left.download_button("Export CSV", to_csv(rows), f"{stem}.csv", "text/csv", key=f"{key}-csv",
                         disabled=not rows)
    right.download_button("Export JSON", to_json(rows), f"{stem}.json", "application/json",
                          key=f"{key}-json", disabled=not rows)


def table_section(title: str, rows: list[dict[str, Any]], stem: str, key: str, empty: str,
                  shown: list[dict[str, Any]] | None = None, **dataframe: Any) -> None:
    """A subheader, then the table with its CSV/JSON exports, or ``empty`` when there are no rows.

    ``shown`` replaces the rows displayed (the export always holds ``rows``)."""
    st.subheader(title)
    if not rows:
        st.info(empty)
        return
    st.dataframe(shown if shown is not None else rows, hide_index=True, key=key, **dataframe)
    export_buttons(rows, stem, key)


def empty_state(message: str, page: str | None = None, label: str | None = None) -> None:
    st.info(message)
    if page:
        st.page_link(page, label=label or "Go")


# --- cached queries ------------------------------------------------------------------------------

@st.cache_data(ttl=5, show_spinner=False)
def _table_live(url: str, search_id: int) -> detail.RankingTable:
    return detail.ranking_table(search_id)


@st.cache_data(ttl=3600, show_spinner=False)
def _table_final(url: str, search_id: int) -> detail.RankingTable:
    return detail.ranking_table(search_id)


def ranking_table(search_id: int, status: str) -> detail.RankingTable:
    """Every candidate of a search with its scores as stored (cached; filtered, sorted and paged
    by :func:`app.views.detail.select_rows`)."""
    fn = _table_final if status in Status.ENDED else _table_live
    return fn(database_url(), search_id)


@st.cache_data(ttl=5, show_spinner=False)
def _charts_live(url: str, search_id: int, topk: int) -> dict[str, Any]:
    return _charts(search_id, topk)


@st.cache_data(ttl=3600, show_spinner=False)
def _charts_final(url: str, search_id: int, topk: int) -> dict[str, Any]:
    return _charts(search_id, topk)


def _charts(search_id: int, topk: int) -> dict[str, Any]:
    return {"best_so_far": detail.best_so_far(search_id), "curves": detail.training_curves(search_id, topk)}


def search_charts(search_id: int, status: str, topk: int) -> dict[str, Any]:
    """Best-so-far trace and training curves of a search (cached)."""
    fn = _charts_final if status in Status.ENDED else _charts_live
    return fn(database_url(), search_id, topk)


@st.cache_data(ttl=30, show_spinner=False)
def statistics_rows(url: str, metric: str) -> list[dict[str, Any]]:
    return correlation.statistics_rows(metric)


@st.cache_data(ttl=30, show_spinner=False)
def scatter_rows(url: str, proxy: str, dataset: str, metric: str,
                 setup: ScoreSetup | None = None) -> list[dict[str, Any]]:
    return correlation.scatter_rows(proxy, dataset, metric, setup)


@st.cache_data(ttl=30, show_spinner=False)
def score_setups(url: str, proxy: str, dataset: str) -> list[tuple[ScoreSetup, int]]:
    return correlation.setups(proxy, dataset)


@st.cache_data(ttl=30, show_spinner=False)
def proxy_matrix(url: str, dataset: str):  # noqa: ANN201 - (names, rho, n, set-ups)
    return correlation.proxy_matrix(dataset)


@st.cache_data(ttl=30, show_spinner=False)
def catalogue(url: str) -> list[tuple[str, str, int]]:
    return correlation.catalogue()
