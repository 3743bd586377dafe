"""What a new user does first, in a real browser: `knas up` on an empty store with no data
folder (no KNAS_DATA_DIR, an empty user cache: only the package data), open the dashboard, go to
New search, press Submit search with the defaults, and watch the search finish.

Playwright drives Debian's Chromium (``executable_path``; Playwright never downloads a browser
here). Skipped without /usr/bin/chromium, a failure with ``CI=true`` (.ci/run installs it).
"""

from __future__ import annotations

import os
import re

import pytest

from .conftest import ROOT
from .processes import chromium_page, knas_server, require_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture()
def fresh_dashboard(tmp_path):
    """`knas up` on an empty store, with no data folder and an empty user cache."""
    require_chromium()
    env = {k: v for k, v in os.environ.items() if k != "KNAS_DATA_DIR"}
    env.update({"KNAS_CACHE_DIR": str(tmp_path / "empty-cache"),
                "KNAS_DATABASE_URL": f"sqlite:///{tmp_path / 'knas.db'}",
                "KNAS_STATE_DIR": str(tmp_path / ".knas")})
    with knas_server("up", env, tmp_path) as base:
        yield base, tmp_path


@pytest.mark.timeout(900)  # 45 s on an idle machine; a loaded one scored 40x slower
def test_a_new_user_runs_the_default_search_from_the_dashboard(fresh_dashboard):
    from playwright.sync_api import expect

    base, tmp = fresh_dashboard
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chromium_page(1400, 1800) as page:
        page.goto(f"{base}/")
        page.get_by_role("link", name="New search").click()  # the sidebar, as a user would
        expect(page.get_by_role("button", name="Submit search")).to_be_visible(timeout=60_000)
        # the page says which images the search will score: the shipped scoring set
        expect(page.get_by_text(re.compile(r"2,000 train images of cifar10_scoring_2k500\.npz"))
               ).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Submit search").click()

        # submitting opens the search; it runs and finishes without anything else to do
        page.wait_for_url(re.compile(r"search_detail\?search=1"), timeout=60_000)
        expect(page.get_by_text(re.compile(r"#1 .*· done"))).to_be_visible(timeout=840_000)
        expect(page.get_by_text(re.compile(r"scored 100/100 \(0 failed\), evaluated 10"))).to_be_visible()
        # .first: while the finished search redraws the whole page, the live block's caption and the
        # redrawn one can both be on it for a moment
        expect(page.get_by_text(re.compile(r"images: 2,000 train images")).first).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "first-search.png"), full_page=True)

        # and the list of searches shows it done
        page.get_by_role("link", name="Searches", exact=True).click()
        expect(page.get_by_role("heading", name="Searches")).to_be_visible(timeout=60_000)
        # the table is a canvas grid: its accessible cells hold the values
        status = page.locator('[role="gridcell"]').filter(has_text=re.compile(r"^done$"))
        expect(status.first).to_be_attached(timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
