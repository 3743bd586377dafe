"""Faults against real worker processes: what a search loses, duplicates or waits for.

Every scenario starts real ``knas worker`` processes (the CLI of this checkout) on a fresh store
and broker, injects one fault, and waits (up to ``--deadline`` seconds) for its searches to end:

* ``embedded``: SQLite store + SQLite broker in a temporary folder (no server);
* ``scaled``: PostgreSQL (a fresh database per scenario, dropped after) + Redis (one database,
  emptied per scenario).

Faults (``--faults``, default all):

1. ``kill-restart``: SIGKILL of the only worker mid-chunk, then a new worker (recovery on start);
2. ``kill-one-of-two``: SIGKILL of one of two workers mid-chunk while the other lives (recovery
   by the survivor's lease sweeper, ``KNAS_SWEEP_SECONDS`` = 1);
3. ``poison``: an architecture whose proxy kills its process every time: it fails after
   ``KNAS_MAX_ATTEMPTS`` (2) deliveries and the others are scored;
4. ``cancel``: cancel a search of 60 one-architecture chunks, then submit a small search;
5. ``transient``: a proxy that runs out of memory fails a search; the same config again scores
   every architecture again (its failure rows were no cache entries);
6. ``kill-training``: SIGKILL mid-training (eval train, 2 epochs, 64 images) after the first
   epoch's checkpoint, then a new worker: the run resumes and ends with 2 epochs.

Columns: ``lost`` = candidates of a search that did not end cancelled without a score row for
the search's score key at the end; ``duplicated`` = score rows beyond one per (architecture,
key), plus candidates listed twice in a search (plus training epochs recorded twice);
``stalled`` = some search had not ended ``--deadline`` seconds after the fault; ``recover s`` =
seconds from the fault to the last search's end (for ``cancel`` from the cancel to the small
search's end, including its ``knas submit``; for ``transient`` from the second submit; for
``poison`` from the submit). Networks are small (C=4..8, N=1, batch 16) so that the whole run
takes about 7 minutes on 2 cores::

    .venv/bin/python benchmarks/chaos.py [--setups embedded,scaled] [--faults poison,cancel] \\
        [--out rows.jsonl]

Needs PostgreSQL and Redis on loopback for ``scaled`` (``--pg-url``, ``--redis-url``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the fault plugin lives in tests/plugins
    sys.path.insert(0, str(ROOT))
PLUGIN = "tests.plugins.faulty"
os.environ.setdefault("KNAS_PLUGINS", PLUGIN)
SHARED_DATA = ROOT.parent / "shared" / "data"
if "KNAS_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():  # as the tests do
    os.environ["KNAS_DATA_DIR"] = str(SHARED_DATA)

import torch  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from db import repository as repo  # noqa: E402
from db.models import ProxyScore, Search, SearchCandidate, TrainingRun, as_utc  # noqa: E402
from db.session import session_scope  # noqa: E402
from db.status import Status, TrainingStatus  # noqa: E402
from knas_core.groundtruth import canonical_dataset  # noqa: E402
from knas_core.plugins import load_plugins  # noqa: E402
from knas_core.proxies import get_proxy  # noqa: E402

load_plugins()

KNAS = str(Path(sys.executable).with_name("knas"))
SMALL: dict[str, Any] = {"batch_size": 16, "device": "cpu", "topk": 1, "model": {"C": 4, "N": 1}}
POISON = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
GOOD = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"]
FAULTS = ["kill-restart", "kill-one-of-two", "poison", "cancel", "transient", "kill-training"]
SETUPS = ["embedded", "scaled"]


class Fault(Exception):
    """The fault could not be injected as planned (e.g. the work finished before the kill)."""


# --- one deployment --------------------------------------------------------------------------------

class Stack:
    """Store, broker, state folder and worker processes of one scenario."""

    def __init__(self, tmp: Path, db_url: str, broker: str | None, deadline: float) -> None:
        self.tmp, self.db_url, self.deadline = tmp, db_url, deadline
        self.env = {**os.environ, "KNAS_DATABASE_URL": db_url, "KNAS_STATE_DIR": str(tmp / "state"),
                    "PYTHONPATH": str(ROOT), "KNAS_PLUGINS": PLUGIN, "KNAS_VISIBILITY_TIMEOUT": "30",
                    "KNAS_SWEEP_SECONDS": "1"}
        for name in ("KNAS_BROKER_URL", "KNAS_RESULT_BACKEND"):
            self.env.pop(name, None)
        if broker:
            self.env["KNAS_BROKER_URL"] = self.env["KNAS_RESULT_BACKEND"] = broker
        self.workers: dict[str, subprocess.Popen] = {}
        self.searches: list[int] = []
        self.knas("db", "upgrade")  # workers never migrate: a deployment runs this first

    def knas(self, *args: str) -> str:
        proc = subprocess.run([KNAS, *args], capture_output=True, text=True, timeout=120, env=self.env,
                              cwd=self.tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"knas {' '.join(args)}: {proc.stderr.strip()[-500:]}")
        return proc.stdout

    def start(self, name: str, wait: bool = True) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - the process owns it
        proc = subprocess.Popen([KNAS, "worker", "--name", f"{name}@chaos", "--loglevel", "info"],
                                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.tmp,
                                start_new_session=True)
        log.close()
        self.workers[name] = proc
        if wait:
            self.wait_for(lambda: "ready." in self.log(name), 120, f"worker {name} ready")
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> float:
        """SIGKILL the worker's process group (main process and pool child); returns when."""
        proc = self.workers[name]
        os.killpg(proc.pid, signal.SIGKILL)
        at = time.monotonic()
        proc.wait(timeout=30)
        return at

    def close(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def submit(self, config: dict[str, Any]) -> int:
        path = self.tmp / f"search-{len(self.searches)}.yaml"
        path.write_text(yaml.safe_dump(config))
        search_id = json.loads(self.knas("submit", str(path), "--json"))["id"]
        self.searches.append(search_id)
        return search_id

    def search(self, search_id: int) -> dict[str, Any]:
        with session_scope(self.db_url) as s:
            row = s.get(Search, search_id)
            return {"status": row.status, "scored": row.scored, "failed": row.failed, "total": row.total}

    @staticmethod
    def wait_for(check: Callable[[], bool], timeout: float, what: str) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return True
            except Exception:  # noqa: BLE001 - e.g. tables not created yet
                pass
            time.sleep(0.2)
        raise Fault(f"timed out waiting for {what}")

    def ended(self, ids: list[int] | None = None) -> bool:
        return all(self.search(i)["status"] in Status.ENDED for i in (ids or self.searches))

    def await_end(self, since: float, ids: list[int] | None = None) -> tuple[bool, float | None]:
        """(stalled, seconds from ``since`` to the end of every search) within the deadline."""
        end = since + self.deadline
        while time.monotonic() < end:
            try:
                if self.ended(ids):
                    return False, time.monotonic() - since
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.2)
        return True, None


