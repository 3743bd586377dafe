"""Proxy discovery (EZNAS-style GP) on NAS-Bench-201, beside EZNAS's published held-out tau and
hand-written proxies measured on the same held-out architectures.

Two steps, runnable separately (the first is the expensive one and needs only torch, numpy,
scipy and pandas: no DEAP, Celery or SQLAlchemy, so it runs on a bare GPU machine):

    python benchmarks/discovery.py gather --archs 200 --heldout 500 --C 8 --N 1 --images 2 \
        --cache-dir benchmarks/out/tensor-cache
    python benchmarks/discovery.py evolve --archs 200 --heldout 500 --C 8 --N 1 --images 2 \
        --cache-dir benchmarks/out/tensor-cache --population 20 --generations 10 \
        --baselines eznas,params,synflow,naswot --out benchmarks/out/discovery.json

``evolve`` gathers whatever is missing from the cache first, so it can also run alone. The
held-out architectures never steer the search; their tau is reported per generation.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knas_core.discovery.run import DiscoveryConfig, gather_sample, sample_archs
from knas_core.discovery.tensors import KINDS

PUBLISHED_EZNAS_HELDOUT_TAU = 0.62  # Akhauri et al. 2022: NAS-Bench-201 CIFAR-10 Kendall tau


def config(args: argparse.Namespace) -> DiscoveryConfig:
    return DiscoveryConfig(archs=args.archs, heldout=args.heldout, generations=args.generations,
                           population=args.population, seed=args.seed, dataset=args.dataset, C=args.C,
                           N=args.N, batch_size=args.batch_size,
                           images=None if args.images == 0 else args.images,
                           kinds=tuple(args.kinds.split(",")), half=not args.float32, device=args.device,
                           cache_dir=args.cache_dir, memory_gib=args.memory_gib)


def progress_printer(every: int = 25) -> Callable[[str, int, int], None]:
    start = time.perf_counter()

    def show(stage: str, done: int, total: int) -> None:
        if done == total or done % every == 0:
            elapsed = time.perf_counter() - start
            print(f"[{elapsed:8.1f} s] {stage} {done}/{total}", file=sys.stderr, flush=True)

    return show


def gather(args: argparse.Namespace) -> None:
    cfg = config(args)
    start = time.perf_counter()
    cache = gather_sample(cfg, sample_archs(cfg), progress_printer())
    print(json.dumps({"cache": str(cache.dir), "archs": cfg.archs + cfg.heldout,
                      "seconds": round(time.perf_counter() - start, 1)}))


def evolve(args: argparse.Namespace) -> None:
    from knas_core.discovery.evolve import kendall
    from knas_core.discovery.language import EZNAS_PROGRAM, Program
    from knas_core.discovery.run import open_cache, run_discovery

    cfg = config(args)
    start = time.perf_counter()
    show = progress_printer()

    def on_gen(g) -> None:  # noqa: ANN001
        print(json.dumps(g.to_dict()), file=sys.stderr, flush=True)

    result = run_discovery(cfg, show, on_gen)
    seconds = time.perf_counter() - start
    sample = sample_archs(cfg)
    cache = open_cache(cfg)
    heldout_blocks = [cache.get(i) for i, _ in sample.heldout]
    eznas_cached = Program(EZNAS_PROGRAM, cfg.kinds).evaluate(heldout_blocks).scores
    baselines: dict[str, float | None] = {"eznas program on the cached tensors": kendall(eznas_cached,
                                                                                        sample.heldout_truth)[0]}
    names = [n for n in args.baselines.split(",") if n]
    if names:
        from knas_core.scoring import Scorer

        scorer = Scorer(cfg.dataset, batch_size=cfg.batch_size, seed=cfg.seed, device=cfg.device,
                        model_options={"C": cfg.C, "N": cfg.N})
        for name in names:
            values = []
            for n, (_, arch) in enumerate(sample.heldout, start=1):
                values.append(scorer.score_one(arch, name).value)
                show(f"baseline {name}", n, len(sample.heldout))
            values = [float("nan") if v is None else v for v in values]
            baselines[name] = kendall(values, sample.heldout_truth)[0]
    report = {
        "machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} torch threads, "
                   f"torch {torch.__version__}",
        "config": cfg.to_dict(), "seconds": round(seconds, 1),
        "formula": result["formula"], "readable": result["readable"],
        "train_kendall": result["train_kendall"], "heldout_kendall": result["heldout_kendall"],
        "published_eznas_heldout_kendall": PUBLISHED_EZNAS_HELDOUT_TAU,
        "heldout_baselines": baselines, "history": result["history"],
    }
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["gather", "evolve"])
    ap.add_argument("--archs", type=int, default=200, help="training architectures")
    ap.add_argument("--heldout", type=int, default=500, help="held-out architectures")
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--images", type=int, default=2, help="images kept per activation (0: all)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--float32", action="store_true", help="cache float32 instead of scaled float16")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cache-dir", default="benchmarks/out/tensor-cache")
    ap.add_argument("--memory-gib", type=float, default=4.0,
                    help="training tensors held in memory up to this size, else streamed per generation")
    ap.add_argument("--baselines", default="eznas,params,synflow,naswot",
                    help="hand-written proxies scored on the held-out archs (same network size)")
    ap.add_argument("--out", default=None, help="write the JSON report here too")
    args = ap.parse_args()
    {"gather": gather, "evolve": evolve}[args.step](args)


if __name__ == "__main__":
    main()
