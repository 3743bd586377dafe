"""Entry point of the dashboard: ``streamlit run app/main.py`` (or ``knas web``).

Every file in ``app/screens/`` is a page; its name gives the order, the title and the URL
(``3_Search_detail.py`` -> "Search detail" at ``/search_detail``). Adding a page is adding
one file there. (Not ``app/pages/``: a folder of that name beside the entry script puts
Streamlit in its legacy multipage mode, which answers a server's first deep link with
"Page not found".)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` from a checkout
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.views import access  # noqa: E402

PAGES = Path(__file__).resolve().parent / "screens"


def page_title(path: Path) -> str:
    stem = path.stem.split("_", 1)[1] if path.stem.split("_", 1)[0].isdigit() else path.stem
    return stem.replace("_", " ")


def page_order(path: Path) -> tuple[int, str]:
    """Pages sort by their number (``10_...`` after ``9_...``), then by name."""
    head = path.stem.split("_", 1)[0]
    return (int(head) if head.isdigit() else 10**9, path.name)


def discover() -> list[st.Page]:
    files = sorted(PAGES.glob("[!_]*.py"), key=page_order)
    return [st.Page(f"screens/{f.name}", title=page_title(f),
                    url_path=page_title(f).lower().replace(" ", "_"), default=i == 0)
            for i, f in enumerate(files)]


def sidebar() -> None:
    from app.ui import GRANT_KEY, TOKEN_NOTE_KEY, params, read_only, writable

    with st.sidebar:
        if read_only():
            st.caption("Read-only dashboard: nothing can be submitted or cancelled here.")
        elif access.lab_token() is not None:
            if not st.session_state.get(GRANT_KEY):  # a link's token already granted this session
                st.text_input("Lab token", type="password", key="lab_token",
                              help="write actions (submit, cancel) need the lab's token (KNAS_LAB_TOKEN)")
            st.caption("Write actions enabled." if writable() else "Read-only until the lab token is given.")
        if st.session_state.get(TOKEN_NOTE_KEY):
            st.caption(st.session_state[TOKEN_NOTE_KEY])
        st.caption("Share a read-only link to this view:")
        base = (st.context.url or "").split("?")[0]
        st.code(f"{base}?{access.read_only_query(params())}", language=None, wrap_lines=True)


def load_user_plugins() -> None:
    """Plugins' proxies and spaces ($KNAS_PLUGINS, entry points), so that the forms offer them
    and their searches can be shown; a plugin that fails to load is shown as an error."""
    from knas_core.plugins import PluginError, load_plugins

    try:
        load_plugins()
    except PluginError as exc:
        st.error(f"Plugins: {exc}")


st.set_page_config(page_title="KNAS Studio", layout="wide")
load_user_plugins()
navigation = st.navigation(discover())
from app.ui import schema_problem, sync_access  # noqa: E402

problem = schema_problem()
if problem is not None:  # the store needs `knas db upgrade`: say so on every page, draw nothing else
    st.error(problem)
    st.stop()
sync_access()  # before any page draws: a link's read-only view or token, taken once per session
sidebar()
navigation.run()