def chunks_in_progress(log: str) -> int:
    """score_chunk tasks a worker's log shows received but not yet finished."""
    lines = [ln for ln in log.splitlines() if "knas.score_chunk[" in ln]
    return (sum("received" in ln for ln in lines)
            - sum(("succeeded" in ln) or ("raised" in ln) or ("failed" in ln) for ln in lines))


# --- the store: rows per search ----------------------------------------------------------------------

def search_key(search: Search) -> repo.ScoreKey:
    cfg = search.config
    proxy = cfg.get("proxy", "knas")
    model = cfg.get("model", {})
    return repo.ScoreKey(proxy, canonical_dataset(cfg.get("dataset", "cifar10")),
                         get_proxy(proxy).batch_size or cfg.get("batch_size", 64), cfg.get("seed", 0),
                         cfg.get("device", "cpu"), f"C={model.get('C', 16)},N={model.get('N', 5)}",
                         search.data_id or "")


def tally(stack: Stack) -> dict[str, int]:
    """Architectures, lost and duplicated over the scenario's searches."""
    archs = lost = duplicated = 0
    with session_scope(stack.db_url) as s:
        for search_id in stack.searches:
            search = s.get(Search, search_id)
            arch_ids = list(s.scalars(select(SearchCandidate.architecture_id)
                                      .where(SearchCandidate.search_id == search_id)))
            archs += len(set(arch_ids))
            duplicated += len(arch_ids) - len(set(arch_ids))
            if not arch_ids:
                continue
            key = search_key(search).as_filter()
            rows = dict(s.execute(select(ProxyScore.architecture_id, func.count())
                                  .where(ProxyScore.architecture_id.in_(arch_ids), key)
                                  .group_by(ProxyScore.architecture_id)).all())
            duplicated += sum(n - 1 for n in rows.values() if n > 1)
            if search.status != Status.CANCELLED:
                lost += sum(1 for a in set(arch_ids) if not rows.get(a))
    return {"architectures": archs, "lost": lost, "duplicated": duplicated}


