"""The dashboard in a real browser, as a user drives it: ``knas up`` (a worker and the dashboard)
on a seeded store, driven by Playwright in Debian's Chromium (``executable_path``: no browser is
downloaded). One server for the module; each test opens its own page.

* every page renders (a deep link first), at 1400 px and at 800 px, where nothing is cut off;
  the screenshots go to artifacts/screenshots/ (CI keeps them; README shows search-detail.png);
* a ranking filtered and sorted in the page, exported as CSV, equals the database's rows;
* the New-search form refuses a sample size of 0 under that field and creates nothing;
* a search submitted from the form (5 samples, top-1, the params proxy) runs on the worker and
  its page reaches done;
* the Proxy lab follows a running discovery run by itself, its id in the address.

Skipped without /usr/bin/chromium, a failure with ``CI=true`` (.ci/run installs it).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dashboard_seed import seed, seed_discovery
from tests.processes import chromium, knas_server, require_chromium, settle

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"

#: Texts of metrics, widget labels, buttons and page links that do not fit their box (a value cut
#: to "qu..", a label to "D."): the element or one inside it is wider than it shows.
CUT_TEXT = """() => [...document.querySelectorAll(
        '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], [data-testid="stWidgetLabel"], '
        + 'button[data-testid^="stBaseButton"], [data-testid="stPageLink"]')]
    .filter(e => [e, ...e.querySelectorAll('*')].some(c => c.scrollWidth > c.clientWidth + 1))
    .map(e => e.innerText)"""
#: Input widgets narrower than ``min`` px (a select box squeezed until its value reads "r").
NARROW_INPUTS = """(min) => [...document.querySelectorAll(
        '[data-testid="stSelectbox"], [data-testid="stMultiSelect"], [data-testid="stSlider"], '
        + '[data-testid="stNumberInput"], [data-testid="stTextInput"]')]
    .filter(e => e.getBoundingClientRect().width < min)
    .map(e => e.innerText.split('\\n')[0])"""


#: The column headers a data grid shows: its accessible table holds the columns in view only.
SHOWN_COLUMNS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] th[role="columnheader"]')]
    .map(e => e.textContent)"""
#: The column headers of static tables (st.table) that lie inside their table's visible box.
TABLE_COLUMNS_IN_VIEW = """() => [...document.querySelectorAll('[data-testid="stTable"]')].flatMap(t => {
    const box = t.getBoundingClientRect();
    return [...t.querySelectorAll('th')].filter(h => h.getBoundingClientRect().right <= box.right + 1)
        .map(h => h.innerText.trim()); })"""


def shown_columns(page) -> list[str]:
    page.wait_for_function(f"() => ({SHOWN_COLUMNS})().length > 0", timeout=30_000)  # the grid is drawn
    return page.evaluate(SHOWN_COLUMNS)


@dataclass
class Lab:
    base: str
    url: str
    ids: dict[str, int]
    tmp: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, truth):
    """``knas up`` on the seeded store, with the embedded broker (its worker runs what the form
    submits; starting, it also finishes the seeded running search)."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'knas.db'}"
    ids = seed(url, truth)
    ids["run"] = seed_discovery(url)
    env = {k: v for k, v in os.environ.items()
           if k not in ("KNAS_BROKER_URL", "KNAS_RESULT_BACKEND", "KNAS_READ_ONLY", "KNAS_LAB_TOKEN")}
    env.update({"KNAS_DATABASE_URL": url, "KNAS_STATE_DIR": str(tmp / "state")})
    with knas_server("up", env, tmp) as base:
        yield Lab(base, url, ids, tmp)
    from db.session import dispose_engine

    dispose_engine(url)


@pytest.fixture(scope="module")
def browser(lab):
    with chromium() as b:
        yield b


def open_page(browser, width: int = 1400, height: int = 1200):
    return browser.new_page(viewport={"width": width, "height": height})


def goto(page, url: str, heading: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=90_000)
    settle(page)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("Page not found").count() == 0


def pages(lab: Lab) -> dict[str, tuple[str, str]]:
    """Screenshot name -> (path, heading) of every page, each with something to show."""
    ids = lab.ids
    return {"searches": ("/", "Searches"), "new-search": ("/new_search", "New search"),
            "search-detail": (f"/search_detail?search={ids['done']}", "Search detail"),
            "correlation": ("/correlation?proxy=synflow&dataset=cifar10", "Correlation"),
            "architecture": (f"/architecture?arch={ids['best_index']}", "Architecture"),
            "proxy-lab": (f"/proxy_lab?run={ids['run']}", "Proxy lab"),
            "compare-searches": (f"/compare_searches?searches={ids['done']},{ids['running']}",
                                 "Compare searches"),
            "pareto-front": (f"/pareto_front?search={ids['done']}", "Pareto front"),
            "operations": (f"/operations?search={ids['done']}", "Which operations matter")}


def test_pages_render_from_deep_links(lab, browser):
    """Wide (1400 px): a deep link is the server's first page (not "Page not found"); the
    Searches grid shows the best index and accuracy without scrolling sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page(browser, 1400, 2200)  # Streamlit scrolls inside the page: the window is the shot
    goto(page, f"{lab.base}/correlation?proxy=synflow&dataset=cifar10", "Correlation")
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 3  # scatter, heatmap, marks
    assert page.get_by_text("synflow vs cifar10 accuracy").count() >= 1  # the URL's proxy/dataset
    no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "correlation.png"), full_page=True)

    goto(page, f"{lab.base}/", "Searches")
    assert {"best index", "best acc (%)"} <= set(shown_columns(page))
    no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "searches.png"), full_page=True)

    goto(page, f"{lab.base}{pages(lab)['search-detail'][0]}", "Search detail")
    page.wait_for_timeout(1000)  # the cell drawing and charts finish their transitions
    no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "search-detail.png"), full_page=True)
    page.close()


