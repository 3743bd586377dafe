"""``knas correlate``: rank agreement of scored architectures with benchmark accuracies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from knas_cli.errors import UsageError
from knas_core.evaluation import correlate_records, read_records
from knas_core.groundtruth import DATASETS, METRICS, GroundTruth


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``knas correlate``."""
    p.description = ("Prints one JSON object: {n, proxies: {proxy: {kendall, spearman, "
                     "top10_precision, dropped}}}.")
    p.add_argument("scores", metavar="F.jsonl", help="output of `knas score`")
    p.add_argument("--dataset", default="cifar10", choices=list(DATASETS))
    p.add_argument("--metric", default="test", choices=list(METRICS),
                   help="200-epoch test or validation accuracy, or the 12-epoch validation")
    p.add_argument("--data-dir", default=None, help="where nb201/nb201_accuracies.csv lives")
    p.add_argument("--benchmark-file", default=None, metavar="NB201.pth",
                   help="official NAS-Bench-201 .pth (needs the nb201 extra: nas-bench-201)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.scores)
    if not path.is_file():
        raise UsageError(f"score file {str(path)!r} not found; create it with `knas score --out {path}`")
    if args.benchmark_file:
        truth = GroundTruth.from_pth(args.benchmark_file)
    else:
        truth = GroundTruth.load(args.data_dir)
    records = list(read_records(path))
    if not records:
        raise UsageError(f"{path} holds no records")
    try:
        result = correlate_records(records, truth, args.dataset, args.metric)
    except KeyError as exc:
        raise UsageError(f"{path}: architecture {exc} is not in the benchmark table") from None
    print(json.dumps(result))
    return 0
