"""Helpers for tests that start processes: a free loopback port, waiting for an HTTP answer,
stopping a process (SIGTERM, then SIGKILL), this checkout's dashboard as a process, a Playwright
page in Debian's Chromium, and :class:`Stack` (a store, a broker and ``knas worker`` processes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: This environment's ``knas`` entry point (beside the interpreter: never another checkout's).
KNAS = str(Path(sys.executable).with_name("knas"))
#: Search settings for worker tests: tiny networks on the CPU, so a loaded machine keeps up.
SMALL_SEARCH = {"batch_size": 16, "device": "cpu", "model": {"C": 8, "N": 1}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> bytes:
    """The body of the first successful GET of ``url``; fails when ``proc`` exits first or
    nothing answers within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Terminate ``proc`` and wait; kill it if it has not ended after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


CHROMIUM = "/usr/bin/chromium"
#: Chromium flags for this machine's closed network (no background connections) as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_chromium() -> None:
    """Skip without Debian's Chromium; with ``CI=true`` that is a failure (.ci/run installs it)."""
    import pytest

    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{CHROMIUM} is missing; CI=true requires it (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")


@contextmanager
def knas_server(command: str, env: dict[str, str], cwd: Path, timeout: float = 120.0) -> Iterator[str]:
    """``knas <command> --port P`` (``web`` or ``up``) of this checkout, until it answers its
    health check; yields its base URL and stops it with SIGINT (Ctrl-C) afterwards."""
    port = free_port()
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "knas_cli", command, "--port", str(port)], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright browser: Debian's Chromium (``executable_path``: no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_page(width: int = 1400, height: int = 1400) -> Iterator[Any]:
    """A Playwright page in Debian's Chromium (see :func:`chromium`)."""
    with chromium() as browser:
        yield browser.new_page(viewport={"width": width, "height": height})


#: True once Streamlit has finished the page's run and drawn every element: the app's
#: ``data-test-script-state`` (an attribute Streamlit sets for its own browser tests) is
#: ``notRunning`` and no loading skeleton is left (a chart or table still loading shows one).
_SETTLED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app !== null && app.dataset.testScriptState === 'notRunning'
        && document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]') === null;
}"""


def settle(page: Any, timeout_ms: float = 60_000) -> None:
    """Wait until the Streamlit page in ``page`` (Playwright) has finished running and drawing."""
    page.wait_for_timeout(300)  # a click's rerun starts after the click returns
    page.wait_for_function(_SETTLED, timeout=timeout_ms)


class Stack:
    """Environment for one deployment: database (migrated, as `knas db upgrade` does: workers
    never migrate), broker, state directory; starts workers."""

    def __init__(self, tmp: Path, db_url: str, broker: str | None) -> None:
        from db.migrate import upgrade

        upgrade(db_url)
        self.tmp, self.db_url = tmp, db_url
        self.env = {**os.environ, "KNAS_DATABASE_URL": db_url, "KNAS_STATE_DIR": str(tmp / "state"),
                    "KNAS_VISIBILITY_TIMEOUT": "5", "PYTHONPATH": str(ROOT)}
        self.env.pop("KNAS_BROKER_URL", None)
        self.env.pop("KNAS_RESULT_BACKEND", None)
        if broker:
            self.env["KNAS_BROKER_URL"] = broker
            self.env["KNAS_RESULT_BACKEND"] = broker
        self.workers: list[subprocess.Popen] = []

    def knas(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([KNAS, *args], capture_output=True, text=True, timeout=120,
                              env={**self.env, **env}, cwd=self.tmp)

    def start_worker(self, name: str, *extra: str, **env: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([KNAS, "worker", "--name", f"{name}@test", "--loglevel", "info", *extra],
                                stdout=log, stderr=subprocess.STDOUT, env={**self.env, **env},
                                cwd=self.tmp, start_new_session=True)
        self.workers.append(proc)
        return proc

    def wait_ready(self, *names: str, timeout: float = 120) -> None:
        """Block until each named worker has logged that it is ready to take tasks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("ready." in (self.tmp / f"{n}.log").read_text() for n in names):
                return
            time.sleep(0.5)
        raise AssertionError(f"workers {names} did not become ready")

    def submit(self, config: dict) -> int:
        path = self.tmp / f"search-{len(list(self.tmp.glob('search-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = self.knas("submit", str(path), "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["id"]

    def status(self, search_id: int) -> dict:
        proc = self.knas("status", str(search_id), "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def wait(self, search_id: int, until, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(search_id)
            if until(status):
                return status
            time.sleep(1)
        logs = "\n".join(p.read_text()[-3000:] for p in self.tmp.glob("*.log"))
        raise AssertionError(f"timed out waiting; last status {status}\n{logs}")

    def kill(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def rows(self, search_id: int) -> tuple[int, int, int]:
        """(candidates, score rows of them, distinct architectures scored)."""
        from sqlalchemy import func, select

        from db.models import ProxyScore, SearchCandidate
        from db.session import session_scope

        with session_scope(self.db_url) as s:
            arch_ids = select(SearchCandidate.architecture_id).where(SearchCandidate.search_id == search_id)
            cands = s.scalar(select(func.count()).select_from(SearchCandidate)
                             .where(SearchCandidate.search_id == search_id))
            rows = s.scalar(select(func.count()).select_from(ProxyScore)
                            .where(ProxyScore.architecture_id.in_(arch_ids)))
            distinct = s.scalar(select(func.count(func.distinct(ProxyScore.architecture_id)))
                                .where(ProxyScore.architecture_id.in_(arch_ids)))
        return cands, rows, distinct
