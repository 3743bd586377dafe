"""``knas web`` / ``knas up`` as a user runs them: real processes on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from knas_cli.web import port_holder
from tests.processes import free_port, wait_http

pytestmark = pytest.mark.integration

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
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "knas_cli", "up", "--port", str(port)],
                            env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    log = tmp_path / "knas-worker.log"
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90, proc)
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


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that never comes, in a container, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_up_takes_worker_and_dashboard_with_it(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "knas_cli", "up", "--port", str(port)],
                            env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    children: list[int] = []
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90, proc)
        children = _children(proc.pid)
        assert len(children) == 2, children  # the worker and the dashboard
    finally:
        proc.kill()  # SIGKILL: no handler of knas up runs
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in children if _alive(pid)]
    for pid in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not left, "children outlived knas up"
    # The port is free for the next knas up. The kernel may take a moment to tear down the dead
    # server's sockets, so poll; a process still listening there fails the test by name.
    deadline = time.monotonic() + 15
    while not _can_bind(port):
        assert time.monotonic() < deadline, \
            f"port {port} still busy: holder {port_holder(port)}, sockets {_tcp_states(port)}"
        time.sleep(0.5)


def _can_bind(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as knas up's own probe does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _tcp_states(port: int) -> list[str]:
    """The kernel's TCP states (hex, /proc/net/tcp) of sockets on local ``port``, for a message."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return [f[3] for f in (line.split() for line in lines) if int(f[1].rsplit(":", 1)[1], 16) == port]


@pytest.mark.parametrize("command", ["web", "up"])
def test_a_busy_port_names_its_holder_before_starting_anything(tmp_path, command):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "knas_cli", command, "--port", str(port)],
                              env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"knas: error: port {port} is in use by process "
                                                   f"{os.getpid()} ("), done.stderr
    assert "choose another --port" in lines[0]
    assert not (tmp_path / "knas.db").exists() and not (tmp_path / "knas-worker.log").exists()