# --- the faults ------------------------------------------------------------------------------------

def kill_restart(stack: Stack) -> dict[str, Any]:
    stack.env["KNAS_TEST_SLOW_SECONDS"] = "0.4"
    stack.start("doomed")
    sid = stack.submit({**SMALL, "proxy": "slow_proxy", "samples": 12, "chunk_size": 3})
    stack.wait_for(lambda: stack.search(sid)["scored"] >= 4 and chunks_in_progress(stack.log("doomed")) > 0,
                   120, "4 scores with a chunk in progress")
    at = stack.kill("doomed")
    before = stack.search(sid)["scored"]
    stack.start("rescuer", wait=False)
    stalled, seconds = stack.await_end(at)
    after = stack.search(sid)
    return {"stalled": stalled, "seconds": seconds,
            "outcome": f"killed at {before}/12 scored; {after['status']} {after['scored']}/12"}


def kill_one_of_two(stack: Stack) -> dict[str, Any]:
    stack.env["KNAS_TEST_SLOW_SECONDS"] = "0.5"
    for name in ("a", "b"):  # one after the other: the embedded broker creates its tables once
        stack.start(name)
    sid = stack.submit({**SMALL, "proxy": "slow_proxy", "samples": 12, "chunk_size": 3, "lease_seconds": 10})
    stack.wait_for(lambda: stack.search(sid)["scored"] >= 2 and chunks_in_progress(stack.log("b")) > 0,
                   120, "worker b mid-chunk")
    at = stack.kill("b")
    before = stack.search(sid)["scored"]
    stalled, seconds = stack.await_end(at)
    after = stack.search(sid)
    took = [sum("received" in ln for ln in stack.log(n).splitlines() if "knas.score_chunk[" in ln)
            for n in ("a", "b")]
    return {"stalled": stalled, "seconds": seconds,
            "outcome": f"b killed at {before}/12 scored (chunks a/b {took[0]}/{took[1]}); "
                       f"{after['status']} {after['scored']}/12 by a"}


def poison(stack: Stack) -> dict[str, Any]:
    from knas_core.spaces import get_space

    space = get_space("nb201")
    params = sum(p.numel() for p in space.build_model(POISON, 10, C=4, N=1).parameters())
    stack.env.update(KNAS_MAX_ATTEMPTS="2", KNAS_TEST_POISON_PARAMS=str(params))
    stack.start("w")
    at = time.monotonic()
    sid = stack.submit({**SMALL, "proxy": "poison_proxy", "archs": [GOOD[0], POISON, GOOD[1], GOOD[2]],
                        "chunk_size": 2, "lease_seconds": 10})
    stalled, seconds = stack.await_end(at)
    with session_scope(stack.db_url) as s:
        cands = s.scalars(select(SearchCandidate).where(SearchCandidate.search_id == sid)).all()
        attempts = {c.architecture.arch: c.attempts for c in cands}
        search = s.get(Search, sid)
        errors = {r.architecture_id: r.error for r in s.scalars(
            select(ProxyScore).where(search_key(search).as_filter()))}
        poisoned = next((c.architecture_id for c in cands if c.architecture.arch == POISON), None)
    after = stack.search(sid)
    return {"stalled": stalled, "seconds": seconds,
            "outcome": f"{after['status']}, {after['scored'] - after['failed']} scored, "
                       f"{after['failed']} failed after {attempts.get(POISON)} attempts "
                       f"({errors.get(poisoned)})"}


