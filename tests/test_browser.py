"""One browser test: ``knas web`` on loopback against a seeded database, the Searches and
Correlation pages loaded in headless Chromium, the rendered DOM checked for the table/chart
and for the absence of a Streamlit exception box; screenshots go to artifacts/screenshots/.

Streamlit renders over a websocket after the page's load event, which ``--dump-dom`` does not
wait for (with or without ``--virtual-time-budget`` it returns the loading skeleton), so the
test drives the same headless Chromium over the DevTools protocol instead: it polls the live
DOM until the expected elements are there, then dumps it and takes the screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dashboard_seed import seed
from tests.processes import CHROMIUM, free_port, require_chromium, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,2200"]


def _cdp_render(ws_url: str, url: str, ready: list[str], timeout: float) -> tuple[str, bytes]:
    """Open ``url``, wait until the DOM holds every marker in ``ready`` (and no loading
    skeleton), then return ``(outerHTML, png)``. Uses ``websockets`` (a Streamlit dependency)."""
    from websockets.sync.client import connect

    counter = iter(range(1, 10**6))
    with connect(ws_url, max_size=64 * 2**20, open_timeout=20) as conn:
        def call(method: str, **params: object) -> dict:
            msg_id = next(counter)
            conn.send(json.dumps({"id": msg_id, "method": method, "params": params}))
            while True:
                reply = json.loads(conn.recv(timeout=30))
                if reply.get("id") == msg_id:
                    if "error" in reply:
                        raise AssertionError(f"DevTools {method}: {reply['error']}")
                    return reply["result"]

        def dom() -> str:
            result = call("Runtime.evaluate", expression="document.documentElement.outerHTML")
            return result["result"].get("value") or ""  # empty while the page is navigating

        call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            html = dom()
            if all(marker in html for marker in ready) and "stAppSkeleton" not in html:
                time.sleep(1.5)  # let the charts finish drawing before the screenshot
                break
            time.sleep(0.5)
        html = dom()
        shot = call("Page.captureScreenshot", format="png")
    return html, base64.b64decode(shot["data"])


def _render(url: str, ready: list[str], tmp: Path, timeout: float = 60.0) -> tuple[str, bytes]:
    port = free_port()
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'chromium'}",
                             f"--remote-debugging-port={port}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        targets = json.loads(wait_http(f"http://127.0.0.1:{port}/json/list", 30, proc))
        page = next(t for t in targets if t.get("type") == "page")
        return _cdp_render(page["webSocketDebuggerUrl"], url, ready, timeout)
    finally:
        stop(proc, timeout=10)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, truth):
    require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'knas.db'}"
    ids = seed(url, truth)
    port = free_port()
    env = {**os.environ, "KNAS_DATABASE_URL": url, "KNAS_STATE_DIR": str(tmp / "state"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "knas_cli", "web", "--port", str(port)], env=env,
                            cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc)
        yield f"http://127.0.0.1:{port}", ids, tmp
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode(errors="replace")[-2000:]  # a clean stop


def test_searches_and_correlation_pages_render(dashboard):
    base, ids, tmp = dashboard
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # a deep link first: the server's first session must open it, not "Page not found"
    html, png = _render(f"{base}/correlation?proxy=synflow&dataset=cifar10",
                        ['data-testid="stPlotlyChart"', "js-plotly-plot", 'data-testid="stDataFrame"',
                         "synflow vs cifar10 accuracy"], tmp)
    (SCREENSHOTS / "correlation.png").write_bytes(png)
    assert html.count('data-testid="stPlotlyChart"') >= 3  # scatter, heatmap, published marks (+ matrix)
    assert "synflow vs cifar10 accuracy" in html  # the scatter's title, from the URL's proxy/dataset
    assert "stException" not in html and "Page not found" not in html

    # Searches is the default page
    html, png = _render(f"{base}/", ['data-testid="stDataFrame"', ">Searches<"], tmp)
    (SCREENSHOTS / "searches.png").write_bytes(png)
    assert 'data-testid="stDataFrame"' in html and ">Searches<" in html
    assert "stException" not in html and "Page not found" not in html
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
