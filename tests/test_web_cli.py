"""``knas web`` / ``knas up`` as a user runs them: real processes on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.test_browser import _free_port, _wait_http

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "KNAS_DATABASE_URL": f"sqlite:///{tmp / 'knas.db'}",
            "KNAS_STATE_DIR": str(tmp / "state"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}


def test_web_rejects_a_bad_port(tmp_path):
    done = subprocess.run([sys.executable, "-m", "knas_cli", "web", "--port", "70000"],
                          env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "knas: error: --port must be between 1 and 65535, got 70000"


def test_up_runs_worker_and_dashboard_and_sigterm_stops_both(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "knas_cli", "up", "--port", str(port)],
                            env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    log = tmp_path / "knas-worker.log"
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90, proc)
        deadline = time.monotonic() + 90
        while not (log.exists() and " ready." in log.read_text(errors="replace")):
            assert time.monotonic() < deadline, "the worker did not report ready"
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    assert "database at revision" in out.decode()
    assert "warm shutdown" in log.read_text(errors="replace").lower()  # Celery's clean stop
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
        raise AssertionError("the dashboard still answers after knas up stopped")
    except OSError:
        pass
