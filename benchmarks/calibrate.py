"""Few-shot calibration against the best training-free ensemble, on held-out architectures.

For each k of ``--ks`` and ``--draws`` random draws: label k architectures of the scores file
with the benchmark's 200-epoch test accuracy, fit :mod:`knas_core.calibration`'s model on them,
and compute Kendall tau between its predictions and the accuracies of every other architecture
of the file (the held-out rest). Beside it, on the same held-out set:

* ``calibrated``: the model as ``knas calibrate`` fits it: a Gaussian process on the proxies
  and the cell's structure whose prior mean is the ensemble of the proxies ranked against every
  architecture of the file (their proxy values only, no labels);
* ``without prior`` / ``cell only``: the Gaussian process on the proxies and the cell with a
  constant prior mean, and on the cell's structure alone (ablations);
* ``trees (previous model)``: gradient-boosted trees on the proxies and the one-hot encoding,
  boosted from the same prior (``method="trees"``, the model of the earlier version);
* ``best ensemble (oracle)``: the log-rank ensemble (AZ-NAS, ``log_rank_aggregate``) of the
  subset of proxies with the highest tau *on the held-out set itself*: an upper bound for any
  training-free combination of these proxies;
* ``best ensemble (chosen on k)``: the subset with the highest tau on the k labelled ones, as a
  lab with k labels and no model would choose.

    python benchmarks/calibrate.py --scores atlas.csv.gz --dataset cifar10

``--scores``: a long-format CSV(.gz) (``index,proxy,value`` rows; other columns ignored) or
``knas score``'s JSON lines. Draw ``d`` labels the first k of one seeded permutation, so the k=10
set of a draw is inside its k=20 set, and so on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import kendalltau

from knas_core.calibration import fit_calibration, read_long_scores
from knas_core.groundtruth import GroundTruth, accuracy_column
from knas_core.proxies import get_proxy
from knas_core.search.ensemble import log_rank_aggregate
from knas_core.spaces import open_space


def tau(a: Sequence[float], b: Sequence[float]) -> float:
    return float(kendalltau(a, b).statistic)


def ensemble_tau(values: dict[str, np.ndarray], subset: tuple[str, ...], rows: np.ndarray,
                 acc: np.ndarray) -> float:
    """Kendall tau of the log-rank ensemble of ``subset`` over ``rows`` (relative to those rows)."""
    members = {p: values[p][rows].tolist() for p in subset}
    combined = log_rank_aggregate(members, {p: get_proxy(p).higher_is_better for p in subset})
    return tau(np.array(combined, dtype=float), acc[rows])


def one_draw(k: int, order: np.ndarray, archs: list[str], values: dict[str, np.ndarray], acc: np.ndarray,
             subsets: list[tuple[str, ...]], seed: int) -> dict[str, object]:
    train, test = order[:k], order[k:]
    proxies = list(values)
    out: dict[str, object] = {"k": k, "heldout": int(test.size)}
    variants = {"calibrated": (proxies, True, "gp"), "without prior": (proxies, False, "gp"),
                "cell only": ([], False, "gp"), "trees (previous model)": (proxies, True, "trees")}
    for label, (members, prior, method) in variants.items():
        model = fit_calibration([archs[i] for i in train], {p: values[p][train] for p in members},
                                acc[train], proxies=members, prior=prior, population=values, seed=seed,
                                method=method)
        predicted = model.predict([archs[i] for i in test], {p: values[p][test] for p in members})
        out[label] = tau(predicted, acc[test])
    on_test = {s: ensemble_tau(values, s, test, acc) for s in subsets}
    on_train = {s: ensemble_tau(values, s, train, acc) for s in subsets}
    oracle = max(on_test, key=lambda s: on_test[s])
    chosen = max(on_train, key=lambda s: (np.nan_to_num(on_train[s], nan=-1.0), -len(s)))
    out["best ensemble (oracle)"], out["oracle subset"] = on_test[oracle], "+".join(oracle)
    out["best ensemble (chosen on k)"], out["chosen subset"] = on_test[chosen], "+".join(chosen)
    return out


COLUMNS = ("calibrated", "without prior", "cell only", "trees (previous model)", "best ensemble (oracle)",
           "best ensemble (chosen on k)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", required=True, help="long-format CSV(.gz) or knas score JSON lines")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--proxies", default=None, help="members (default: every proxy of the file)")
    ap.add_argument("--ks", default="10,20,50,100,200")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", default=None, metavar="F.jsonl", help="also write every draw's figures")
    args = ap.parse_args()

    start = time.perf_counter()
    truth = GroundTruth.load(args.data_dir)
    space = open_space("nb201", archs_in_index_order=truth.archs)
    table = read_long_scores(args.scores)
    proxies = args.proxies.split(",") if args.proxies else table.proxies()
    frame = table.values[proxies]
    complete = frame.dropna()
    indices = complete.index.to_numpy()
    archs = [space.arch_at(int(i)) for i in indices]
    values = {p: complete[p].to_numpy() for p in proxies}
    acc = truth.frame[accuracy_column(args.dataset, "test")].loc[indices].to_numpy(dtype=float)
    subsets = [s for r in range(1, len(proxies) + 1) for s in itertools.combinations(proxies, r)]
    ks = [int(k) for k in args.ks.split(",")]

    print(f"# machine: {platform.node()} {platform.machine()}, torch {torch.__version__}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# {args.scores}: {len(frame)} architectures, {len(frame) - len(complete)} dropped for a missing "
          f"value; proxies {', '.join(proxies)}; labels {accuracy_column(args.dataset, 'test')}; "
          f"{args.draws} draws, seed {args.seed}")
    print("# whole-file tau per proxy: " + ", ".join(
        f"{p} {tau(values[p] * (1 if get_proxy(p).higher_is_better else -1), acc):.3f}" for p in proxies))
    rows = []
    sink = open(args.json, "w", encoding="utf-8") if args.json else None  # noqa: SIM115 - closed below
    for draw in range(args.draws):
        order = np.random.default_rng((args.seed, draw)).permutation(len(indices))
        for k in ks:
            if k >= len(indices) - 1:
                print(f"# k={k} skipped: the file has {len(indices)} complete architectures", file=sys.stderr)
                continue
            result = {"draw": draw, **one_draw(k, order, archs, values, acc, subsets, args.seed + draw)}
            rows.append(result)
            if sink is not None:
                sink.write(json.dumps(result) + "\n")
    if sink is not None:
        sink.close()

    print("\n| k | held-out | " + " | ".join(COLUMNS) + " | chosen subsets |")
    print("|---|---|" + "---|" * (len(COLUMNS) + 1))
    for k in ks:
        mine = [r for r in rows if r["k"] == k]
        if not mine:
            continue
        cells = []
        for col in COLUMNS:
            v = np.array([r[col] for r in mine], dtype=float)
            cells.append(f"{v.mean():.3f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}")
        chosen = Counter(str(r["chosen subset"]) for r in mine).most_common(2)
        print(f"| {k} | {mine[0]['heldout']} | " + " | ".join(cells) + " | "
              + ", ".join(f"{s} ({n})" for s, n in chosen) + " |")
    oracle = Counter(str(r["oracle subset"]) for r in rows).most_common(3)
    print(f"\n# oracle subsets (most frequent): {', '.join(f'{s} ({n})' for s, n in oracle)}")
    print(f"# {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
