"""``knas search``: run a search strategy in-process with a progress bar."""

from __future__ import annotations

import argparse
import json

from knas_cli.errors import UsageError
from knas_cli.progress import StageBars
from knas_core.data import SOURCES
from knas_core.device import DEVICES
from knas_core.groundtruth import DATASETS
from knas_core.search import STRATEGIES
from knas_core.search.ensemble import DEFAULT_ENSEMBLE, RANKING_ENSEMBLE, format_members, parse_members
from knas_core.spaces import SPACES

#: The default score: the log-rank ensemble that the search benchmark measured best
#: (docs/RESULTS.md, Search strategies: 99th percentile on CIFAR-10, CIFAR-100 and
#: ImageNet16-120, where the KNAS paper's ``knas`` score reaches the 66th-78th), written as
#: ``--proxies`` takes it.
DEFAULT_PROXIES = format_members(list(DEFAULT_ENSEMBLE), DEFAULT_ENSEMBLE)
#: The weighted ensemble that ranks the whole space best (held-out Kendall tau 0.763).
RANKING_PROXIES = format_members(list(RANKING_ENSEMBLE), RANKING_ENSEMBLE)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``knas search``."""
    p.description = "Search NAS-Bench-201 (or a plugin's space) and report the architecture found."
    p.add_argument("--space", default="nb201", choices=SPACES.names(), help="search space (plugins add more)")
    p.add_argument("--strategy", default="knas", choices=STRATEGIES.names())
    p.add_argument("--dataset", default="cifar10", choices=list(DATASETS))
    p.add_argument("--samples", type=int, default=100, help="architectures scored (KNAS paper: 300)")
    p.add_argument("--topk", type=int, default=10, help="architectures evaluated")
    p.add_argument("--eval", default="lookup", choices=["lookup", "train"])
    p.add_argument("--epochs", type=int, default=12, help="training epochs with --eval train")
    p.add_argument("--train-subset", type=int, default=None, help="training images with --eval train")
    p.add_argument("--proxies", default=DEFAULT_PROXIES,
                   help="one proxy, or several for a log-rank ensemble, each NAME or NAME=WEIGHT "
                        f"(default: the best measured for search, {DEFAULT_PROXIES}; {RANKING_PROXIES} "
                        "ranks the whole space best; `--proxies knas --samples 300` is the KNAS paper's "
                        "method)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--data-source", default="auto", choices=SOURCES)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--C", dest="channels", type=int, default=16)
    p.add_argument("--N", dest="cells", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="NASI: optimisation steps T")
    p.add_argument("--hard", action="store_true",
                   help="NASI: straight-through hard Gumbel-softmax (one-hot forward; default: soft)")
    p.add_argument("--eta", type=float, default=None,
                   help="NASI: nu = sqrt(2) * classes / eta, the paper's definition (NAS-Bench-201 "
                        "trains with eta 0.1); default: the uniform supernet's trace on the first batch")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=run)


#: Field of :class:`~knas_core.search.config.SearchConfig` -> the flag that sets it.
FLAGS = {"strategy": "--strategy", "dataset": "--dataset", "samples": "--samples", "topk": "--topk",
         "eval": "--eval", "epochs": "--epochs", "train_subset": "--train-subset", "proxy": "--proxies",
         "proxies": "--proxies", "weights": "--proxies", "seed": "--seed", "batch_size": "--batch-size",
         "device": "--device",
         "data_source": "--data-source", "data_dir": "--data-dir", "model.C": "--C", "model.N": "--N",
         "strategy_options.steps": "--steps", "strategy_options.hard": "--hard",
         "strategy_options.eta": "--eta",
         "space": "--space"}


def nasi_options(args: argparse.Namespace) -> dict[str, int | float | bool]:
    """``strategy_options`` from ``--steps``, ``--hard`` and ``--eta`` (only those given)."""
    options: dict[str, int | float | bool] = {}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.hard:
        options["hard"] = True
    if args.eta is not None:
        options["eta"] = args.eta
    return options


def config_from_args(args: argparse.Namespace) -> dict:
    """The search's config fields from the options (validated by :class:`SearchConfig`).

    Raises :class:`~knas_cli.errors.UsageError` for a ``--proxies`` item that is not ``NAME``
    or ``NAME=WEIGHT``."""
    try:
        proxies, weights = parse_members(args.proxies)
    except ValueError as exc:
        raise UsageError(f"--proxies: {exc}") from None
    raw = {"strategy": args.strategy, "dataset": args.dataset, "samples": args.samples, "topk": args.topk,
           "eval": args.eval, "epochs": args.epochs, "train_subset": args.train_subset, "seed": args.seed,
           "batch_size": args.batch_size, "device": args.device, "data_source": args.data_source,
           "data_dir": args.data_dir, "model": {"C": args.channels, "N": args.cells},
           "strategy_options": nasi_options(args),
           "space": args.space}
    if len(proxies) == 1 and not weights:
        raw["proxy"] = proxies[0]
    else:
        raw["proxies"] = proxies  # several: a log-rank ensemble; none: refused
    if weights:
        raw["weights"] = weights  # refused with one proxy
    return raw


def run(args: argparse.Namespace) -> int:
    from knas_cli.fields import parse_config
    from knas_core.search.config import SearchConfig
    from knas_core.search.run import SearchRun

    search = SearchRun(parse_config(SearchConfig, config_from_args(args), FLAGS))
    with StageBars() as bars:
        result = search.run(bars)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "trace"}))
    elif result["test_acc"] is None:  # a space without a benchmark table
        print(f"{result['strategy']}: {result['arch']} (index {result['index']}); {result['eval']} "
              f"accuracy {result['accuracy']:.2f} on {args.dataset}; {result['seconds']:.1f} s")
    else:
        acc = ", ".join(f"{k} {v:.2f}" for k, v in result["test_acc"].items())
        print(f"{result['strategy']}: {result['arch']} (index {result['index']}); 200-epoch test "
              f"accuracy {acc}; percentile {result['percentile']:.1f} on {args.dataset}; "
              f"{result['seconds']:.1f} s")
    return 0
