"""``knas web`` (the dashboard) and ``knas up`` (migrations, a worker and the dashboard)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from knas_cli.errors import UsageError

DEFAULT_PORT = 8501


def add_web_arguments(w: argparse.ArgumentParser) -> None:
    """The options of ``knas web``."""
    w.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    w.set_defaults(run=run_web)


def add_up_arguments(u: argparse.ArgumentParser) -> None:
    """The options of ``knas up``."""
    u.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"dashboard port (default {DEFAULT_PORT})")
    u.add_argument("--host", default="127.0.0.1", help="dashboard address (default loopback only)")
    u.add_argument("--concurrency", type=int, default=1, help="parallel tasks in the worker")
    u.set_defaults(run=run_up)


def app_path() -> Path:
    import app

    return Path(app.__file__).resolve().parent / "main.py"


def _check_port(port: int, host: str = "127.0.0.1") -> None:
    """A usable port that nothing listens on, or :class:`UsageError` naming the process holding it
    (checked before anything starts, so a busy port leaves no half-started worker behind)."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r} is not an address of this machine ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the dashboard's server does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
            holder = port_holder(port)
            who = f"process {holder[0]} ({holder[1]})" if holder else \
                "another process (one this user cannot see)"
            raise UsageError(f"port {port} is in use by {who}; stop it or choose another --port") from None


def port_holder(port: int) -> tuple[int, str] | None:
    """``(pid, command line)`` of a process listening on TCP ``port``, from ``/proc`` (Linux), or
    None where it cannot be told (another user's process, no ``/proc``)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])  # state 0A: LISTEN
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    proc = Path("/proc")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    raw = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    command = raw.decode(errors="replace") or "?"
                    return int(entry.name), command if len(command) <= 120 else command[:117] + "..."
        except OSError:  # gone, or another user's: skip
            continue
    return None


def web_command(port: int, host: str) -> list[str]:
    """The ``streamlit run`` command line of the dashboard (headless, no usage statistics)."""
    return [sys.executable, "-m", "streamlit", "run", str(app_path()), "--server.port", str(port),
            "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]


def _env() -> dict[str, str]:
    """The child's environment: the checkout root on PYTHONPATH so ``app``/``db``/``tasks`` import."""
    env = dict(os.environ)
    root = str(app_path().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _require_dashboard(*, worker: bool = False) -> None:
    """The packages the dashboard (and ``knas up``'s worker) import, checked before anything
    starts: a missing one is one line naming the extra, not a child's traceback."""
    from knas_core.optional import require

    purpose = "knas up" if worker else "the dashboard (knas web)"
    for module in ("streamlit", "plotly"):
        require(module, "web", purpose)
    for module in ("celery", "deap"):  # the dashboard submits searches and discovery runs
        require(module, "workers", purpose)


def run_web(args: argparse.Namespace) -> int:
    _require_dashboard()
    _check_port(args.port, args.host)
    from db.migrate import check_schema

    check_schema()  # `knas db upgrade` migrates (or `knas up`); the dashboard never does
    print(f"dashboard on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    return _supervise({"web": web_command(args.port, args.host)})


def run_up(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    _require_dashboard(worker=True)
    _check_port(args.port, args.host)
    from db.migrate import current_revision, upgrade

    upgrade()
    print(f"database at revision {current_revision()}", file=sys.stderr)
    from knas_cli.workers import import_packaged_atlas

    atlas_line = import_packaged_atlas()
    if atlas_line:
        print(atlas_line, file=sys.stderr, flush=True)
    worker = [sys.executable, "-m", "knas_cli", "worker", "--concurrency", str(args.concurrency)]
    print(f"worker log: knas-worker.log; dashboard on http://{args.host}:{args.port} (Ctrl-C stops both)",
          file=sys.stderr, flush=True)
    return _supervise({"worker": worker, "web": web_command(args.port, args.host)},
                      logs={"worker": "knas-worker.log"})


def _die_with_parent() -> object:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when this process dies, however it
    dies (SIGKILL included: no handler of ours runs then), so that no worker or dashboard outlives
    ``knas up``/``knas web`` holding the port. Linux only (``PR_SET_PDEATHSIG``); elsewhere None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, before the fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _supervise(commands: dict[str, list[str]], logs: dict[str, str] | None = None,
               grace: float = 20.0) -> int:
    """Run the commands as children; when one ends, or on SIGINT/SIGTERM, stop the others
    (SIGTERM, then SIGKILL after ``grace`` seconds). Returns the first child's exit status."""
    logs = logs or {}
    children: dict[str, subprocess.Popen] = {}
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    files = []
    try:
        for name, cmd in commands.items():
            out = None
            if name in logs:
                out = open(logs[name], "ab")  # noqa: SIM115 - closed below
                files.append(out)
            children[name] = subprocess.Popen(cmd, env=_env(), stdout=out,
                                              stderr=subprocess.STDOUT if out else None,
                                              start_new_session=True, preexec_fn=_die_with_parent())
        status = 0
        while not stop["signal"]:
            ended = [(n, p.returncode) for n, p in children.items() if p.poll() is not None]
            if ended:
                name, status = ended[0]
                print(f"knas: {name} exited with status {status}; stopping the rest", file=sys.stderr)
                break
            time.sleep(0.2)
        _stop_all(children, grace)
        return 130 if stop["signal"] == signal.SIGINT else status
    finally:
        _stop_all(children, grace)
        for s, handler in old.items():
            signal.signal(s, handler)
        for f in files:
            f.close()


def _stop_all(children: dict[str, subprocess.Popen], grace: float) -> None:
    for p in children.values():
        if p.poll() is None:
            p.terminate()  # the child's own clean shutdown (Celery: warm shutdown)
    deadline = time.monotonic() + grace
    for p in children.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
