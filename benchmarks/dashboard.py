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
from collections.abc import Callable
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


#: The atlas's proxies (benchmarks/atlas.py) and the set-up of its scores.
ATLAS_PROXIES = ("synflow", "params", "flops", "eznas", "naswot")
ATLAS_DATA = "npz:cifar10_scoring_2k500-train:6468a266f5e4"


def seed_atlas_scale(url: str) -> int:
    """A full-size store: the benchmark table, 15,625 architectures x :data:`ATLAS_PROXIES` of
    made-up scores (the timings do not depend on the values) on the atlas's set-up, imported as a
    generated atlas file where this checkout has ``knas atlas import`` (else inserted directly),
    and a finished search of all 15,625 with its ranking. Returns the search's id."""
    import numpy as np

    from db import repository as repo
    from db.migrate import upgrade
    from db.models import ProxyScore, SearchCandidate
    from db.session import session_scope
    from db.status import SearchStage, Status
    from knas_core.groundtruth import GroundTruth

    upgrade(url)
    truth = GroundTruth.load()
    rng = np.random.default_rng(0)
    values = {p: rng.lognormal(3.0, 2.0, len(truth.frame)) for p in ATLAS_PROXIES}
    t = time.perf_counter()
    try:
        from db.atlas import import_atlas
        from knas_core.atlas import AtlasRow, Setup, read_atlas, write_atlas
    except ImportError:
        import_atlas = None
    if import_atlas is not None:
        path = Path(tempfile.mkdtemp(prefix="knas-atlas-")) / "synthetic_atlas.csv.gz"
        write_atlas([AtlasRow("nb201", int(i), p, float(values[p][k]), None,
                              Setup("cifar10", ATLAS_DATA, 16 if p == "eznas" else 64, 0, "cpu", "C=16,N=5",
                                    "2.14.1"))
                     for p in ATLAS_PROXIES for k, i in enumerate(truth.frame.index)], path)
        atlas = read_atlas(path)
        with session_scope(url) as s:
            report = import_atlas(s, atlas)
        how = (f"imported a generated atlas file ({path.stat().st_size / 2**20:.2f} MB, "
               f"{report.inserted} rows)")
    else:
        with session_scope(url) as s:
            repo.load_ground_truth(s, truth)
            ids = repo.ensure_architectures(s, "nb201", [(a, int(i)) for i, a in
                                                         zip(truth.frame.index, truth.frame["arch"])])
            rows = [{"architecture_id": ids[a], "proxy": p, "dataset": "cifar10", "data": ATLAS_DATA,
                     "batch_size": 16 if p == "eznas" else 64, "seed": 0, "device_type": "cpu",
                     "model": "C=16,N=5", "value": float(values[p][k]), "seconds": 0.0}
                    for p in ATLAS_PROXIES for k, a in enumerate(truth.frame["arch"])]
            repo.insert_ignore(s, ProxyScore, rows)
        how = "inserted directly (this checkout has no atlas import)"
    seconds = time.perf_counter() - t
    print(f"seeded 15,625 x {len(ATLAS_PROXIES)} scores in {seconds:.1f} s: {how}", flush=True)
    with session_scope(url) as s:
        ids = repo.ensure_architectures(s, "nb201", [(a, int(i)) for i, a in
                                                     zip(truth.frame.index, truth.frame["arch"])])
        search = repo.create_search(s, {"name": "all 15625", "samples": 15625, "topk": 10,
                                        "proxy": "synflow"})
        repo.add_candidates(s, search.id, list(ids.values()))
        s.query(SearchCandidate).filter(SearchCandidate.search_id == search.id).update(
            {SearchCandidate.score: SearchCandidate.position * 1.0,
             SearchCandidate.rank: SearchCandidate.position + 1})
        search.status, search.stage = Status.DONE, SearchStage.DONE
        return search.id


def _timed(label: str, call: Callable[[], object]) -> float:
    t = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - t
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], int):
        n = f"{out[1]} rows"
    elif isinstance(out, bytes):
        n = f"{len(out) / 2**20:.1f} MB"
    else:
        n = f"{len(out)} rows" if hasattr(out, "__len__") else ""
    print(f"  {label}: {seconds:.3f} s ({n})", flush=True)
    return seconds