def test_every_page_fits_an_800_px_window(lab, browser):
    """Narrow (800 px, the sidebar open): no metric, widget label, button or link is cut, no input is
    squeezed below 120 px (the detail filters wrap onto more lines instead), the ranking shows
    its numbers before the architecture string; a screenshot each."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page(browser, 800, 2000)
    problems = {}
    for name, (path, heading) in pages(lab).items():
        goto(page, f"{lab.base}{path}", heading)
        no_exception(page)
        page.screenshot(path=str(SCREENSHOTS / f"narrow-{name}.png"), full_page=True)
        cut, narrow = page.evaluate(CUT_TEXT), page.evaluate(NARROW_INPUTS, 120)
        in_view = page.evaluate(TABLE_COLUMNS_IN_VIEW)
        if name == "search-detail" and not {"synflow score", "accuracy (%)"} <= set(in_view):
            cut.append(f"ranking columns in view: {in_view}")  # not only rank, index, architecture
        if cut or narrow:
            problems[name] = {"cut": cut, "narrow": narrow}
    page.close()
    assert not problems, problems


def _ranking_rows_in_db(url: str, search_id: int, op: str) -> list[dict]:
    """The search's candidates whose cell holds ``op``, read from the store, by rank."""
    from sqlalchemy import select

    from db.models import Architecture, SearchCandidate
    from db.session import session_scope

    with session_scope(url) as s:
        rows = s.execute(select(SearchCandidate.rank, Architecture.index, Architecture.arch,
                                SearchCandidate.score, SearchCandidate.accuracy)
                         .join(Architecture, Architecture.id == SearchCandidate.architecture_id)
                         .where(SearchCandidate.search_id == search_id)).all()
    return [r._asdict() for r in sorted(rows, key=lambda r: r.rank) if f"{op}~" in r.arch]


def _number(text: str) -> float | None:
    return float(text) if text not in ("", "None", "nan") else None


def test_a_filtered_sorted_ranking_exports_what_the_database_holds(lab, browser):
    from playwright.sync_api import expect

    op = "nor_conv_1x1"
    expected = _ranking_rows_in_db(lab.url, lab.ids["done"], op)
    assert 0 < len(expected) < 12  # the filter keeps some of the 12, not all
    page = open_page(browser)
    goto(page, f"{lab.base}/search_detail?search={lab.ids['done']}", "Search detail")
    expect(page.get_by_text("Page (of 1; 12 architectures)")).to_be_visible()
    page.locator('[data-testid="stMultiSelect"]').filter(has_text="Cells containing").click()
    page.get_by_role("option", name=op, exact=True).click()
    page.keyboard.press("Escape")
    expect(page.get_by_text(f"Page (of 1; {len(expected)} architectures)")).to_be_visible(timeout=60_000)
    page.get_by_text("Descending", exact=True).click()
    settle(page)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Export CSV").click()
    assert download.value.suggested_filename == f"search-{lab.ids['done']}-ranking.csv"
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    page.close()
    assert [int(r["rank"]) for r in exported] == [r["rank"] for r in reversed(expected)]  # descending
    for got, want in zip(exported, reversed(expected)):
        assert (int(got["index"]), got["arch"]) == (want["index"], want["arch"])
        assert _number(got["score"]) == pytest.approx(want["score"])
        assert _number(got["accuracy"]) == pytest.approx(want["accuracy"])


def _search_count(url: str) -> int:
    from sqlalchemy import func, select

    from db.models import Search
    from db.session import session_scope

    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(Search))


