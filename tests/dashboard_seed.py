"""A small seeded store for the dashboard tests, written through :mod:`db.repository` only:
12 benchmark architectures with their accuracies, three proxies' scores on CIFAR-10, one
finished KNAS search (top-3 evaluated, one trained) and one running search; and, for the Proxy
lab, :func:`seed_discovery` (a finished discovery run with its program, through
:mod:`db.discovery`)."""

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


#: The program of the seeded discovery run and its per-generation rows
#: ``(generation, best train tau, mean train tau, held-out tau, best program)``.
FORMULA = "frob(sigmoid(logdet(sign(data_A_grad))))"
GENERATIONS = [(0, 0.21, -0.30, 0.18, "l1(data_Y)"), (1, 0.35, 0.02, 0.31, FORMULA)]


def seed_discovery(url: str, status: str = "done", name: str = "seeded run") -> int:
    """A discovery run in the (migrated) store at ``url`` with :data:`GENERATIONS`: finished with
    :data:`FORMULA` (``status="done"``), or still running at generation 1; returns its id."""
    from db import discovery

    with session_scope(url) as s:
        run = discovery.create_run(s, {"archs": 20, "heldout": 30, "generations": 2, "images": 2,
                                       "batch_size": 16}, name)
        discovery.set_stage(run, "evolve")
        for g, best, mean, held, formula in GENERATIONS:
            discovery.record_generation(s, run, {"generation": g, "best_fitness": best, "mean_fitness": mean,
                                                 "heldout_kendall": held, "best_formula": formula,
                                                 "nonfinite_blocks": 0, "seconds": 1.0})
        if status == "done":
            _, best, _, held, formula = GENERATIONS[-1]
            run.finish("done", result={"formula": formula, "train_kendall": best, "heldout_kendall": held})
        return run.id


#: Searches :func:`seed_comparison` adds: random search seeds (the indices each evaluates, in
#: order), and a second seed of the seeded KNAS search scoring the first 8 architectures only.
RANDOM_SEEDS = {0: INDICES[0:4], 1: INDICES[4:8], 2: INDICES[7:11]}
KNAS_SEED1 = INDICES[:8]


def seed_comparison(url: str, truth: GroundTruth) -> dict[str, list[int]]:
    """Add finished searches to a store :func:`seed` filled, as the workers leave them: three
    random-search seeds (strategy task: only the evaluated architectures, no scores) and a second
    seed of the KNAS search (every candidate scored, top-3 looked up). Returns their ids."""
    valid = truth.accuracy("cifar10", "valid_12ep")
    test = truth.accuracy("cifar10", "test")
    out: dict[str, list[int]] = {"random": [], "knas": []}
    with session_scope(url) as s:
        ids = repo.ensure_architectures(s, "nb201", [(truth.frame.at[i, "arch"], i) for i in INDICES])
        for seed_, indices in RANDOM_SEEDS.items():
            search = repo.create_search(s, {**CONFIG, "name": f"random {seed_}", "strategy": "random",
                                            "proxy": "knas", "seed": seed_, "topk": len(indices)})
            repo.set_stage(s, search, "evaluate")
            repo.add_candidates(s, search.id, [ids[truth.frame.at[i, "arch"]] for i in indices])
            for cand in repo.candidates(s, search.id):
                cand.accuracy = float(valid.loc[truth.index_of(cand.architecture.arch)])
                cand.stage, cand.eval_source, cand.rank = "evaluated", "lookup", cand.position + 1
            best = max(indices, key=lambda i: valid.loc[i])
            search.evaluated = len(indices)
            search.finish("done", result={
                "arch": truth.frame.at[best, "arch"], "index": best, "accuracy": float(valid.loc[best]),
                "test_acc": {"cifar10": float(test.loc[best])},
                "percentile": truth.percentile(float(test.loc[best]), "cifar10"),
                "scored": 0, "evaluated": len(indices), "seconds": 1.0 + seed_})
            out["random"].append(search.id)
        search = repo.create_search(s, {**CONFIG, "name": "seeded, seed 1", "seed": 1})
        repo.set_stage(s, search, "score", total=len(KNAS_SEED1))
        repo.add_candidates(s, search.id, [ids[truth.frame.at[i, "arch"]] for i in KNAS_SEED1])
        ranked = sorted(repo.candidates(s, search.id),
                        key=lambda c: -test.loc[truth.index_of(c.architecture.arch)])
        for rank, cand in enumerate(ranked, start=1):
            index = truth.index_of(cand.architecture.arch)
            cand.score, cand.rank, cand.stage = float(test.loc[index]) * 10, rank, "scored"
            if rank <= 3:
                cand.accuracy, cand.stage, cand.eval_source = float(valid.loc[index]), "evaluated", "lookup"
        best = max(ranked[:3], key=lambda c: c.accuracy or 0.0)
        index = truth.index_of(best.architecture.arch)
        repo.set_stage(s, search, "evaluate", scored=len(KNAS_SEED1), evaluated=3)
        search.finish("done", result={
            "arch": best.architecture.arch, "index": index, "score": best.score, "rank": best.rank,
            "accuracy": best.accuracy, "eval": "lookup", "test_acc": {"cifar10": float(test.loc[index])},
            "percentile": truth.percentile(float(test.loc[index]), "cifar10")})
        out["knas"].append(search.id)
    return out


