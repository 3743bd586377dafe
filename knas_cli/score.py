"""``knas score``: score architectures with proxies, one JSON object per line."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from typing import IO, TYPE_CHECKING

from tqdm import tqdm

from knas_cli.errors import UsageError
from knas_core.data import SOURCES
from knas_core.device import DEVICES
from knas_core.groundtruth import DATASETS
from knas_core.proxies import get_proxy, proxy_names
from knas_core.scoring import Scorer
from knas_core.spaces import SPACES, open_space

if TYPE_CHECKING:
    from knas_core.spaces import SearchSpace


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``knas score``."""
    p.description = "Score architectures; writes one JSON object per line."
    which = p.add_mutually_exclusive_group()
    which.add_argument("--archs", type=int, metavar="N", help="score N architectures sampled by --seed")
    which.add_argument("--arch", action="append", metavar="STR", help="an architecture string (repeatable)")
    which.add_argument("--indices", metavar="I,J,...", help="official indices, comma-separated")
    p.add_argument("--space", default="nb201", choices=SPACES.names())
    p.add_argument("--proxies", default="knas", metavar="A,B,...",
                   help=f"comma-separated; available: {', '.join(proxy_names())}")
    p.add_argument("--dataset", default="cifar10", choices=list(DATASETS))
    p.add_argument("--data-source", default="auto", choices=SOURCES)
    p.add_argument("--data-dir", default=None, help="data root (default: look-up order, see README)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="fixes the sample, the batch and the init")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--C", dest="channels", type=int, default=16, help="stem width (benchmark: 16)")
    p.add_argument("--N", dest="cells", type=int, default=5, help="cells per stage (benchmark: 5)")
    p.add_argument("--out", default=None, metavar="F.jsonl", help="output file (default: stdout)")
    p.set_defaults(run=run)


def _targets(args: argparse.Namespace, space: SearchSpace) -> list[tuple[str, int | None]]:
    if args.arch:
        out = []
        for a in args.arch:
            arch = space.validate(a)
            try:
                index = space.index_of(arch)
            except Exception:  # noqa: BLE001 - no index table: strings still work
                index = None
            out.append((arch, index))
        return out
    if args.indices:
        try:
            indices = [int(i) for i in args.indices.split(",") if i.strip()]
        except ValueError:
            raise UsageError(f"--indices must be comma-separated integers, got {args.indices!r}") from None
        return [(space.arch_at(i), i) for i in indices]
    n = 10 if args.archs is None else args.archs
    if n < 1:
        raise UsageError(f"--archs must be at least 1, got {n}")
    return [(a, space.index_of(a)) for a in space.sample(n, args.seed)]


def run(args: argparse.Namespace) -> int:
    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]
    if not proxies:
        raise UsageError("--proxies is empty; name at least one proxy")
    for name in proxies:
        get_proxy(name)  # unknown names fail here, before any work
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    if not 1 <= args.channels <= 256:  # the bounds of a search's model options
        raise UsageError(f"--C (stem width) must be between 1 and 256, got {args.channels}")
    if not 0 <= args.cells <= 20:
        raise UsageError(f"--N (cells per stage) must be between 0 and 20, got {args.cells}")
    # With an ImageFolder, --data-dir names the images; the index table is looked up as usual.
    table_dir = None if args.data_source == "imagefolder" else args.data_dir
    space = open_space(args.space, data_dir=table_dir)
    targets = _targets(args, space)
    scorer = Scorer(args.dataset, space=space, batch_size=args.batch_size, seed=args.seed,
                    device=args.device, data_source=args.data_source, data_dir=args.data_dir,
                    model_options={"C": args.channels, "N": args.cells})
    print(f"images: {scorer.source.description} [{scorer.source.identity}]", file=sys.stderr)
    sink: IO[str]
    with (open(args.out, "w", encoding="utf-8") if args.out else nullcontext(sys.stdout)) as sink:
        for arch, index in tqdm(targets, desc="scoring", unit="arch", file=sys.stderr):
            record = {**scorer.score(arch, proxies, index=index).to_record(), "data": scorer.source.identity}
            sink.write(json.dumps(record) + "\n")
            sink.flush()
    return 0
