"""Sharing in a real browser (Playwright driving Debian's Chromium, never a downloaded one): a
read-only link stays read-only after the sidebar's navigation and offers no enabled write control
on any page, and user text from the store is shown as text (a search named as a Markdown image
makes no browser fetch its URL).

Skipped without /usr/bin/chromium, a failure with ``CI=true``, as in tests/test_first_search.py.
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

import pytest

from .dashboard_seed import seed_discovery
from .processes import chromium_page, knas_server, require_chromium, settle

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PIXEL_HOST = "127.0.0.1:8799"
PIXEL = f"![px](http://{PIXEL_HOST}/pixel.png)"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    require_chromium()
    from db import repository as repo
    from db.migrate import upgrade
    from db.session import session_scope

    tmp = tmp_path_factory.mktemp("sharing")
    url = f"sqlite:///{tmp / 'knas.db'}"
    upgrade(url)
    with session_scope(url) as s:
        search = repo.create_search(s, {"name": PIXEL, "space": "nb201", "strategy": "knas",
                                        "dataset": "cifar10", "proxy": "synflow", "samples": 4, "topk": 1,
                                        "eval": "lookup", "seed": 0, "device": "cpu"})
        search.finish("failed", error=f"ValueError: {PIXEL.replace('px', 'err')}")
        search_id = search.id
        running = repo.create_search(s, {"name": "running", "space": "nb201", "strategy": "knas",
                                         "dataset": "cifar10", "proxy": "synflow", "samples": 4, "topk": 1,
                                         "eval": "lookup", "seed": 0, "device": "cpu"})
        repo.set_stage(s, running, "score", total=4, scored=1)
        running_id = running.id
    seed_discovery(url)  # a program to promote
    seed_discovery(url, status="running", name="live")  # a run to cancel
    env = {k: v for k, v in os.environ.items() if k not in ("KNAS_READ_ONLY", "KNAS_LAB_TOKEN")}
    env.update({"KNAS_DATABASE_URL": url, "KNAS_STATE_DIR": str(tmp / "state")})
    with knas_server("web", env, tmp, timeout=90) as base:
        yield base, search_id, running_id


@pytest.fixture()
def browser_page():
    with chromium_page() as page:
        yield page


def test_read_only_link_offers_no_submit_after_navigating(dashboard, browser_page):
    from playwright.sync_api import expect

    base, _, _ = dashboard
    page = browser_page
    page.goto(f"{base}/?view=readonly")
    expect(page.get_by_role("heading", name="Searches")).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="New search").click()  # the sidebar, as the link's reader would
    expect(page.get_by_role("heading", name="New search")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Read-only dashboard: searches cannot be submitted here.")).to_be_visible(
        timeout=30_000)
    submit = page.get_by_role("button", name="Submit search")
    assert submit.count() == 0 or not any(submit.nth(i).is_enabled() for i in range(submit.count()))
    page.wait_for_url(re.compile(r"new_search\?(.*&)?view=readonly"), timeout=10_000)
    page.reload()  # the address it now shows is read-only too
    expect(page.get_by_text("Read-only dashboard: searches cannot be submitted here.")).to_be_visible(
        timeout=60_000)
    assert page.get_by_role("button", name="Submit search").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_search_named_as_an_image_fetches_nothing(dashboard, browser_page):
    from playwright.sync_api import expect

    base, search_id, _ = dashboard
    page = browser_page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{base}/search_detail?search={search_id}")
    expect(page.get_by_text(re.compile(r"· failed · ended at"))).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1000)
    assert not [u for u in requested if PIXEL_HOST in u], requested  # the name and error fetch nothing
    expect(page.get_by_text(f"#{search_id} {PIXEL} · failed")).to_be_visible()  # shown as typed
    expect(page.get_by_text(PIXEL.replace("px", "err"))).to_be_visible()
    page.goto(f"{base}/architecture?arch={quote(PIXEL)}")  # a link's text comes back in an error
    expect(page.get_by_text(re.compile(r"Not an architecture"))).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1000)
    assert not [u for u in requested if PIXEL_HOST in u], requested
    assert page.locator('[data-testid="stException"]').count() == 0


#: Buttons that change nothing: navigation, refreshing, exports, the tables' and charts' own
#: tools, number steppers and removing a choice from a form that cannot be submitted.
READ_ACTIONS = {"Open", "Refresh", "Collapse sidebar", "Export CSV", "Export JSON", "Show/hide columns",
                "Download as CSV", "Search", "Fullscreen", "Download plot as a PNG", "Zoom", "Pan", "Zoom in",
                "Zoom out", "Autoscale", "Reset axes", "Decrement", "Increment", "Clear all"}
#: The dashboard's write controls, each absent or disabled when read-only (a link to the New-search
#: page is navigation: the form there cannot submit).
WRITE_CONTROLS = ("Submit search", "Cancel", "Clone as new", "Cancel this search", "Start", "Cancel run",
                  "Promote to the proxy list")


def _enabled_writes(page) -> list[str]:
    """Enabled buttons that are not :data:`READ_ACTIONS` (their labels), and write links."""
    found = []
    buttons = page.get_by_role("button")
    for i in range(buttons.count()):
        button = buttons.nth(i)
        name = (button.get_attribute("aria-label") or button.inner_text()).strip().splitlines()[-1].strip()
        if button.is_enabled() and name not in READ_ACTIONS and not name.startswith(("Help for", "Remove ")):
            found.append(name)
    for name in WRITE_CONTROLS:
        links = page.get_by_role("link", name=name, exact=True)
        found += [f"link {name}"] * links.count()
    return found


@pytest.mark.timeout(600)
def test_a_read_only_link_offers_no_enabled_write_control_on_any_page(dashboard, browser_page):
    from playwright.sync_api import expect

    base, _, running_id = dashboard
    page = browser_page
    page.goto(f"{base}/search_detail?search={running_id}")  # writable: the controls exist here
    expect(page.get_by_role("button", name="Cancel this search")).to_be_enabled(timeout=90_000)

    page.goto(f"{base}/search_detail?search={running_id}&view=readonly")  # the sidebar's read-only link
    expect(page.get_by_text(f"#{running_id} running · running · stage score")).to_be_visible(timeout=90_000)
    settle(page)
    seen = {"Search detail": _enabled_writes(page)}
    pages = {"Searches": "Searches", "New search": "New search", "Correlation": "Correlation",
             "Architecture": "Architecture", "Proxy lab": "Proxy lab", "Compare searches": "Compare searches",
             "Pareto front": "Pareto front", "Operations": "Which operations matter",
             "Search detail": "Search detail"}  # sidebar link -> the page's heading
    for title, heading in pages.items():
        page.get_by_role("link", name=title, exact=True).click()  # the sidebar
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=90_000)
        settle(page)
        if title == "Proxy lab":  # the start form is folded away: open it to see its button
            page.get_by_text("Start a discovery run").click()
            expect(page.get_by_role("button", name="Start")).to_be_disabled(timeout=30_000)
            expect(page.get_by_role("button", name="Promote to the proxy list")).to_be_disabled()
        assert re.search(r"[?&]view=readonly", page.url), page.url  # still read-only after navigating
        seen[title] = _enabled_writes(page)
        assert page.locator('[data-testid="stException"]').count() == 0
    assert not any(seen.values()), seen
