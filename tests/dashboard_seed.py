"""A small seeded store for the dashboard tests, written through :mod:`db.repository` only:
12 benchmark architectures with their accuracies, three proxies' scores on CIFAR-10, one
finished KNAS search (top-3 evaluated, one trained) and one running search."""

from __future__ import annotations

from typing import Any

from db import repository as repo
from db.migrate import upgrade
from db.session import session_scope
from knas_core.groundtruth import GroundTruth

INDICES = list(range(0, 1200, 100))  # 12 official indices
SETUP = {"dataset": "cifar10", "batch_size": 64, "seed": 0, "device_type": "cpu", "model": "C=16,N=5"}
CONFIG = {"name": "seeded", "space": "nb201", "strategy": "knas", "dataset": "cifar10", "proxy": "synflow",
          "samples": 12, "topk": 3, "eval": "lookup", "seed": 0, "device": "cpu"}


def seed(url: str, truth: GroundTruth) -> dict[str, int]:
    """Fill the (migrated) database at ``url``; returns the ids the tests look for."""
    upgrade(url)
    frame = truth.frame.loc[INDICES]
    acc = truth.accuracy("cifar10", "test").loc[INDICES]
    with session_scope(url) as s:
        repo.load_ground_truth(s, truth, "nb201", INDICES)
        ids = repo.ensure_architectures(s, "nb201", [(a, int(i)) for i, a in zip(frame.index, frame["arch"])])
        arch_ids = [ids[a] for a in frame["arch"]]
        # synflow tracks accuracy exactly (rank 1 = best); params reversed; snip rank-shuffled
        for k, (arch_id, value) in enumerate(zip(arch_ids, acc)):
            repo.save_score(s, arch_id, repo.ScoreKey("synflow", **SETUP), float(value) * 10, None, 0.1)
            repo.save_score(s, arch_id, repo.ScoreKey("params", **SETUP), -float(value), None, 0.01)
            repo.save_score(s, arch_id, repo.ScoreKey("snip", **SETUP), float((k * 7) % 12) + 1.0, None, 0.1)
        done = repo.create_search(s, CONFIG)
        repo.add_candidates(s, done.id, arch_ids)
        order = sorted(range(len(arch_ids)), key=lambda k: -acc.iloc[k])
        for rank, k in enumerate(order, start=1):
            cand = next(c for c in repo.candidates(s, done.id) if c.architecture_id == arch_ids[k])
            cand.score, cand.rank, cand.stage = float(acc.iloc[k]) * 10, rank, "scored"
            if rank <= 3:
                cand.accuracy = repo.benchmark_accuracy(s, arch_ids[k], "cifar10", "valid_12ep")
                cand.stage, cand.eval_source = "evaluated", "lookup"
        best_k = order[0]
        run = repo.get_or_create_training_run(s, arch_ids[best_k], "cifar10", 2, 0, "test", "cpu")
        run.status, run.final_test_acc = "done", 61.0
        run.history = [{"epoch": 1, "train_loss": 2.0, "train_acc": 30.0, "test_loss": 1.8, "test_acc": 40.0},
                       {"epoch": 2, "train_loss": 1.5, "train_acc": 50.0, "test_loss": 1.2, "test_acc": 61.0}]
        cand = next(c for c in repo.candidates(s, done.id) if c.architecture_id == arch_ids[best_k])
        cand.training_run_id = run.id
        repo.set_stage(s, done, "evaluate", total=12, scored=12, evaluated=3)
        done.finish("done", result={
            "arch": frame["arch"].iloc[best_k], "index": int(frame.index[best_k]), "score": cand.score,
            "rank": 1, "accuracy": cand.accuracy, "eval": "lookup",
            "test_acc": {"cifar10": float(acc.iloc[best_k])},
            "percentile": 90.0})
        running = repo.create_search(s, {**CONFIG, "name": "running"})
        repo.add_candidates(s, running.id, arch_ids[:6])
        repo.set_stage(s, running, "score", total=6, scored=2)
        return {"done": done.id, "running": running.id, "best_index": int(frame.index[best_k]),
                "best_arch_id": arch_ids[best_k]}



