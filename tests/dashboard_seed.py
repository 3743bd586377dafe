"""A small seeded store for the dashboard tests, written through :mod:`db.repository` only:
12 benchmark architectures with their accuracies, three proxies' scores on CIFAR-10, one
finished KNAS search (top-3 evaluated, one trained) and one running search; and, for the Proxy
lab, :func:`seed_discovery` (a finished discovery run with its program, through
:mod:`db.discovery`)."""

from __future__ import annotations

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