def cancel(stack: Stack) -> dict[str, Any]:
    stack.start("w")
    big = stack.submit({**SMALL, "samples": 60, "chunk_size": 1})
    stack.wait_for(lambda: stack.search(big)["scored"] >= 3, 120, "3 scores of the large search")
    stack.knas("cancel", str(big))
    at = time.monotonic()
    small = stack.submit({**SMALL, "samples": 6, "chunk_size": 3, "seed": 1})
    stalled, seconds = stack.await_end(at)
    time.sleep(2)  # anything still scored for the cancelled search would show now
    b, s = stack.search(big), stack.search(small)
    return {"stalled": stalled, "seconds": seconds,
            "outcome": f"large {b['status']} at {b['scored']}/60; small {s['status']} {s['scored']}/6"}


def transient(stack: Stack) -> dict[str, Any]:
    stack.start("w")
    config = {**SMALL, "proxy": "oom_proxy", "samples": 4, "chunk_size": 2}
    first = stack.submit(config)
    stalled, _ = stack.await_end(time.monotonic(), [first])
    def rows() -> list[tuple[bool, datetime]]:  # (transient, created_at); SQLite re-uses deleted ids
        with session_scope(stack.db_url) as s:
            return [(r.transient, as_utc(r.created_at))
                    for r in s.scalars(select(ProxyScore).where(ProxyScore.proxy == "oom_proxy"))]

    old = rows()
    at = time.monotonic()
    second = stack.submit(config)
    stalled2, seconds = stack.await_end(at, [second])
    last = max((c for _, c in old), default=None)
    again = [r for r in rows() if last is None or r[1] > last]
    a, b = stack.search(first), stack.search(second)
    return {"stalled": stalled or stalled2, "seconds": seconds,
            "outcome": f"1st {a['status']} ({sum(t for t, _ in old)}/{len(old)} rows transient); "
                       f"2nd {b['status']}, {len(again)}/4 tried again"}


def kill_training(stack: Stack) -> dict[str, Any]:
    stack.start("doomed")
    sid = stack.submit({**SMALL, "samples": 6, "chunk_size": 3, "eval": "train", "epochs": 2,
                        "train_subset": 64})

    def one_epoch() -> bool:
        with session_scope(stack.db_url) as s:
            runs = s.scalars(select(TrainingRun)).all()
            if runs and runs[0].status == TrainingStatus.DONE:
                raise Fault("training finished before the kill")
            return bool(runs) and len(runs[0].history) >= 1

    deadline = time.monotonic() + 180
    while not one_epoch():
        if time.monotonic() > deadline:
            raise Fault("no training epoch within 180 s")
        time.sleep(0.1)
    at = stack.kill("doomed")
    stack.start("rescuer", wait=False)
    stalled, seconds = stack.await_end(at)
    with session_scope(stack.db_url) as s:
        runs = s.scalars(select(TrainingRun)).all()
        epochs = [len(r.history) for r in runs]
        status = [r.status for r in runs]
    extra = sum(max(0, n - 2) for n in epochs)
    return {"stalled": stalled, "seconds": seconds, "extra_duplicated": extra,
            "outcome": f"killed after epoch 1; {stack.search(sid)['status']}, training runs {status} "
                       f"with {epochs} epochs"}


