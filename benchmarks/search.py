"""Search strategies on NAS-Bench-201 with benchmark look-up: accuracy of the architecture found.

For each strategy, dataset and seed, runs the search in-process (full-size networks for the
proxies, the table's 12-epoch validation accuracy as the evaluation signal) and prints the mean
+- std of the found architecture's 200-epoch test accuracy and the search seconds, beside the
published figures.

    python benchmarks/search.py --seeds 0,1,2 --datasets cifar10,cifar100,imagenet16-120 \\
        --strategies knas,nasi,evolution,random --samples 300 --topk 10
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from knas_core.search.config import SearchConfig
from knas_core.search.run import SearchRun

# Published mean test accuracy (%) of the architecture found, NAS-Bench-201.
PUBLISHED = {
    "optimum": {"cifar10": 94.37, "cifar100": 73.51, "imagenet16-120": 47.31},
    "NASI": {"cifar10": 93.55, "cifar100": 71.20, "imagenet16-120": 44.84},
    "KNAS (score search)": {"cifar10": 93.95, "cifar100": 72.44, "imagenet16-120": 46.01},
    "NASWOT": {"cifar10": 92.96, "cifar100": 69.98, "imagenet16-120": 44.44},
    "RoBoT": {"cifar10": 94.36, "cifar100": 73.51, "imagenet16-120": 46.34},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", default="knas,nasi,evolution,random")
    ap.add_argument("--datasets", default="cifar10,cifar100,imagenet16-120")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--proxies", default="knas")
    ap.add_argument("--nasi-steps", type=int, default=100)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="benchmarks/out/search.jsonl")
    args = ap.parse_args()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done[(r["strategy"], r["dataset"], r["seed"], r.get("nasi_steps"), r.get("proxies"))] = r
    print(f"# machine: {platform.node()} {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"# samples {args.samples}, top-k {args.topk}, proxies {args.proxies}, look-up evaluation")
    rows = []
    with out.open("a") as fh:
        for dataset in args.datasets.split(","):
            for strategy in args.strategies.split(","):
                results = []
                for seed in (int(s) for s in args.seeds.split(",")):
                    steps = args.nasi_steps if strategy == "nasi" else None
                    # recorded only when not the default knas proxy (random and nasi use none)
                    default = strategy in ("random", "nasi") or args.proxies == "knas"
                    proxies = None if default else args.proxies
                    key = (strategy, dataset, seed, steps, proxies)
                    if key not in done:
                        names = args.proxies.split(",")
                        run = SearchRun(SearchConfig(
                            strategy=strategy, dataset=dataset, samples=args.samples, topk=args.topk,
                            **({"proxy": names[0]} if len(names) == 1 else {"proxies": names}),
                            eval="lookup", seed=seed, device=args.device,
                            strategy_options={"steps": args.nasi_steps}))
                        r = run.run()
                        r = {k: r[k] for k in ("arch", "index", "test_acc", "percentile", "seconds",
                                               "scored", "evaluated")}
                        done[key] = {"strategy": strategy, "dataset": dataset, "seed": seed,
                                     "nasi_steps": steps, "proxies": proxies, "samples": args.samples,
                                     "topk": args.topk, **r}
                        fh.write(json.dumps(done[key]) + "\n")
                        fh.flush()
                        print(f"  {strategy} {dataset} seed {seed}: {r['test_acc'][dataset]:.2f} "
                              f"({r['seconds']:.0f} s)", file=sys.stderr)
                    results.append(done[key])
                acc = np.array([r["test_acc"][dataset] for r in results])
                secs = np.array([r["seconds"] for r in results])
                pct = np.array([r["percentile"] for r in results])
                name = f"nasi (T={args.nasi_steps})" if strategy == "nasi" else strategy
                if proxies is not None:
                    name += f" ({args.proxies})"
                rows.append((dataset, name, acc.mean(), acc.std(), pct.mean(), secs.mean(), len(results)))
    print("\n| dataset | strategy | test acc (mean +- std) | percentile (mean) | search s (mean) | seeds |")
    print("|---|---|---|---|---|---|")
    for dataset, name, mean, std, pct, secs, n in rows:
        print(f"| {dataset} | {name} | {mean:.2f} +- {std:.2f} | {pct:.1f} | {secs:.0f} | {n} |")
    print("\n| published | " + " | ".join(args.datasets.split(",")) + " |")
    print("|---|" + "---|" * len(args.datasets.split(",")))
    for name, figures in PUBLISHED.items():
        print(f"| {name} | " + " | ".join(f"{figures[d]:.2f}" for d in args.datasets.split(",")) + " |")


if __name__ == "__main__":
    main()
