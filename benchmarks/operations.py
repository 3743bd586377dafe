"""Which operations matter, and what accuracy costs, over the whole NAS-Bench-201 space: the
numbers the dashboard's "Which operations matter" and "Pareto front" pages show with no search
chosen, printed as Markdown tables for docs/RESULTS.md.

For each data set: every edge's share of the test-accuracy variance explained by its operation
(eta^2 of a one-way analysis of variance, :func:`app.views.operations.edge_importance`), its best
and worst operation by mean accuracy and their difference; then the size of the Pareto front of
200-epoch test accuracy against parameters (the table's count) and against FLOPs
(:mod:`knas_core.costs`), with the seconds each view's data function took.

    python benchmarks/operations.py [--datasets cifar10,cifar100,imagenet16-120]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.views import operations, pareto
from knas_core.groundtruth import DATASETS, GroundTruth


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args(argv)
    truth = GroundTruth.load()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    print("| dataset | edge | eta^2 | best op | worst op | best - worst mean (points) |")
    print("|---|---|---|---|---|---|")
    seconds: dict[str, float] = {}
    for ds in datasets:
        start = time.perf_counter()
        rows = operations.edge_importance(operations.edge_frame(pareto.space_points(ds, truth=truth)))
        seconds[f"operations {ds}"] = time.perf_counter() - start
        for r in rows:
            print(f"| {ds} | {r['edge']} | {r['eta2']:.3f} | {r['best_op']} | {r['worst_op']} "
                  f"| {r['spread']:.2f} |")
    print("\n| dataset | cost | Pareto front (architectures) | cheapest on it | most accurate on it |")
    print("|---|---|---|---|---|")
    for ds in datasets:
        for cost in pareto.COSTS:
            start = time.perf_counter()
            front = [r for r in pareto.pareto(ds, "test", cost, truth=truth) if r["on_front"]]
            seconds[f"pareto {ds} {cost}"] = time.perf_counter() - start
            lo, hi = front[0], front[-1]
            print(f"| {ds} | {cost} | {len(front)} | {lo['cost']:.3f} M, {lo['accuracy']:.2f} % (index "
                  f"{lo['index']}) | {hi['cost']:.3f} M, {hi['accuracy']:.2f} % (index {hi['index']}) |")
    print("\n" + ", ".join(f"{k}: {v:.2f} s" for k, v in seconds.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