def atlas_scale() -> None:
    """The dashboard's data at atlas scale: every Correlation, Architecture, ranking and export
    function on the full-size store, called directly (cold: the first call in the process) and
    through the pages' cached wrappers (``app.ui``, twice: computing, then cached)."""
    import warnings

    from app import ui
    from app.views import architecture, correlation, detail
    from app.views.detail import RankingFilter
    from app.views.export import to_csv, to_json
    from db.session import database_url

    warnings.filterwarnings("ignore")  # st.cache_data outside a Streamlit run says so on every call
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    url = database_url()
    sid = seed_atlas_scale(url)
    proxy = ATLAS_PROXIES[0]
    table = detail.ranking_table(sid)
    every = lambda: detail.select_rows(table, page_size=None)  # noqa: E731
    direct = [
        ("catalogue of proxies x datasets", lambda: correlation.catalogue()),
        (f"correlation scatter rows ({proxy})", lambda: correlation.scatter_rows(proxy, "cifar10")),
        ("statistics of every proxy x dataset x set-up", lambda: correlation.statistics_rows()),
        ("proxy vs proxy matrix", lambda: correlation.proxy_matrix("cifar10")),
        ("architecture page (index 1462)", lambda: architecture.profile(architecture.lookup("1462")["id"])),
        ("whole ranking read (15,625 candidates)", lambda: detail.ranking_table(sid).rows),
        ("ranking page 1 (50 rows) of the read ranking", lambda: detail.select_rows(table)),
        ("ranking page 300, by score desc", lambda: detail.select_rows(table, sort="score", descending=True,
                                                                       page=300)),
        ("ranking filtered: nor_conv_3x3 + skip, score range", lambda: detail.select_rows(
            table, RankingFilter(ops=("nor_conv_3x3", "skip_connect"), score_min=1000, score_max=9000))),
        ("ranking export rows (every row)", every),
        ("ranking export CSV bytes", lambda: to_csv(every()[0])),
        ("ranking export JSON bytes", lambda: to_json(every()[0])),
    ]
    print("data functions, uncached (first call in this process):", flush=True)
    for label, call in direct:
        _timed(label, call)
    cached = [
        ("catalogue", lambda: ui.catalogue(url)),
        (f"scatter rows ({proxy})", lambda: ui.scatter_rows(url, proxy, "cifar10", "test")),
        ("statistics", lambda: ui.statistics_rows(url, "test")),
        ("proxy matrix", lambda: ui.proxy_matrix(url, "cifar10")),
        ("whole ranking", lambda: ui.ranking_table(sid, "done").rows),
    ]
    for round_ in ("computing", "cached"):
        print(f"the pages' cached wrappers ({round_}):", flush=True)
        for label, call in cached:
            _timed(label, call)
    pages(sid)
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def pages(search_id: int) -> None:
    """Whole page runs (script, figures, Streamlit's serialisation) through
    ``streamlit.testing.v1.AppTest``, as the dashboard serves them: each page twice, the second
    run with its data cached."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()  # the first run of each page computes its data
    main = str(ROOT / "app" / "main.py")
    for path, params in [("4_Correlation.py", {"proxy": ATLAS_PROXIES[0], "dataset": "cifar10"}),
                         ("5_Architecture.py", {"arch": "1462"}),
                         ("3_Search_detail.py", {"search": str(search_id)})]:
        at = AppTest.from_file(main, default_timeout=600)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        for round_ in ("computing", "cached"):
            t = time.perf_counter()
            at.switch_page(f"screens/{path}")
            at.run()
            problems = [e.value for e in at.exception]
            print(f"  page {path} ({round_}): {time.perf_counter() - t:.3f} s"
                  + (f" EXCEPTION {problems}" if problems else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None,
                        help="override the form's default sample size")
    parser.add_argument("--skip-search", action="store_true", help="only the 15,625-architecture queries")
    parser.add_argument("--skip-ranking", action="store_true", help="only the first search")
    parser.add_argument("--atlas-scale", action="store_true",
                        help="only the dashboard's data at atlas scale (15,625 architectures x 5 proxies)")
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
    if args.atlas_scale:
        atlas_scale()
        return
    if not args.skip_search:
        first_search(tmp, args.samples)
    else:
        from db.migrate import upgrade

        upgrade()
    if not args.skip_ranking:
        big_ranking()


if __name__ == "__main__":
    main()
