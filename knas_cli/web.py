"""``knas web`` (the dashboard) and ``knas up`` (migrations, a worker and the dashboard)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_PORT = 8501


def add_parser(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser("web", help="start the dashboard (Streamlit) on loopback")
    w.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    w.set_defaults(run=run_web)

    u = sub.add_parser("up", help="database upgrade, a worker on the embedded default and the dashboard")
    u.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"dashboard port (default {DEFAULT_PORT})")
    u.add_argument("--host", default="127.0.0.1", help="dashboard address (default loopback only)")
    u.add_argument("--concurrency", type=int, default=1, help="parallel tasks in the worker")
    u.set_defaults(run=run_up)


def app_path() -> Path:
    import app

    return Path(app.__file__).resolve().parent / "main.py"


def _check_port(port: int) -> None:
    from knas_cli.main import UsageError

    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")


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


def run_web(args: argparse.Namespace) -> int:
    _check_port(args.port)
    from db.migrate import upgrade

    upgrade()
    print(f"dashboard on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    return _supervise({"web": web_command(args.port, args.host)})


def run_up(args: argparse.Namespace) -> int:
    from knas_cli.main import UsageError

    _check_port(args.port)
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    from db.migrate import current_revision, upgrade

    upgrade()
    print(f"database at revision {current_revision()}", file=sys.stderr)
    worker = [sys.executable, "-m", "knas_cli", "worker", "--concurrency", str(args.concurrency)]
    print(f"worker log: knas-worker.log; dashboard on http://{args.host}:{args.port} (Ctrl-C stops both)",
          file=sys.stderr, flush=True)
    return _supervise({"worker": worker, "web": web_command(args.port, args.host)},
                      logs={"worker": "knas-worker.log"})


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
                                              start_new_session=True)
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
