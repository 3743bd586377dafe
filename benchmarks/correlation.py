"""Rank correlation of every proxy with NAS-Bench-201 200-epoch test accuracy.

Scores a seeded sample of architectures (full-size networks, C=16, N=5) with every registered
proxy on CIFAR-10 and CIFAR-100 data, then prints Kendall tau / Spearman rho / top-10%
precision against the table's test accuracies and the median seconds per architecture.

    python benchmarks/correlation.py --archs 500 --seed 0 --out-dir benchmarks/out

Scores are appended to ``<out-dir>/<dataset>.jsonl`` as they are computed; re-running with
the same arguments resumes (architectures already in the file are skipped).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from knas_core.evaluation import correlate_records, median_seconds, read_records
from knas_core.groundtruth import GroundTruth
from knas_core.proxies import proxy_names
from knas_core.scoring import Scorer

# Published Spearman rho vs CIFAR-10 test accuracy over the whole NAS-Bench-201 space:
# Abdelfattah et al. 2021 (Table 2 / Fig. 1) for grad_norm..jacob_cov, Mellor et al. 2021 for
# naswot, Akhauri et al. 2022 for eznas (tau 0.62).
PUBLISHED_SPEARMAN_CIFAR10 = {"synflow": 0.74, "jacob_cov": 0.73, "naswot": "0.78-0.80",
                              "grad_norm": 0.59, "snip": 0.59, "grasp": 0.51, "fisher": 0.36,
                              "eznas": 0.81}


def run(dataset: str, archs: int, seed: int, proxies: list[str], batch_size: int, device: str,
        out: Path, truth: GroundTruth) -> list[dict]:
    scorer = Scorer(dataset, batch_size=batch_size, seed=seed, device=device)
    sample = scorer.space.sample(archs, seed)
    done = {r["arch"]: r for r in read_records(out)} if out.exists() else {}
    with out.open("a", encoding="utf-8") as fh:
        for arch in tqdm(sample, desc=dataset, file=sys.stderr):
            if arch in done:
                continue
            record = scorer.score(arch, proxies, index=truth.index_of(arch)).to_record()
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            done[arch] = record
    return [done[a] for a in sample]


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--datasets", default="cifar10,cifar100")
    ap.add_argument("--proxies", default=",".join(proxy_names()))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out-dir", default="benchmarks/out")
    args = ap.parse_args()

    truth = GroundTruth.load()
    proxies = args.proxies.split(",")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"# machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, device {args.device}")
    print(f"# {args.archs} archs, seed {args.seed}, batch {args.batch_size}, "
          f"started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    for dataset in args.datasets.split(","):
        records = run(dataset, args.archs, args.seed, proxies, args.batch_size, args.device,
                      out_dir / f"{dataset}.jsonl", truth)
        summary = correlate_records(records, truth, dataset, "test")
        secs = median_seconds(records)
        print(f"\n## {dataset}: n={summary['n']} vs 200-epoch test accuracy\n")
        print("| proxy | Kendall tau | Spearman rho | top-10% precision | failed | median s/arch |"
              + (" published rho (C10) |" if dataset == "cifar10" else ""))
        print("|---|---|---|---|---|---|" + ("---|" if dataset == "cifar10" else ""))
        for proxy in proxies:
            s = summary["proxies"][proxy]
            row = (f"| {proxy} | {fmt(s['kendall'])} | {fmt(s['spearman'])} | "
                   f"{fmt(s['top10_precision'])} | {s['dropped']} | {secs[proxy]:.3f} |")
            if dataset == "cifar10":
                row += f" {PUBLISHED_SPEARMAN_CIFAR10.get(proxy, '-')} |"
            print(row)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
