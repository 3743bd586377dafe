"""Rank correlations over the score atlas, and log-rank ensembles chosen on a split.

Reads an atlas (``knas atlas export`` file: long-format CSV, optionally gzip, columns at least
``index, proxy, value``; or ``--db`` a store holding the atlas search's rows) and prints, for
every proxy it holds, Kendall tau-b / Spearman rho / top-10% precision against the benchmark's
200-epoch test accuracy on each dataset, over every architecture the atlas covers.

Then every log-rank ensemble of two or more of its proxies (AZ-NAS, Lee & Ham 2024;
:func:`knas_core.search.ensemble.log_rank_aggregate`) is ranked by Kendall tau on a random half
of the architectures (``--split-seed``), and the best one there is reported on the other half:
the held-out figure is the one to quote; the best on the held-out half itself is printed beside
it only to show how much choosing on the same data flatters. Last, the members' weights are
chosen on the same half A (coordinate ascent over a grid, starting from the chosen ensemble's
equal weights; a weight of 0 drops the member) and the weighted ensemble is reported on B, over
the whole atlas and on the other data sets::

    python benchmarks/atlas_correlation.py --atlas knas_core/bundled/atlas/nb201_cifar10_atlas.csv.gz
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import itertools
import sqlite3
import sys
from pathlib import Path

import numpy as np

from knas_core.groundtruth import GroundTruth
from knas_core.proxies import get_proxy
from knas_core.search.ensemble import log_rank_aggregate
from knas_core.stats import Correlation, correlate

DATASETS = ("cifar10", "cifar100", "imagenet16-120")


def read_atlas(path: Path) -> dict[str, dict[int, float | None]]:
    """``{proxy: {index: value}}`` from a long-format atlas CSV (``.gz`` read as gzip); an empty
    or missing value (a failed score) is None."""
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    out: dict[str, dict[int, float | None]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        value = row.get("value") or ""
        out.setdefault(row["proxy"], {})[int(row["index"])] = float(value) if value else None
    return out


def read_store(db: Path, search_id: int | None = None) -> dict[str, dict[int, float | None]]:
    """The same from a SQLite store: the rows of search ``search_id``'s candidates (default:
    every score row in the store)."""
    query = ("select a.\"index\", s.proxy, s.value from proxy_scores s "
             "join architectures a on a.id = s.architecture_id")
    params: tuple[int, ...] = ()
    if search_id is not None:
        query += " join search_candidates c on c.architecture_id = a.id where c.search_id = ?"
        params = (search_id,)
    out: dict[str, dict[int, float | None]] = {}
    with sqlite3.connect(db) as con:
        for index, proxy, value in con.execute(query, params):
            out.setdefault(proxy, {})[int(index)] = value
    return out


def covered(atlas: dict[str, dict[int, float | None]]) -> list[int]:
    """Indices every proxy of the atlas has a row for, sorted."""
    sets = [set(v) for v in atlas.values()]
    return sorted(set.intersection(*sets)) if sets else []


def proxy_correlations(atlas: dict[str, dict[int, float | None]], indices: list[int],
                       accuracy: np.ndarray) -> dict[str, Correlation]:
    """Each proxy's correlation with ``accuracy`` (aligned with ``indices``)."""
    return {p: correlate([atlas[p][i] for i in indices], accuracy,
                         higher_is_better=get_proxy(p).higher_is_better) for p in sorted(atlas)}


def ensemble_scores(atlas: dict[str, dict[int, float | None]], members: tuple[str, ...],
                    indices: list[int]) -> list[float | None]:
    """The log-rank ensemble of ``members`` over ``indices`` (relative to that set)."""
    return weighted_scores(atlas, dict.fromkeys(members, 1.0), indices)


