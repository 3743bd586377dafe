"""Few-shot calibration against the best training-free ensemble, on held-out architectures.

For each k of ``--ks`` and ``--draws`` random draws: label k architectures of the scores file
with the benchmark's 200-epoch test accuracy, fit :mod:`knas_core.calibration`'s model on them,
and compute Kendall tau between its predictions and the accuracies of every other architecture
of the file (the held-out rest). Beside it, on the same held-out set:

* ``calibrated``: the model as ``knas calibrate`` fits it: the mean of two Gaussian processes,
  ``single process`` and ``path view alone``;
* ``single process``: a Gaussian process on the proxies and the cell's structure whose prior
  mean is, below ``PRIOR_BELOW`` labels, the ensemble of the proxies ranked against every
  architecture of the file (their proxy values only, no labels), and a constant from there on,
  when it learns the accuracies' Box-Cox-warped error instead of their ranks;
* ``path view alone``: the second process, on the cell's structure summary and path encoding
  (no proxy, no prior), fitted to the warped accuracies;
* ``with prior`` / ``without prior`` / ``cell only``: the single process with the ensemble as its
  prior mean at every k (learning ranks), with a constant prior mean at every k (learning the
  warped accuracies), and on the cell's structure alone (ablations);
* ``trees (previous model)``: gradient-boosted trees on the proxies and the one-hot encoding,
  boosted from the same prior (``method="trees"``, the model of the earlier version);
* ``best ensemble (oracle)``: the log-rank ensemble (AZ-NAS, ``log_rank_aggregate``) of the
  subset of proxies with the highest tau *on the held-out set itself*: an upper bound for any
  training-free combination of these proxies;
* ``best ensemble (chosen on k)``: the subset with the highest tau on the k labelled ones, as a
  lab with k labels and no model would choose.

    python benchmarks/calibrate.py --scores atlas.csv.gz --dataset cifar10

``--diagnose`` adds, for the calibrated model at each k, where its discordant pairs lie (by the
gap between the two accuracies, on up to 3,000 held-out architectures), and how far a perfect
ranking could go: the table's validation accuracy against its test accuracy, and the true
accuracies against themselves plus Gaussian noise of a few tenths of a point (about the seed-to-
seed spread of a 200-epoch run), over the file's architectures.

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
from dataclasses import replace

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


#: Bins of the accuracy gap (points) of a pair, for ``--diagnose``.
GAPS = (0.0, 0.25, 0.5, 1.0, 2.0, float("inf"))
#: Noise (points) added to the true accuracies for the perfect-ranking ceiling.
NOISE = (0.1, 0.2, 0.3, 0.5)


def discordance_by_gap(predicted: np.ndarray, acc: np.ndarray, gaps: Sequence[float] = GAPS,
                       limit: int = 3000, seed: int = 0) -> list[tuple[float, float]]:
    """For each bin ``[gaps[i], gaps[i+1])`` of the accuracy gap ``|acc_a - acc_b|`` of a pair:
    the share of all pairs in the bin and the share of its pairs that ``predicted`` orders the
    other way (ties in either count as half). Kendall tau without ties is ``1 - 2 sum_i share_i
    discordant_i``. On ``limit`` architectures drawn by ``seed`` when there are more."""
    if len(acc) > limit:
        keep = np.random.default_rng(seed).choice(len(acc), limit, replace=False)
        predicted, acc = predicted[keep], acc[keep]
    i, j = np.triu_indices(len(acc), 1)
    signs = np.sign(predicted[i] - predicted[j]) * np.sign(acc[i] - acc[j])
    wrong = (signs < 0) + 0.5 * (signs == 0)
    gap = np.abs(acc[i] - acc[j])
    out = []
    for lo, hi in zip(gaps[:-1], gaps[1:]):
        inside = (gap >= lo) & (gap < hi)
        out.append((float(inside.mean()), float(wrong[inside].mean()) if inside.any() else float("nan")))
    return out


def ceiling(acc: np.ndarray, valid: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Kendall tau of rankings no model of the proxies and the cell can beat by much: the
    validation accuracy (another training run on another split) against the test accuracy, and
    the test accuracy against itself plus N(0, s^2) noise for each s of :data:`NOISE`."""
    rng = np.random.default_rng(seed)
    ok = np.isfinite(valid)
    out = {"validation accuracy": tau(valid[ok], acc[ok])}
    for s in NOISE:
        out[f"test accuracy + noise sd {s}"] = tau(acc + rng.normal(0.0, s, acc.size), acc)
    return out


