"""The KNAS procedure replayed on the score atlas: many seeds, no network built.

A search of the product (strategy ``knas``: sample ``--samples`` architectures, rank them by the
score, look up the 12-epoch validation accuracy of the top ``--topk``, keep the best) scores each
architecture with the search's own seed. Here the scores are read from the score atlas instead
(every NAS-Bench-201 architecture scored once on CIFAR-10 with seed 0, batch 64: the packaged
``knas_core/bundled/atlas``), so hundreds of searches cost seconds and two ensembles can be
compared on the same samples: the same strategy code (:class:`~knas_core.search.knas.KNASSearch`)
and the same ensemble scorer (:class:`~knas_core.search.run.ProxyScorer`) as ``knas search``,
with the atlas in place of the networks. Random search with the same look-ups is the baseline::

    python benchmarks/atlas_search.py --atlas knas_core/bundled/atlas/nb201_atlas.csv.gz \\
        --ensembles "synflow=0.75,eznas=1.5,params;synflow,eznas,params" --seeds 300

Every ensemble is searched on the same samples (seed ``s`` samples the same architectures for
each), so the per-seed differences are paired: the script prints the mean difference of each
ensemble from the first, with its standard error. The test accuracy is the chosen architecture's
200-epoch accuracy on ``--dataset`` (scores always come from the CIFAR-10 atlas).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atlas_correlation import read_atlas

from knas_core.groundtruth import GroundTruth
from knas_core.search import SearchContext, get_strategy
from knas_core.search.ensemble import parse_members
from knas_core.search.run import ProxyScorer
from knas_core.spaces import open_space


def atlas_scorer(atlas: dict[str, dict[int, float | None]], space, members: list[str],  # noqa: ANN001
                 weights: dict[str, float]) -> ProxyScorer:
    """The product's ensemble scorer with the atlas's values in place of scoring a network."""
    def lookup(arch: str, names: list[str]) -> dict[str, float | None]:
        index = space.index_of(arch)
        return {p: atlas[p].get(index) for p in names}

    return ProxyScorer(None, members, lookup, weights=weights)  # type: ignore[arg-type]


def run_searches(spec: str, atlas: dict[str, dict[int, float | None]], space, truth: GroundTruth,  # noqa: ANN001
                 dataset: str, seeds: int, samples: int, topk: int) -> np.ndarray:
    """The test accuracy (%) of the architecture each seed's search keeps; ``spec`` ``random``
    is random search with ``topk`` look-ups."""
    short = truth.accuracy(dataset, "valid_12ep")
    test = truth.accuracy(dataset, "test")
    out = []
    for seed in range(seeds):
        if spec == "random":
            strategy, score = get_strategy("random", topk=topk), (lambda archs: [None] * len(archs))
        else:
            members, weights = parse_members(spec)
            missing = [m for m in members if m not in atlas]
            if missing:
                raise SystemExit(f"the atlas holds no {', '.join(missing)} "
                                 f"(it has {', '.join(sorted(atlas))})")
            strategy, score = get_strategy("knas", samples=samples, topk=topk), atlas_scorer(
                atlas, space, members, weights)
        ctx = SearchContext(space, score, lambda arch: float(short.loc[space.index_of(arch)]), seed)
        result = strategy.run(ctx)
        out.append(float(test.loc[space.index_of(result.arch)]))
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--atlas", type=Path, required=True)
    ap.add_argument("--ensembles", default="synflow=0.75,eznas=1.5,params;synflow,eznas,params",
                    help="';'-separated, each as knas search --proxies takes it")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--seeds", type=int, default=300)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    truth = GroundTruth.load(args.data_dir)
    space = open_space("nb201", archs_in_index_order=truth.archs)
    atlas = read_atlas(args.atlas)
    specs = [s.strip() for s in args.ensembles.split(";") if s.strip()] + ["random"]
    print(f"# machine: {platform.node()} {platform.machine()}, torch {torch.__version__}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# {args.atlas}: KNAS procedure, {args.samples} sampled, top-{args.topk} by 12-epoch validation "
          f"look-up, seeds 0-{args.seeds - 1}; truth: {args.dataset} 200-epoch test accuracy")
    results = {s: run_searches(s, atlas, space, truth, args.dataset, args.seeds, args.samples, args.topk)
               for s in specs}
    first = results[specs[0]]
    print(f"\n| score | test acc (mean +- std) | percentile (mean) | difference from {specs[0]} (+- s.e.) |")
    print("|---|---|---|---|")
    for spec, acc in results.items():
        pct = np.mean([truth.percentile(a, args.dataset) for a in acc])
        diff = acc - first
        paired = "-" if spec == specs[0] else \
            f"{diff.mean():+.3f} +- {diff.std(ddof=1) / np.sqrt(len(diff)):.3f}"
        print(f"| {spec} | {acc.mean():.2f} +- {acc.std(ddof=1):.2f} | {pct:.1f} | {paired} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