def split_halves(n: int, seed: int) -> dict[str, list[int]]:
    """Positions ``0..n-1`` split at random into half ``A`` (choose) and the rest ``B`` (report)."""
    order = np.random.default_rng(seed).permutation(n)
    return {"A": sorted(order[:n // 2].tolist()), "B": sorted(order[n // 2:].tolist())}


def choose_on_split(atlas: dict[str, dict[int, float | None]], indices: list[int], truth: np.ndarray,
                    seed: int) -> list[dict[str, object]]:
    """Every ensemble of 2+ proxies, with Kendall tau on a random half A (where it is chosen)
    and on the other half B (where it is reported), best on A first."""
    parts = split_halves(len(indices), seed)
    rows = []
    proxies = sorted(atlas)
    for size in range(2, len(proxies) + 1):
        for members in itertools.combinations(proxies, size):
            row: dict[str, object] = {"members": "+".join(members)}
            for name, positions in parts.items():
                idx = [indices[k] for k in positions]
                row[name] = correlate(ensemble_scores(atlas, members, idx), truth[positions]).kendall
            rows.append(row)
    rows.sort(key=lambda r: -float(r["A"] or -1))  # type: ignore[arg-type]
    return rows


def weighted_scores(atlas: dict[str, dict[int, float | None]], weights: dict[str, float],
                    indices: list[int]) -> list[float | None]:
    """The log-rank ensemble of the members with a positive weight, weighted, over ``indices``."""
    members = {m: w for m, w in weights.items() if w > 0}
    return log_rank_aggregate({m: [atlas[m][i] for i in indices] for m in members},
                              {m: get_proxy(m).higher_is_better for m in members}, members)


#: Weights tried for each member by :func:`weigh_on_split` (0 drops it).
WEIGHT_GRID = tuple(float(w) for w in np.arange(0.0, 3.01, 0.25))


def weigh_on_split(atlas: dict[str, dict[int, float | None]], indices: list[int], truth: np.ndarray,
                   seed: int, start: tuple[str, ...], rounds: int = 4) -> dict[str, object]:
    """Member weights chosen on half A of :func:`split_halves` by coordinate ascent of Kendall
    tau: from weight 1 on each member of ``start`` (0 on the other proxies), each proxy in turn
    takes the :data:`WEIGHT_GRID` value that raises tau on A most, until a round changes
    nothing. Returns the weights and tau on A and on the held-out B (neither B's accuracies nor
    its scores are read while choosing)."""
    parts = split_halves(len(indices), seed)
    idx = {name: [indices[k] for k in positions] for name, positions in parts.items()}

    def tau_on(name: str, weights: dict[str, float]) -> float:
        got = correlate(weighted_scores(atlas, weights, idx[name]), truth[parts[name]]).kendall
        return -1.0 if got is None else float(got)

    weights = {p: (1.0 if p in start else 0.0) for p in sorted(atlas)}
    best = tau_on("A", weights)
    for _ in range(rounds):
        changed = False
        for proxy in weights:
            for w in WEIGHT_GRID:
                trial = {**weights, proxy: w}
                if w == weights[proxy] or not any(v > 0 for v in trial.values()):
                    continue
                t = tau_on("A", trial)
                if t > best + 1e-6:
                    best, weights, changed = t, trial, True
        if not changed:
            break
    return {"weights": {p: w for p, w in weights.items() if w > 0}, "A": best, "B": tau_on("B", weights)}


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--atlas", type=Path, help="an atlas export (CSV, .gz)")
    source.add_argument("--db", type=Path, help="a SQLite store holding the atlas search")
    ap.add_argument("--search", type=int, default=None, help="with --db: only this search's rows")
    ap.add_argument("--data-dir", default=None, help="benchmark table (default: look-up order)")
    ap.add_argument("--split-seed", type=int, default=0)
    args = ap.parse_args(argv)
    atlas = read_atlas(args.atlas) if args.atlas else read_store(args.db, args.search)
    indices = covered(atlas)
    if len(indices) < 4:
        print("the atlas covers fewer than 4 architectures with every proxy", file=sys.stderr)
        return 2
    truth = GroundTruth.load(args.data_dir)
    print(f"# {len(indices)} architectures with every one of {len(atlas)} proxies "
          f"({', '.join(sorted(atlas))}); truth: 200-epoch test accuracy")
    for dataset in DATASETS:
        accuracy = truth.accuracy(dataset).loc[indices].to_numpy()
        print(f"\n## {dataset}\n\n| proxy | Kendall tau | Spearman rho | top-10% precision | failed |")
        print("|---|---|---|---|---|")
        for proxy, c in proxy_correlations(atlas, indices, accuracy).items():
            print(f"| {proxy} | {fmt(c.kendall)} | {fmt(c.spearman)} | {fmt(c.top10_precision)} "
                  f"| {c.dropped} |")
    accuracy = truth.accuracy("cifar10").loc[indices].to_numpy()
    rows = choose_on_split(atlas, indices, accuracy, args.split_seed)
    best_b = max(rows, key=lambda r: float(r["B"] or -1))  # type: ignore[arg-type]
    whole = correlate(ensemble_scores(atlas, tuple(str(rows[0]["members"]).split("+")), indices), accuracy)
    print(f"\n## log-rank ensembles on CIFAR-10 (split seed {args.split_seed}: "
          f"{len(indices) // 2} choose / {len(indices) - len(indices) // 2} held out)\n")
    print("| ensemble | tau on A (chosen here) | tau on B (held out) |\n|---|---|---|")
    for r in rows[:8]:
        print(f"| {r['members']} | {fmt(r['A'])} | {fmt(r['B'])} |")  # type: ignore[arg-type]
    print(f"\nchosen on A: {rows[0]['members']}, held-out tau {fmt(rows[0]['B'])}"  # type: ignore[arg-type]
          f" (whole atlas: tau {fmt(whole.kendall)}, rho {fmt(whole.spearman)}); "
          f"best on B itself: {best_b['members']} {fmt(best_b['B'])}")  # type: ignore[arg-type]
    chosen = tuple(str(rows[0]["members"]).split("+"))
    weighed = weigh_on_split(atlas, indices, accuracy, args.split_seed, chosen)
    weights: dict[str, float] = weighed["weights"]  # type: ignore[assignment]
    label = ",".join(f"{p}={w:g}" for p, w in weights.items())
    print(f"\nweights chosen on A: {label}: tau on A {fmt(weighed['A'])}, "  # type: ignore[arg-type]
          f"held-out tau {fmt(weighed['B'])}")  # type: ignore[arg-type]
    scores = weighted_scores(atlas, weights, indices)
    equal = ensemble_scores(atlas, chosen, indices)
    for dataset in DATASETS:
        acc = truth.accuracy(dataset).loc[indices].to_numpy()
        c, e = correlate(scores, acc), correlate(equal, acc)
        print(f"  whole atlas, {dataset}: tau {fmt(c.kendall)}, rho {fmt(c.spearman)}, "
              f"top-10% precision {fmt(c.top10_precision)} (equal weights: tau {fmt(e.kendall)}, "
              f"rho {fmt(e.spearman)}, top-10% precision {fmt(e.top10_precision)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
