"""The score atlas: every NAS-Bench-201 architecture scored by the product's own queue and store.

One search (strategy ``knas``, all 15,625 architectures, the proxies below, CIFAR-10, seed 0,
batch 64, the benchmark networks C=16 N=5, on the images a fresh install scores with: the
shipped scoring set, so ``KNAS_DATA_DIR`` is unset) goes through ``knas submit`` to ``knas
worker`` processes on the embedded default (SQLite store, SQLite broker), in phases that stop
and start the workers, as a user pausing a long run would::

    .venv/bin/python benchmarks/atlas.py --state benchmarks/out/atlas \\
        [--one-seconds 300] [--two-seconds 0] [--compare 30]

1. ``one``: ``knas worker --concurrency 1`` (2 torch threads) for ``--one-seconds``, then
   SIGTERM (Celery's warm shutdown): architectures per second of one worker process.
2. ``inprocess``: ``knas score --indices`` on ``--compare`` architectures the workers scored,
   same set-up and threads, right after phase 1: its seconds per architecture against the
   worker's (the queue-and-store overhead), and whether its values equal the stored ones.
3. ``two``: ``knas worker --concurrency 2`` (1 thread each) until the search is done, or for
   ``--two-seconds`` when given (run the command again to go on: the store has everything).

``--rescore-last N`` on a finished atlas sets its last N architectures back to unscored and
runs phase 3 again: the queue-and-store overhead at full scale in minutes (docs/RESULTS.md)::

    .venv/bin/python benchmarks/atlas.py --state COPY_OF_STATE --rescore-last 1500

Every phase appends a record to ``STATE/atlas_runs.jsonl``; rerunning skips phases 1-2 when
recorded. At the end it checks what the store holds: one row per (architecture, proxy), none
lost or duplicated, and the database's size. Figures: docs/RESULTS.md, "Score atlas".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from db.status import CandidateStage, SearchStage, Status

ROOT = Path(__file__).resolve().parents[1]
KNAS = [sys.executable, "-m", "knas_cli"]
PROXIES = ["synflow", "params", "flops", "eznas", "naswot"]
SPACE_SIZE = 15_625


def atlas_config(proxies: list[str], samples: int, chunk: int) -> dict[str, Any]:
    """The atlas search: every architecture (a seeded permutation of the whole space), the
    benchmark set-up; top-10 looked up so that the search ends as any search does."""
    return {"name": f"score atlas: {','.join(proxies)}", "strategy": "knas", "dataset": "cifar10",
            "proxies": proxies, "samples": samples, "topk": 10, "batch_size": 64, "seed": 0,
            "device": "cpu", "chunk_size": chunk, "lease_seconds": 3600}


class Atlas:
    """The state folder of one atlas run: its store, broker, logs and records."""

    def __init__(self, state: Path) -> None:
        self.state = state.resolve()
        self.db = self.state / "knas.db"
        self.records = self.state / "atlas_runs.jsonl"
        self.env = {k: v for k, v in os.environ.items() if k != "KNAS_DATA_DIR"}
        # KNAS_ATLAS_IMPORT=0: the store starts empty (no packaged atlas), as the atlas is what it computes
        self.env.update(KNAS_DATABASE_URL=f"sqlite:///{self.db}", KNAS_STATE_DIR=str(self.state / "state"),
                        KNAS_ATLAS_IMPORT="0",
                        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))

    def knas(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*KNAS, *args], env={**self.env, **extra}, cwd=self.state,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"knas {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def record(self, **row: Any) -> None:
        with self.records.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    def recorded(self, phase: str) -> dict[str, Any] | None:
        if not self.records.exists():
            return None
        rows = [json.loads(line) for line in self.records.read_text().splitlines() if line.strip()]
        return next((r for r in reversed(rows) if r["phase"] == phase), None)

    def submit(self, config: dict[str, Any]) -> int:
        """The atlas search's id: submitted once, read back afterwards."""
        marker = self.state / "search_id"
        if marker.exists():
            return int(marker.read_text())
        self.state.mkdir(parents=True, exist_ok=True)
        self.knas("db", "upgrade")
        path = self.state / "atlas.json"
        path.write_text(json.dumps(config, indent=2))
        search_id = int(json.loads(self.knas("submit", "--json", str(path)).stdout)["id"])
        marker.write_text(str(search_id))
        return search_id

    def rescore_last(self, search_id: int, count: int) -> int:
        """Set the ended atlas search back to scoring its last ``count`` architectures (by
        sampling position), as if they had never been scored: their score rows are deleted,
        their candidates and the search reset, the broker's state folder emptied (its messages
        are of the finished search). What the queue and the store cost at full scale, measured
        again without an 80-minute run. Returns the rows deleted."""
        with sqlite3.connect(self.db) as con:
            total = int(con.execute("select count(*) from search_candidates where search_id = ?",
                                    (search_id,)).fetchone()[0])
            tail = "select architecture_id from search_candidates where search_id = ? and position >= ?"
            args = (search_id, total - count)
            gone = con.execute(f"delete from proxy_scores where architecture_id in ({tail})", args).rowcount
            con.execute("update search_candidates set stage = ?, score = NULL, rank = NULL, accuracy = NULL, "
                        "eval_source = NULL, claimed_at = NULL, claimed_by = NULL, attempts = 0 "
                        "where search_id = ? and position >= ?", (CandidateStage.SAMPLED.value, *args))
            con.execute("update search_candidates set stage = ?, score = NULL, rank = NULL, accuracy = NULL, "
                        "eval_source = NULL where search_id = ? and position < ?",
                        (CandidateStage.SCORED.value, *args))
            con.execute("update searches set status = ?, stage = ?, finished_at = NULL, result = NULL, "
                        "evaluated = 0, scored = ? where id = ?",
                        (Status.RUNNING.value, SearchStage.SCORE.value, total - count, search_id))
        shutil.rmtree(self.state / "state", ignore_errors=True)
        return gone

    def rows(self) -> int:
        """Score rows in the store (one per architecture and proxy)."""
        with sqlite3.connect(self.db) as con:
            return int(con.execute("select count(*) from proxy_scores").fetchone()[0])

    def status(self, search_id: int) -> str:
        """The search's status, read from the store (``knas status`` would import torch every
        poll, a cost on the cores the workers are measured on)."""
        with sqlite3.connect(self.db) as con:
            return str(con.execute("select status from searches where id = ?", (search_id,)).fetchone()[0])

    def run_workers(self, concurrency: int, seconds: float | None, search_id: int,
                    proxies: int) -> dict[str, Any]:
        """Run ``knas worker --concurrency N`` for ``seconds`` (None: until the search ends);
        the rate counts from the worker's first stored score to its stop request."""
        log = (self.state / f"worker-c{concurrency}.log").open("ab")
        proc = subprocess.Popen([*KNAS, "worker", "--concurrency", str(concurrency)], env=self.env,
                                cwd=self.state, stdout=log, stderr=subprocess.STDOUT)
        try:
            start_rows = self.rows()
            while self.rows() == start_rows and proc.poll() is None:
                time.sleep(0.5)  # start-up: imports, recovery of the claims of the last stop
            t0, rows0, id0 = time.monotonic(), self.rows(), self.last_id()
            while proc.poll() is None:
                time.sleep(5)
                elapsed = time.monotonic() - t0
                if seconds is not None and elapsed >= seconds:
                    break
                if self.status(search_id) in Status.ENDED:
                    break
            t1, rows1, id1 = time.monotonic(), self.rows(), self.last_id()
        finally:
            proc.send_signal(signal.SIGTERM)  # warm shutdown: the chunk in hand finishes or is redelivered
            proc.wait(timeout=600)
            log.close()
        archs = (rows1 - rows0) / proxies
        scoring = self.scoring_seconds(id0, id1)
        busy = (t1 - t0) * concurrency  # process-seconds the workers had
        return {"concurrency": concurrency, "seconds": round(t1 - t0, 1), "archs": archs,
                "archs_per_s": round(archs / (t1 - t0), 3),
                "scoring_s_per_arch": round(scoring / max(archs, 1), 3),
                "wall_s_per_arch_per_process": round(busy / max(archs, 1), 3),
                "overhead_pct": round(100 * (busy / scoring - 1), 1) if scoring else None,
                "rows_after_stop": self.rows()}

    def last_id(self) -> int:
        with sqlite3.connect(self.db) as con:
            return int(con.execute("select coalesce(max(id), 0) from proxy_scores").fetchone()[0])

    def scoring_seconds(self, after: int, upto: int) -> float:
        """Seconds the scorer itself spent on the rows stored in ``(after, upto]`` (each row
        holds its proxy's own time plus its share of the network build and shared passes)."""
        with sqlite3.connect(self.db) as con:
            return float(con.execute("select coalesce(sum(seconds), 0) from proxy_scores "
                                     "where id > ? and id <= ?", (after, upto)).fetchone()[0])

    def stored(self, proxies: list[str]) -> dict[int, dict[str, float | None]]:
        """``{index: {proxy: value}}`` of the architectures with every proxy stored."""
        out: dict[int, dict[str, float | None]] = {}
        with sqlite3.connect(self.db) as con:
            for index, proxy, value in con.execute(
                    "select a.\"index\", s.proxy, s.value from proxy_scores s join architectures a "
                    "on a.id = s.architecture_id"):
                out.setdefault(int(index), {})[proxy] = value
        return {i: v for i, v in out.items() if set(proxies) <= set(v)}

    def in_process(self, indices: list[int], proxies: list[str]) -> dict[str, Any]:
        """``knas score`` on the same architectures, same set-up, 2 threads (as one worker)."""
        out = self.state / "inprocess.jsonl"
        start = time.monotonic()
        self.knas("score", "--indices", ",".join(map(str, indices)), "--proxies", ",".join(proxies),
                  "--dataset", "cifar10", "--batch-size", "64", "--seed", "0", "--device", "cpu",
                  "--out", str(out), OMP_NUM_THREADS="2")
        seconds = time.monotonic() - start
        scored = [json.loads(line) for line in out.read_text().splitlines()]
        stored = self.stored(proxies)
        equal = sum(all(_same(r["scores"].get(p), stored[r["index"]][p]) for p in proxies) for r in scored)
        per_arch = sum(sum(r["seconds"].values()) for r in scored) / len(scored)
        return {"archs": len(scored), "wall_seconds": round(seconds, 1), "s_per_arch": round(per_arch, 3),
                "values_equal": equal}

    def check(self, search_id: int, proxies: list[str], samples: int) -> dict[str, Any]:
        """What the store holds after the run: lost and duplicated rows, the database's size."""
        with sqlite3.connect(self.db) as con:
            per_proxy = dict(con.execute("select proxy, count(*) from proxy_scores group by proxy"))
            distinct = con.execute("select count(*) from (select distinct architecture_id, proxy "
                                   "from proxy_scores)").fetchone()[0]
            rows = con.execute("select count(*) from proxy_scores").fetchone()[0]
            failed = con.execute("select count(*) from proxy_scores where error is not null").fetchone()[0]
            candidates = con.execute("select count(*), count(distinct architecture_id) "
                                     "from search_candidates where search_id = ?", (search_id,)).fetchone()
        expected = samples * len(proxies)
        return {"rows": rows, "expected_rows": expected, "lost": expected - distinct,
                "duplicated": rows - distinct, "failed": failed, "per_proxy": per_proxy,
                "candidates": candidates[0], "distinct_candidates": candidates[1],
                "db_mb": round(self.db.stat().st_size / 2**20, 1), "status": self.status(search_id)}


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", type=Path, default=ROOT / "benchmarks" / "out" / "atlas")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--samples", type=int, default=SPACE_SIZE, help="fewer for a trial run")
    ap.add_argument("--chunk", type=int, default=25)
    ap.add_argument("--one-seconds", type=float, default=300)
    ap.add_argument("--two-seconds", type=float, default=None, help="stop phase 3 after this long")
    ap.add_argument("--compare", type=int, default=30, help="architectures scored in-process too")
    ap.add_argument("--rescore-last", type=int, default=0, metavar="N",
                    help="a finished atlas: score its last N architectures again in phase 3 "
                         "(the overhead at full scale)")
    args = ap.parse_args(argv)
    proxies = args.proxies.split(",")
    atlas = Atlas(args.state)
    search_id = atlas.submit(atlas_config(proxies, args.samples, args.chunk))
    if args.rescore_last:
        if atlas.status(search_id) not in Status.ENDED:
            raise SystemExit(f"search {search_id} has not ended: --rescore-last needs a finished atlas")
        gone = atlas.rescore_last(search_id, args.rescore_last)
        print(f"rescoring the last {args.rescore_last} architectures: {gone} rows deleted", file=sys.stderr)
    if atlas.recorded("one") is None and args.one_seconds > 0:
        atlas.record(phase="one", **atlas.run_workers(1, args.one_seconds, search_id, len(proxies)))
    if atlas.recorded("inprocess") is None and args.compare > 0:
        indices = sorted(atlas.stored(proxies))[:args.compare]
        atlas.record(phase="inprocess", **atlas.in_process(indices, proxies))
    if atlas.status(search_id) not in Status.ENDED:
        atlas.record(phase="two", **atlas.run_workers(2, args.two_seconds, search_id, len(proxies)))
    status = atlas.status(search_id)
    if status in Status.ENDED:
        atlas.record(phase="check", **atlas.check(search_id, proxies, args.samples))
    else:
        print(f"search {search_id} is {status}: run the same command again to go on", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