def one_draw(k: int, order: np.ndarray, archs: list[str], values: dict[str, np.ndarray], acc: np.ndarray,
             subsets: list[tuple[str, ...]], seed: int, diagnose: bool = False) -> dict[str, object]:
    train, test = order[:k], order[k:]
    proxies = list(values)
    test_archs = [archs[i] for i in test]
    out: dict[str, object] = {"k": k, "heldout": int(test.size)}
    # label: (members, prior, method, path view)
    variants = {"calibrated": (proxies, None, "gp", True), "with prior": (proxies, True, "gp", False),
                "without prior": (proxies, False, "gp", False), "cell only": ([], False, "gp", False),
                "trees (previous model)": (proxies, True, "trees", False)}
    fitted: dict[tuple[tuple[str, ...], bool, str], float] = {}  # (members, prior used, method) -> tau
    for label, (members, prior, method, view) in variants.items():
        key = (tuple(members), bool(prior), method)
        if prior is not None and key in fitted:  # the single process is this ablation at this k
            out[label] = fitted[key]
            continue
        model = fit_calibration([archs[i] for i in train], {p: values[p][train] for p in members},
                                acc[train], proxies=members, prior=prior, population=values, seed=seed,
                                method=method, path_view=view)
        predicted = model.predict(test_archs, {p: values[p][test] for p in members})
        out[label] = tau(predicted, acc[test])
        single = out[label]
        if model.path_view is not None:  # the model is the mean of these two processes
            out["path view alone"] = tau(model.path_view.predict(test_archs), acc[test])
            single = out["single process"] = tau(replace(model, path_view=None).predict(
                test_archs, {p: values[p][test] for p in members}), acc[test])
        fitted[(tuple(members), model.prior is not None, method)] = single
        if diagnose and label == "calibrated":
            out["gaps"] = discordance_by_gap(np.asarray(predicted, dtype=float), acc[test], seed=seed)
    on_test = {s: ensemble_tau(values, s, test, acc) for s in subsets}
    on_train = {s: ensemble_tau(values, s, train, acc) for s in subsets}
    oracle = max(on_test, key=lambda s: on_test[s])
    chosen = max(on_train, key=lambda s: (np.nan_to_num(on_train[s], nan=-1.0), -len(s)))
    out["best ensemble (oracle)"], out["oracle subset"] = on_test[oracle], "+".join(oracle)
    out["best ensemble (chosen on k)"], out["chosen subset"] = on_test[chosen], "+".join(chosen)
    return out


COLUMNS = ("calibrated", "single process", "path view alone", "with prior", "without prior", "cell only",
           "trees (previous model)", "best ensemble (oracle)", "best ensemble (chosen on k)")


def print_diagnosis(rows: list[dict[str, object]], ks: list[int], acc: np.ndarray, valid: np.ndarray,
                    seed: int) -> None:
    """The ``--diagnose`` tables: discordant pairs by accuracy gap per k, and the ceiling."""
    bins = [f"{lo:g}-{hi:g}" for lo, hi in zip(GAPS[:-1], GAPS[1:])]
    print("\n# calibrated model: share of held-out pairs / share of them ordered wrongly, "
          "by accuracy gap (points)")
    print("| k | " + " | ".join(bins) + " |")
    print("|---|" + "---|" * len(bins))
    for k in ks:
        mine = [np.array(r["gaps"], dtype=float) for r in rows if r["k"] == k and "gaps" in r]
        if mine:
            mean = np.mean(mine, axis=0)
            print(f"| {k} | " + " | ".join(f"{share:.3f} / {wrong:.3f}" for share, wrong in mean) + " |")
    print("\n# ceiling (Kendall tau over the file's architectures): "
          + ", ".join(f"{name} {value:.3f}" for name, value in ceiling(acc, valid, seed).items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", required=True, help="long-format CSV(.gz) or knas score JSON lines")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--proxies", default=None, help="members (default: every proxy of the file)")
    ap.add_argument("--ks", default="10,20,50,100,200")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--diagnose", action="store_true",
                    help="also: the calibrated model's discordant pairs by accuracy gap, and the ceiling")
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
            result = {"draw": draw, **one_draw(k, order, archs, values, acc, subsets, args.seed + draw,
                                                      args.diagnose)}
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
    if args.diagnose:
        print_diagnosis(rows, ks, acc, truth.frame[accuracy_column(args.dataset, "valid")].loc[indices]
                        .to_numpy(dtype=float), args.seed)
    oracle = Counter(str(r["oracle subset"]) for r in rows).most_common(3)
    print(f"\n# oracle subsets (most frequent): {', '.join(f'{s} ({n})' for s, n in oracle)}")
    print(f"# {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