#: The images of the live store's searches (a made-up identity: only keys compare it).
LIVE_DATA = "npz:seeded-live:0123456789ab"
#: The live store's ensemble search: synflow, snip and params; at 4 of 8 scored.
ENSEMBLE = ("synflow", "snip", "params")
#: The ensemble search's weights (synflow's log-rank counts twice).
ENSEMBLE_WEIGHTS = {"synflow": 2.0}


def seed_live(url: str, truth: GroundTruth) -> dict[str, Any]:
    """Searches caught in the middle, written through :mod:`db.repository` under the workers' own
    score keys (:func:`tasks.search.score_key`); scoring started 100 s before seeding:

    * ``ensemble``: proxies :data:`ENSEMBLE`, 8 candidates, running in the score stage; every
      proxy has scored candidates 0-3 (params failed on 3), synflow also 4 and 5, nobody 6 and 7;
      synflow's values are around 1e36 (products of weights). Candidates 0 and 1 were cache hits
      (stored an hour before the search started), 2-5 were scored since;
    * ``single``: synflow only (seed 1: its own score key), 3 of 8 scored, running;
    * ``cancelled``: cancelled in the score stage with 3 of 8 scored;
    * ``failed``: failed before it recorded a stage (its stage is still ``queued``);
    * ``nasi``: NASI (no proxy) at step 26 of 100; ``random``: random search (no proxy) in its
      evaluate stage, 5 of 10 evaluated.

    Returns the ids, ``started`` and ``values[search][proxy][architecture_id]``."""
    from datetime import timedelta

    from db.models import Search, utcnow
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

        ensemble = {"proxies": list(ENSEMBLE), "weights": ENSEMBLE_WEIGHTS}
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
        # strategies without proxies: NASI at step 26 of 100, random search at its 5th of 10
        # evaluations; their first reports (step 1, evaluation 1) came at ``started``
        search("nasi", {"strategy": "nasi", "seed": 4}, 0)
        s.get_one(Search, out["nasi"]).scored, s.get_one(Search, out["nasi"]).total = 26, 100
        search("random", {"strategy": "random", "seed": 5, "topk": 10}, 0)
        repo.set_stage(s, s.get_one(Search, out["random"]), "evaluate", evaluated=5)
        failed = repo.create_search(s, {**CONFIG, "name": "failed", "seed": 3})
        failed.finish(Status.FAILED, error="FileNotFoundError: seeded")
        out["failed"] = failed.id
    return out