SCENARIOS: dict[str, Callable[[Stack], dict[str, Any]]] = {
    "kill-restart": kill_restart, "kill-one-of-two": kill_one_of_two, "poison": poison, "cancel": cancel,
    "transient": transient, "kill-training": kill_training}


# --- set-ups ---------------------------------------------------------------------------------------

@contextmanager
def deployment(setup: str, args: argparse.Namespace) -> Iterator[Stack]:
    tmp = Path(tempfile.mkdtemp(prefix=f"knas-chaos-{setup}-"))
    stack: Stack | None = None
    try:
        if setup == "embedded":
            stack = Stack(tmp, f"sqlite:///{tmp / 'knas.db'}", None, args.deadline)
            yield stack
        else:
            import redis

            redis.Redis.from_url(args.redis_url, socket_connect_timeout=2).flushdb()
            admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            name = f"knas_chaos_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
            try:
                stack = Stack(tmp, url, args.redis_url, args.deadline)
                yield stack
            finally:
                if stack is not None:
                    stack.close()
                from db.session import dispose_engine

                dispose_engine(url)
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    finally:
        if stack is not None:
            stack.close()
        if args.keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_one(setup: str, fault: str, args: argparse.Namespace) -> dict[str, Any]:
    row: dict[str, Any] = {"setup": setup, "fault": fault}
    start = time.monotonic()
    with deployment(setup, args) as stack:
        try:
            result = SCENARIOS[fault](stack)
        except Fault as exc:
            result = {"stalled": None, "seconds": None, "outcome": f"fault not injected: {exc}"}
        counts = tally(stack) if stack.searches else {"architectures": 0, "lost": 0, "duplicated": 0}
        counts["duplicated"] += result.pop("extra_duplicated", 0)
        row.update(searches=len(stack.searches), **counts, stalled=result["stalled"],
                   seconds=None if result["seconds"] is None else round(result["seconds"], 1),
                   outcome=result["outcome"], wall=round(time.monotonic() - start, 1))
        if args.keep:
            print(f"  logs in {stack.tmp}", file=sys.stderr)
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| set-up | fault | searches | architectures | lost | duplicated | stalled | recover s "
             "| outcome |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        stalled = "-" if r["stalled"] is None else ("yes" if r["stalled"] else "no")
        seconds = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"| {r['setup']} | {r['fault']} | {r['searches']} | {r['architectures']} "
                     f"| {r['lost']} | {r['duplicated']} | {stalled} | {seconds} | {r['outcome']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated: {', '.join(SETUPS)}")
    ap.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated: {', '.join(FAULTS)}")
    ap.add_argument("--deadline", type=float, default=120.0,
                    help="seconds after the fault within which every search must end")
    ap.add_argument("--pg-url", default=os.environ.get(
        "KNAS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/12",
                    help="a Redis database to empty and use")
    ap.add_argument("--out", default=None, help="also write the rows here (JSON lines)")
    ap.add_argument("--keep", action="store_true", help="keep each scenario's folder (worker logs)")
    args = ap.parse_args()
    setups, faults = args.setups.split(","), args.faults.split(",")
    unknown = [s for s in setups if s not in SETUPS] + [f for f in faults if f not in FAULTS]
    if unknown:
        ap.error(f"unknown set-up or fault: {', '.join(unknown)}")

    load = os.getloadavg()
    print(f"# torch {torch.__version__}, {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; "
          f"deadline {args.deadline:.0f} s", flush=True)
    rows = []
    out = open(args.out, "w") if args.out else None  # noqa: SIM115
    try:
        for setup in setups:
            for fault in faults:
                row = run_one(setup, fault, args)
                rows.append(row)
                print(f"  {setup} {fault}: {row['outcome']} ({row['wall']:.0f} s)", file=sys.stderr,
                      flush=True)
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
    finally:
        if out:
            out.close()
    print(markdown(rows))


if __name__ == "__main__":
    main()
