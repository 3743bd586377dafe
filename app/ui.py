"""Streamlit helpers shared by the pages: access checks, cached queries, exports, empty states.

Queries are cached with ``st.cache_data`` keyed on the database URL as well, so two
dashboards (or tests) on different databases never share entries. Views of a finished search
never change and are cached for an hour; live ones for a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from app.views import access, correlation, detail, plots, sampling
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


def export_buttons(rows: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]], stem: str, key: str,
                   disabled: bool | None = None) -> None:
    """CSV and JSON downloads of ``rows``, or of what ``rows()`` returns (e.g. every filtered row
    of a ranking, selected only when asked). The files are written when a button is pressed, not
    on every run of the page (15,625 rows cost seconds to write)."""
    fetch = rows if callable(rows) else (lambda: rows)
    off = (not rows) if disabled is None and not callable(rows) else bool(disabled)
    left, right = st.columns(2)
    left.download_button("Export CSV", lambda: to_csv(fetch()), f"{stem}.csv", "text/csv", key=f"{key}-csv",
                         disabled=off)
    right.download_button("Export JSON", lambda: to_json(fetch()), f"{stem}.json", "application/json",
                          key=f"{key}-json", disabled=off)


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


@st.cache_resource(max_entries=64, show_spinner=False)
def cell_figure(arch: str, title: str = "") -> Any:
    """:func:`app.views.cell.cell_figure`, drawn once per cell and kept (its dozen annotations
    cost a noticeable part of a page run; Streamlit only reads the figure)."""
    from app.views.cell import cell_figure as draw

    return draw(arch, title=title)


# --- cached queries ------------------------------------------------------------------------------

@st.cache_data(ttl=5, show_spinner=False)
def _table_live(url: str, search_id: int) -> detail.RankingTable:
    return detail.ranking_table(search_id)


@st.cache_resource(ttl=3600, max_entries=8, show_spinner=False)
def _table_final(url: str, search_id: int) -> detail.RankingTable:
    """An ended search's ranking, kept as it is (not copied per run as st.cache_data would:
    15,625 rows took 0.05-0.1 s to unpickle; the table is read, never changed)."""
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


def _figures(table: detail.RankingTable, charts: dict[str, Any]) -> dict[str, Any]:
    """The Search-detail charts drawn; None where there is nothing to draw."""
    higher = len(table.proxies) != 1 or correlation.higher_is_better(table.proxies[0])
    order = sampling.best_score_trace(list(table.rows), higher)  # before the top-k are evaluated
    scores, trace, curves = table.scores(), charts["best_so_far"], charts["curves"]
    return {"histogram": detail.score_histogram_figure(scores, table.score_label) if scores else None,
            "best_so_far": detail.best_so_far_figure(trace) if trace else None,
            "order": plots.score_order_figure(order, table.score_label, detail.log_scaled(scores))
            if order else None,
            "curves": detail.training_curves_figure(curves) if curves else None}


@st.cache_resource(max_entries=8, show_spinner=False)
def _figures_final(url: str, search_id: int, topk: int) -> dict[str, Any]:
    return _figures(_table_final(url, search_id), _charts_final(url, search_id, topk))


def search_figures(search_id: int, status: str, topk: int) -> dict[str, Any]:
    """Score histogram, best-so-far accuracy, score by sampling order and training curves of a
    search (figures; None where there is nothing to draw). An ended search's are drawn once and
    kept (figures of 15,625 points take a noticeable part of a page run to build; Streamlit only
    reads them); a live one's are drawn from its cached rows on every run."""
    if status in Status.ENDED:
        return _figures_final(database_url(), search_id, topk)
    return _figures(ranking_table(search_id, status), search_charts(search_id, status, topk))


# The Correlation page's views read every score of a proxy (15,625 architectures for an atlas):
# cached under the store's fingerprint (db.queries.store_version), they are computed again only
# after the store changed, not every 30 s.

@st.cache_data(ttl=2, show_spinner=False)
def store_version(url: str) -> tuple[int, ...]:
    return correlation.store_version()


@st.cache_data(max_entries=16, show_spinner=False)
def _statistics_rows(url: str, version: tuple[int, ...], metric: str) -> list[dict[str, Any]]:
    return correlation.statistics_rows(metric)


def statistics_rows(url: str, metric: str) -> list[dict[str, Any]]:
    return _statistics_rows(url, store_version(url), metric)


