"""``knas data``: fetch the full CIFAR sets, and show which data is found where."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from knas_cli.errors import UsageError
from knas_core.datasets import FETCHABLE, FetchError, data_status, fetch_dataset


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The actions of ``knas data`` and their options."""
    p.description = ("`knas data fetch cifar10` downloads the full set; `knas data status` lists "
                     "the look-up order and what each root holds.")
    actions = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    fetch = actions.add_parser(
        "fetch", help="download CIFAR-10/100 (train and test) with torchvision",
        description="Downloads into --dir, else $KNAS_DATA_DIR, else the user cache "
                    "($KNAS_CACHE_DIR or ~/.cache/knas-studio/data). Without internet: put the "
                    "official archive (e.g. cifar-10-python.tar.gz) in that folder first; it is "
                    "checked and extracted without network.")
    fetch.add_argument("dataset", choices=list(FETCHABLE))
    fetch.add_argument("--dir", default=None, metavar="DIR", help="where to put it")
    fetch.set_defaults(run=run_fetch)

    status = actions.add_parser(
        "status", help="the data roots in look-up order, what each holds, which images a search uses",
        description="Human-readable by default; --json prints one object {roots, table, datasets}.")
    status.add_argument("--data-dir", default=None,
                        help="an explicit data root, searched first (as the other commands' option)")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(run=run_status)


def run_fetch(args: argparse.Namespace) -> int:
    try:
        fetched = fetch_dataset(args.dataset, args.dir)
    except FetchError as exc:
        raise UsageError(str(exc)) from None
    print(f"{fetched.dataset}: {fetched.train_images:,} train + {fetched.test_images:,} test images "
          f"in {fetched.path}")
    return 0


def _count(item: dict[str, Any]) -> str:
    count = item.get("count") or {}
    if "rows" in count:
        return f"{count['rows']:,} rows"
    if not count:
        return ""
    splits = sorted(count.items(), key=lambda kv: kv[0] != "train")  # train first
    return " + ".join(f"{n:,} {split}" for split, n in splits) + " images"


def format_status(status: dict[str, Any]) -> str:
    """The human-readable form of :func:`knas_core.datasets.data_status`."""
    lines = ["Data roots, in look-up order (first hit wins):"]
    for i, root in enumerate(status["roots"], 1):
        state = "" if root["exists"] else "  (missing)"
        lines.append(f"{i}. {root['origin']}: {root['path']}{state}")
        if root["exists"] and not root["items"]:
            lines.append("     (nothing KNAS uses)")
        for item in root["items"]:
            extra = "; ".join(x for x in (_count(item), item["note"]) if x)
            lines.append(f"     {item['kind']:<11} {item['path']}  {item['size_mb']:.1f} MB"
                         + (f"  {extra}" if extra else ""))
    table = status["table"]
    lines.append("")
    if "error" in table:
        lines.append(f"Benchmark table: not found: {table['error']}")
    else:
        lines.append(f"Benchmark table: {table['rows']:,} rows, {table['size_mb']:.1f} MB "
                     f"({table['origin']}: {table['path']})")
    lines.append("Images a search would use (--data-source auto):")
    for entry in status["datasets"]:
        if "error" in entry:
            lines.append(f"  {entry['dataset']:<15} not found: {entry['error']}")
        else:
            lines.append(f"  {entry['dataset']:<15} {entry['description']}")
            lines.append(f"  {'':<15} identity {entry['identity']}")
    return "\n".join(lines)


def run_status(args: argparse.Namespace) -> int:
    status = data_status(args.data_dir)
    if args.json:
        json.dump(status, sys.stdout)
        print()
    else:
        print(format_status(status))
    return 0