#: The images of the live store's searches (a made-up identity: only keys compare it).
LIVE_DATA = "npz:seeded-live:0123456789ab"
#: The live store's ensemble search: synflow, snip and params; at 4 of 8 scored.
ENSEMBLE = ("synflow", "snip", "params")


def seed_live(url: str, truth: GroundTruth) -> dict[str, Any]:
    """Searches caught in the middle, written through :mod:`db.repository` under the workers' own
    score keys (:func:`tasks.search.score_key`); scoring started 100 s before seeding:

    * ``ensemble``: proxies :data:`ENSEMBLE`, 8 candidates, running in the score stage; every
      proxy has scored candidates 0-3 (params failed on 3), synflow also 4 and 5, nobody 6 and 7;
      synflow's values are around 1e36 (products of weights). Candidates 0 and 1 were cache hits
      (stored an hour before the search started), 2-5 were scored since;
    * ``single``: synflow only (seed 1: its own score key), 3 of 8 scored, running;
    * ``cancelled``: cancelled in the score stage with 3 of 8 scored;
    * ``failed``: failed before it recorded a stage (its stage is still ``queued``).

    Returns the ids, ``started`` and ``values[search][proxy][architecture_id]``."""
    from datetime import timedelta

    from db.models import utcnow
    from db.status import Status
    from tasks.schema import load_config
    from tasks.search import score_key

    upgrade(url)
    frame = truth.frame.loc[INDICES[:8]]
    started = utcnow() - timedelta(seconds=100)
    values: dict[str, dict[str, dict[int, float | None]]] = {}
    out: dict[str, Any] = {"started": started, "values": values}
    with session_scope(url) as s:
        repo.load_ground_truth(s, truth, "nb201", INDICES[:8])
        ids = repo.ensure_architectures(s, "nb201", [(a, int(i)) for i, a in zip(frame.index, frame["arch"])])
        arch_ids = [ids[a] for a in frame["arch"]]
        out["arch_ids"] = arch_ids

        def search(name: str, config: dict[str, Any], scored: int) -> Any:
            row = repo.create_search(s, {**CONFIG, "name": name, "samples": 8, "topk": 2, **config})
            repo.add_candidates(s, row.id, arch_ids)
            repo.set_stage(s, row, "score", total=8, scored=scored, score_started_at=started)
            row.data_id = LIVE_DATA
            out[name] = row.id
            return row

        def save(name: str, config: dict[str, Any], proxy: str, k: int, value: float | None,
                 error: str | None = None, cache_hit: bool = False) -> None:
            key = score_key(load_config({**CONFIG, **config}), "cpu", LIVE_DATA, proxy)
            stored = repo.save_score(s, arch_ids[k], key, value, error, 0.1)
            stored.created_at = started - timedelta(hours=1) if cache_hit else started + timedelta(seconds=k)
            values.setdefault(name, {}).setdefault(proxy, {})[arch_ids[k]] = value

        ensemble = {"proxies": list(ENSEMBLE)}
        search("ensemble", ensemble, 4)
        for k in range(4):
            save("ensemble", ensemble, "synflow", k, (1.0 + 0.1 * k) * 1e36, cache_hit=k < 2)
            save("ensemble", ensemble, "snip", k, [3.0, 1.0, 4.0, 2.0][k], cache_hit=k < 2)
            save("ensemble", ensemble, "params", k, None if k == 3 else [0.5, 0.9, 0.1][k],
                 "out of memory: seeded" if k == 3 else None, cache_hit=k < 2)
        save("ensemble", ensemble, "synflow", 4, 2.5e36)
        save("ensemble", ensemble, "synflow", 5, 0.5e36)
        single = {"proxy": "synflow", "seed": 1}
        search("single", single, 3)
        for k, value in enumerate([1662.4216, 1410.8136, 1.2345678e36]):
            save("single", single, "synflow", k, value)
        search("cancelled", {"seed": 2}, 3).finish(Status.CANCELLED)
        failed = repo.create_search(s, {**CONFIG, "name": "failed", "seed": 3})
        failed.finish(Status.FAILED, error="FileNotFoundError: seeded")
        out["failed"] = failed.id
    return out
