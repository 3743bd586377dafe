"""The dashboard's main job, measured: ``knas up`` on an empty embedded store, then the New
search page's default search (the KNAS procedure with the synflow + eznas + params log-rank
ensemble, 100 architectures, CIFAR-10, top-10 by benchmark look-up) submitted through
``tasks.api`` exactly as the page does; prints the seconds from submit to done and the images
it scored on. Then the ranking queries on a search of all 15,625 architectures (seeded in the
same store) with their seconds: the whole ranking read once (the page caches it), then pages,
sorts and filters of it.

The data look-up is the product's: with ``KNAS_DATA_DIR`` unset the search scores on the
package data, as on a fresh install.

    python benchmarks/dashboard.py [--samples N] [--skip-search] [--skip-ranking]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def first_search(tmp: Path, samples: int | None) -> None:
    from app.views import newsearch
    from db.status import Status
    from tasks.api import search_progress, submit_search

    log = open(tmp / "knas-up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen([sys.executable, "-m", "knas_cli", "up", "--port", "8599"],
                          cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    try:
        worker_log = tmp / "knas-worker.log"
        while not (worker_log.exists() and " ready." in worker_log.read_text(errors="replace")):
            if up.poll() is not None:
                raise SystemExit(f"knas up exited: {(tmp / 'knas-up.log').read_text()[-2000:]}")
            time.sleep(0.5)
        values = newsearch.defaults()
        if samples:
            values["samples"] = samples
        [config], errors = newsearch.validate(values)
        assert not errors, errors
        start = time.perf_counter()
        search_id = submit_search(config)
        while (p := search_progress(search_id))["status"] not in Status.ENDED:
            time.sleep(1.0)
        seconds = time.perf_counter() - start
        best = p["best"] or {}
        proxies = ",".join(config.get("proxies") or [config["proxy"]])
        print(f"first search: {p['status']} in {seconds:.1f} s (submit to done): {config['samples']} archs, "
              f"proxies {proxies}, top-{config['topk']} by look-up; best index {best.get('index')}, "
              f"12-epoch valid {best.get('accuracy')}, test {best.get('test_acc')}, "
              f"percentile {best.get('percentile')}; images: {p.get('data_description')}", flush=True)
        print(f"# load average after the search: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=120)
        log.close()
        print(f"knas up stopped with status {up.returncode}", flush=True)


def big_ranking() -> None:
    from app.views import correlation, detail
    from app.views.detail import RankingFilter
    from db import repository as repo
    from db.session import session_scope
    from knas_core.groundtruth import GroundTruth

    truth = GroundTruth.load()
    t = time.perf_counter()
    rng = random.Random(0)
    with session_scope() as s:
        repo.load_ground_truth(s, truth)
        pairs = [(a, int(i)) for i, a in zip(truth.frame.index, truth.frame["arch"])]
        ids = repo.ensure_architectures(s, "nb201", pairs)
        config = {"name": "all 15625", "samples": 15625, "topk": 10, "proxy": "synflow"}
        search = repo.create_search(s, config)
        repo.add_candidates(s, search.id, list(ids.values()))
        key = repo.ScoreKey("synflow", "cifar10", 64, 0, "cpu", "C=16,N=5")
        rows = [{"architecture_id": a, "proxy": key.proxy, "dataset": key.dataset, "batch_size": 64,
                 "seed": 0, "device_type": "cpu", "model": key.model, "value": rng.random(), "seconds": 0.0}
                for a in ids.values()]
        from db.models import ProxyScore, SearchCandidate

        for start in range(0, len(rows), 2000):
            repo.insert_ignore(s, ProxyScore, rows[start:start + 2000])
        s.query(SearchCandidate).filter(SearchCandidate.search_id == search.id).update(
            {SearchCandidate.score: SearchCandidate.position * 1.0,
             SearchCandidate.rank: SearchCandidate.position + 1})
        sid = search.id
    print(f"seeded 15,625 candidates and scores in {time.perf_counter() - t:.1f} s", flush=True)
    table = detail.ranking_table(sid)
    for label, call in [
        ("whole ranking read (the page caches it: 5 s live, 1 h ended)", lambda: detail.ranking_table(sid)),
        ("ranking page 1 (50 rows) of the read ranking", lambda: detail.select_rows(table)),
        ("ranking page 300, sorted by score desc", lambda: detail.select_rows(table, sort="score",
                                                                              descending=True, page=300)),
        ("ranking filtered: nor_conv_3x3 + skip, score range", lambda: detail.select_rows(
            table, RankingFilter(ops=("nor_conv_3x3", "skip_connect"), score_min=1000, score_max=9000))),
        ("full export (every row)", lambda: detail.select_rows(table, page_size=None)),
        ("correlation scatter rows (15,625)", lambda: correlation.scatter_rows("synflow", "cifar10")),
        ("statistics of every proxy x dataset", lambda: correlation.statistics_rows()),
    ]:
        t = time.perf_counter()
        out = call()
        n = (out[1] if isinstance(out[1], int) else len(out[0])) if isinstance(out, tuple) else \
            len(out.rows) if isinstance(out, detail.RankingTable) else len(out)
        print(f"{label}: {time.perf_counter() - t:.3f} s ({n} rows)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None,
                        help="override the form's default sample size")
    parser.add_argument("--skip-search", action="store_true", help="only the 15,625-architecture queries")
    parser.add_argument("--skip-ranking", action="store_true", help="only the first search")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop `knas up` too when killed
    tmp = Path(tempfile.mkdtemp(prefix="knas-dash-"))
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    os.environ.update({"KNAS_DATABASE_URL": f"sqlite:///{tmp / 'knas.db'}",
                       "KNAS_STATE_DIR": str(tmp / ".knas"), "PYTHONPATH": path})
    sys.path.insert(0, str(ROOT))
    import torch

    print(f"# machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}; "
          f"store {tmp}; KNAS_DATA_DIR={os.environ.get('KNAS_DATA_DIR', '(unset)')}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if not args.skip_search:
        first_search(tmp, args.samples)
    else:
        from db.migrate import upgrade

        upgrade()
    if not args.skip_ranking:
        big_ranking()


if __name__ == "__main__":
    main()
