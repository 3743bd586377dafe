"""``knas evolve``: discover a zero-cost proxy by genetic programming, in-process.

With ``--name`` the best program is promoted: stored in the database (``KNAS_DATABASE_URL``)
and usable as ``--proxies NAME`` in searches, correlations and ensembles from then on.
"""

from __future__ import annotations

import argparse
import json

from knas_cli.errors import UsageError
from knas_cli.progress import StageBars
from knas_core.data import SOURCES
from knas_core.device import DEVICES
from knas_core.discovery.tensors import KINDS
from knas_core.groundtruth import DATASETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``knas evolve``."""
    p.description = ("Evolve a zero-cost proxy program on NAS-Bench-201: Kendall tau on --archs "
                     "training architectures, reported on --heldout others.")
    p.add_argument("--archs", type=int, default=200, help="training architectures (fitness)")
    p.add_argument("--heldout", type=int, default=500, help="held-out architectures (reported only)")
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--population", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="samples, batch, initialisation and GP")
    p.add_argument("--dataset", default="cifar10", choices=list(DATASETS))
    p.add_argument("--C", dest="channels", type=int, default=16)
    p.add_argument("--N", dest="cells", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16, help="images per network pass")
    p.add_argument("--images", type=int, default=2,
                   help="images kept per activation in the tensor cache (0: all)")
    p.add_argument("--kinds", default=",".join(KINDS), help="input kinds: data, noise, mixed")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--data-source", default="auto", choices=SOURCES)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--cache-dir", default=None, help="tensor cache (default $KNAS_TENSOR_CACHE or "
                                                     "$KNAS_STATE_DIR/tensor-cache)")
    p.add_argument("--memory-gib", type=float, default=4.0,
                   help="hold the training tensors in memory up to this size, else stream them from disk")
    p.add_argument("--name", default=None, help="promote the best program to a proxy of this name")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=run)


#: Field of :class:`~knas_core.discovery.run.DiscoveryConfig` -> the flag that sets it.
FLAGS = {"archs": "--archs", "heldout": "--heldout", "generations": "--generations",
         "population": "--population", "seed": "--seed", "dataset": "--dataset", "C": "--C", "N": "--N",
         "batch_size": "--batch-size", "images": "--images", "kinds": "--kinds", "device": "--device",
         "data_source": "--data-source", "data_dir": "--data-dir", "cache_dir": "--cache-dir",
         "memory_gib": "--memory-gib"}


def run(args: argparse.Namespace) -> int:
    from knas_cli.fields import parse_config
    from knas_core.discovery.run import DiscoveryConfig, DiscoveryProgress, run_discovery
    from knas_core.optional import require
    from knas_core.proxies import PROXIES

    require("deap", "discovery", "knas evolve")  # before minutes of network passes, not after

    if args.name is not None and args.name in PROXIES:
        raise UsageError(f"proxy name {args.name!r} is taken; choose another --name")
    cfg = parse_config(DiscoveryConfig, {
        "archs": args.archs, "heldout": args.heldout, "generations": args.generations,
        "population": args.population, "seed": args.seed, "dataset": args.dataset, "C": args.channels,
        "N": args.cells, "batch_size": args.batch_size, "images": None if args.images == 0 else args.images,
        "kinds": [k.strip() for k in args.kinds.split(",") if k.strip()], "device": args.device,
        "data_source": args.data_source, "data_dir": args.data_dir, "cache_dir": args.cache_dir,
        "memory_gib": args.memory_gib}, FLAGS)
    if args.name is not None:
        from db.migrate import check_schema

        check_schema()  # before the run: the program is promoted into the store at the end
    bars = StageBars()

    def on_generation(gen) -> None:  # noqa: ANN001
        held = "n/a" if gen.heldout_kendall is None else f"{gen.heldout_kendall:.3f}"
        bars[DiscoveryProgress.EVOLVE].set_postfix_str(
            f"best {gen.best_fitness:.3f} mean {gen.mean_fitness:.3f} held-out {held}")

    with bars:
        result = run_discovery(cfg, bars, on_generation)
    if args.name:
        from db.discovery import promote
        from db.session import session_scope

        with session_scope() as session:
            promote(session, args.name, result["formula"], images=cfg.images, batch_size=cfg.batch_size,
                    train_kendall=result["train_kendall"], heldout_kendall=result["heldout_kendall"])
        result["name"] = args.name
    if args.json:
        print(json.dumps(result))
    else:
        held = result["heldout_kendall"]
        print(f"best program: {result['readable']}\n  program: {result['formula']}\n"
              f"  Kendall tau: train {result['train_kendall']:.3f} ({cfg.archs} archs), held-out "
              f"{'n/a' if held is None else f'{held:.3f}'} ({cfg.heldout} archs), "
              f"{cfg.generations} generations"
              + (f"\n  promoted as proxy {args.name!r}" if args.name else ""))
    return 0