@st.cache_data(max_entries=32, show_spinner=False)
def _scatter_rows(url: str, version: tuple[int, ...], proxy: str, dataset: str, metric: str,
                  setup: ScoreSetup | None) -> list[dict[str, Any]]:
    return correlation.scatter_rows(proxy, dataset, metric, setup)


def scatter_rows(url: str, proxy: str, dataset: str, metric: str,
                 setup: ScoreSetup | None = None) -> list[dict[str, Any]]:
    return _scatter_rows(url, store_version(url), proxy, dataset, metric, setup)


@st.cache_resource(max_entries=16, show_spinner=False)
def _scatter_figure(url: str, version: tuple[int, ...], proxy: str, dataset: str, metric: str,
                    setup: ScoreSetup | None, log_x: bool) -> Any:
    rows = _scatter_rows(url, version, proxy, dataset, metric, setup)
    return correlation.scatter_figure(rows, proxy, dataset, log_x, metric)


def scatter_figure(url: str, proxy: str, dataset: str, metric: str, setup: ScoreSetup | None,
                   log_x: bool) -> Any:
    """The scatter of :func:`scatter_rows`, drawn once per store state and kept (Streamlit only
    reads the figure)."""
    return _scatter_figure(url, store_version(url), proxy, dataset, metric, setup, log_x)


@st.cache_data(max_entries=32, show_spinner=False)
def _score_setups(url: str, version: tuple[int, ...], proxy: str,
                  dataset: str) -> list[tuple[ScoreSetup, int]]:
    return correlation.setups(proxy, dataset)


def score_setups(url: str, proxy: str, dataset: str) -> list[tuple[ScoreSetup, int]]:
    return _score_setups(url, store_version(url), proxy, dataset)


@st.cache_data(max_entries=16, show_spinner=False)
def _proxy_matrix(url: str, version: tuple[int, ...], dataset: str):  # noqa: ANN202 - (names, rho, n, set-ups)
    return correlation.proxy_matrix(dataset)


def proxy_matrix(url: str, dataset: str):  # noqa: ANN201 - (names, rho, n, set-ups)
    return _proxy_matrix(url, store_version(url), dataset)


@st.cache_data(max_entries=16, show_spinner=False)
def _catalogue(url: str, version: tuple[int, ...]) -> list[tuple[str, str, int]]:
    return correlation.catalogue()


def catalogue(url: str) -> list[tuple[str, str, int]]:
    return _catalogue(url, store_version(url))


@st.cache_data(max_entries=32, show_spinner=False)
def _provenance(url: str, version: tuple[int, ...], proxy: str, dataset: str,
                setup: ScoreSetup | None) -> list[str]:
    return correlation.provenance(proxy, dataset, setup)


def provenance(url: str, proxy: str, dataset: str, setup: ScoreSetup | None = None) -> list[str]:
    """Where the scores of ``proxy`` on ``dataset`` under ``setup`` came from
    (:func:`app.views.correlation.provenance`)."""
    return _provenance(url, store_version(url), proxy, dataset, setup)


@st.cache_resource(max_entries=16, show_spinner=False)
def _statistics_figures(url: str, version: tuple[int, ...], metric: str, statistic: str) -> dict[str, Any]:
    stats = _statistics_rows(url, version, metric)
    figures = {"heatmap": correlation.statistics_heatmap_figure(stats, statistic) if stats else None,
               "reference": None}
    if stats and metric == correlation.PUBLISHED_METRIC:
        refs = correlation.reference_rows(stats, "cifar10")
        figures["reference"] = correlation.reference_figure(refs, "cifar10")
    return figures


def statistics_figures(url: str, metric: str, statistic: str) -> dict[str, Any]:
    """The heatmap of :func:`statistics_rows` and, against the published metric, the reference
    figure (CIFAR-10), drawn once per store state and kept."""
    return _statistics_figures(url, store_version(url), metric, statistic)


@st.cache_resource(max_entries=16, show_spinner=False)
def _matrix_figure(url: str, version: tuple[int, ...], dataset: str) -> Any:
    names, matrix, counts, _ = _proxy_matrix(url, version, dataset)
    return correlation.proxy_matrix_figure(names, matrix, counts, dataset) if len(names) >= 2 else None


def matrix_figure(url: str, dataset: str) -> Any:
    """The proxy-vs-proxy figure of :func:`proxy_matrix` (None below two proxies), drawn once per
    store state and kept."""
    return _matrix_figure(url, store_version(url), dataset)