def fill_number(page, label: str, value: int) -> None:
    """Type ``value`` into the number input labelled ``label`` and leave the field, as a user does."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")
    settle(page)


def test_the_form_refuses_sample_size_0_under_that_field(lab, browser):
    from playwright.sync_api import expect

    before = _search_count(lab.url)
    page = open_page(browser)
    goto(page, f"{lab.base}/new_search", "New search")
    fill_number(page, "Sample size", 0)
    page.get_by_role("button", name="Submit search").click()
    message = page.get_by_text("must be at least 1, got 0")
    expect(message).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Not submitted: change the field marked above: Sample size.")).to_be_visible()
    # the message sits under Sample size, above the next field; the box still shows the 0 checked
    samples = page.get_by_label("Sample size", exact=True)
    topk = page.get_by_label("Top-k evaluated", exact=True)
    assert samples.bounding_box()["y"] < message.bounding_box()["y"] < topk.bounding_box()["y"]
    assert samples.input_value() == "0"
    assert page.get_by_text("cannot exceed").count() == 0
    no_exception(page)
    assert re.search(r"/new_search", page.url)  # still on the form
    page.close()
    assert _search_count(lab.url) == before  # nothing submitted


@pytest.mark.timeout(600)
def test_a_search_submitted_from_the_form_runs_to_done(lab, browser):
    from playwright.sync_api import expect
    from sqlalchemy import select

    from db.models import Search
    from db.session import session_scope

    page = open_page(browser)
    goto(page, f"{lab.base}/", "Searches")
    page.get_by_role("link", name="New search").click()  # the sidebar, as a user would
    expect(page.get_by_role("button", name="Submit search")).to_be_visible(timeout=60_000)
    settle(page)
    page.get_by_label("Name", exact=True).fill("from the browser")
    page.get_by_label("Name", exact=True).press("Tab")
    for proxy in ("synflow", "eznas"):  # keep params: cheap, no forward pass to wait for
        page.get_by_role("button", name=f"Remove {proxy}").click()
        settle(page)
    fill_number(page, "Sample size", 5)
    fill_number(page, "Top-k evaluated", 1)
    fill_number(page, "Width C", 8)
    fill_number(page, "Cells N", 1)
    page.get_by_role("button", name="Submit search").click()

    page.wait_for_url(re.compile(r"search_detail\?search=\d+"), timeout=60_000)
    search_id = int(re.search(r"search=(\d+)", page.url).group(1))
    expect(page.get_by_text(f"#{search_id} from the browser · done", exact=True)).to_be_visible(
        timeout=480_000)  # the page refreshes itself: nobody reloads it
    expect(page.get_by_text("scored 5/5 (0 failed), evaluated 1")).to_be_visible()
    no_exception(page)
    page.close()
    with session_scope(lab.url) as s:
        row = s.scalars(select(Search).where(Search.id == search_id)).one()
        assert (row.name, row.status) == ("from the browser", "done")
        assert (row.config["samples"], row.config["topk"]) == (5, 1)
        assert row.config["proxy"] == "params" and not row.config.get("proxies")
        assert row.config["model"] == {"C": 8, "N": 1}


def test_the_proxy_lab_follows_a_running_run_by_itself(lab, browser):
    from playwright.sync_api import expect

    from db import discovery
    from db.session import session_scope
    from tests.dashboard_seed import FORMULA

    # stored after the worker started (a worker resumes the active runs it finds when it starts,
    # searches only are swept later): no task runs it, only this test moves it on
    run_id = seed_discovery(lab.url, status="running", name="live")
    page = open_page(browser)
    goto(page, f"{lab.base}/proxy_lab?run={run_id}", "Proxy lab")
    expect(page.get_by_text(f"#{run_id} live · running · stage evolve")).to_be_visible()
    assert page.get_by_text("0.450").count() == 0
    with session_scope(lab.url) as s:  # what a worker writes: one more generation, then the end
        run = discovery.get_run(s, run_id)
        discovery.record_generation(s, run, {"generation": 2, "best_fitness": 0.5, "mean_fitness": 0.1,
                                             "heldout_kendall": 0.45, "best_formula": FORMULA,
                                             "nonfinite_blocks": 0, "seconds": 1.0})
        run.finish("done", result={"formula": FORMULA, "train_kendall": 0.5, "heldout_kendall": 0.45})
    # nobody reloads or clicks: the page redraws itself while the run is active
    expect(page.get_by_text(re.compile(rf"#{run_id} live · done · stage"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text("0.450", exact=True)).to_be_visible()  # the held-out tau
    expect(page.get_by_role("button", name="Promote to the proxy list")).to_be_enabled()  # the full rerun
    assert f"run={run_id}" in page.url  # a link to this view reopens this run
    no_exception(page)
    page.close()
