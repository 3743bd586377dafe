"""Start-up cost of the ``knas`` command: CPU seconds (user + system of the child process,
from ``os.wait4``) and wall seconds of the commands that should answer at once.

Each command runs ``--repeat`` times in a temporary folder on a fresh SQLite database
(``knas db upgrade``, then one finished search with a result and one queued search inserted
through ``db.repository`` by the same interpreter as the ``knas`` measured); the table gives the
median of each. The goal (issue #13, item 6): under 0.5 s of CPU for ``knas --help``,
``knas status`` and ``knas cancel``; ``knas score --help`` and the status of a search still
waiting for its result load torch (the proxies' registry) and are shown for comparison only,
as are two floors: an empty interpreter, and the import of SQLAlchemy's ORM that any command
reading the database pays (on a busy machine both grow with the load).

    python benchmarks/startup.py [--knas PATH] [--repeat N]

``--knas`` measures another installation, e.g. another checkout's ``.venv/bin/knas`` (its own
``python`` beside it inserts the rows), to compare before and after a change.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: CPU seconds that ``knas --help``, ``knas status`` and ``knas cancel`` should stay under.
GOAL_CPU_S = 0.5

#: Rows inserted by the measured installation's own interpreter: a finished search with its
#: result and a queued one; prints their ids.
SEED_ROWS = """
from db import repository as repo
from db.session import session_scope
from tasks.schema import validate_config

config = validate_config({}).model_dump(mode="json")
with session_scope() as s:
    done = repo.create_search(s, config, "finished")
    done.finish("done")
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    done.result = {"arch": arch, "index": 1, "score": 1.0, "accuracy": 90.0, "test_acc": {"cifar10": 93.0},
                   "percentile": 99.0}
    queued = repo.create_search(s, config, "queued")
    s.flush()
    print(done.id, queued.id)
"""


def default_knas() -> str:
    """The ``knas`` beside this interpreter (a virtual environment's), else the one on PATH."""
    beside = Path(sys.executable).with_name("knas")
    return str(beside) if beside.exists() else (shutil.which("knas") or "knas")


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """Run ``cmd`` once; returns (CPU seconds of the child, wall seconds, exit status)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return usage.ru_utime + usage.ru_stime, wall, proc.returncode


def torch_version() -> str:
    try:
        return version("torch")  # the metadata only: importing torch here would cost seconds
    except PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--knas", default=default_knas(), help="the knas executable to measure")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (median shown)")
    args = parser.parse_args(argv)
    knas = str(Path(args.knas).absolute())
    python = str(Path(knas).with_name("python"))

    with tempfile.TemporaryDirectory(prefix="knas-startup-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "KNAS_DATABASE_URL": f"sqlite:///{folder / 'knas.db'}"}
        env.pop("KNAS_PLUGINS", None)
        subprocess.run([knas, "db", "upgrade"], env=env, cwd=folder, check=True, capture_output=True)
        seeded = subprocess.run([python, "-c", SEED_ROWS], env=env, cwd=folder, check=True,
                                capture_output=True, text=True)
        done, queued = seeded.stdout.split()
        cases: list[tuple[str, list[str], bool]] = [  # (label, command line, under the goal?)
            ("python -c pass (floor)", [python, "-c", "pass"], False),
            ("import sqlalchemy.orm (floor)", [python, "-c", "import sqlalchemy.orm"], False),
            ("knas --help", ["--help"], True),
            ("knas --version", ["--version"], True),
            ("knas status --help", ["status", "--help"], True),
            (f"knas status {done} (done)", ["status", done], True),
            ("knas status 999 (unknown)", ["status", "999"], True),
            (f"knas cancel {done} (done)", ["cancel", done], True),
            ("knas cancel 999 (unknown)", ["cancel", "999"], True),
            (f"knas status {queued} (queued)", ["status", queued], False),
            ("knas score --help", ["score", "--help"], False),
        ]
        load_before = os.getloadavg()
        print(f"# knas: {knas}")
        print(f"# python {platform.python_version()}, torch {torch_version()}, {os.cpu_count()} CPUs, "
              f"{args.repeat} runs each; load average {' '.join(f'{x:.2f}' for x in load_before)}")
        print(f"{'command':<30} {'exit':>4} {'CPU s':>7} {'wall s':>7}  goal (< {GOAL_CPU_S} s CPU)")
        over = 0
        for label, cmd, goal in cases:
            line = cmd if cmd[0] == python else [knas, *cmd]
            runs = [measure(line, env, folder) for _ in range(args.repeat)]
            cpu = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            verdict = ("ok" if cpu < GOAL_CPU_S else "OVER") if goal else "-"
            over += goal and cpu >= GOAL_CPU_S
            print(f"{label:<30} {runs[-1][2]:>4} {cpu:>7.3f} {wall:>7.3f}  {verdict}", flush=True)
        print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
