"""``knas calibrate``: fit a few-shot ranking model on labelled architectures, save it as the
proxy ``calibrated:NAME`` and rank the other architectures with it.

Labels come from the user's CSV (``--labels``) or are looked up in the benchmark table for
``--lookup N`` architectures sampled by ``--seed``. Member proxy values come from a long-format
scores file (``--scores``: ``index,proxy,value`` rows, the score atlas export) or are scored
in-process (then ``--candidates M`` further sampled architectures are scored and ranked).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knas_cli.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from knas_core.calibration import LabelSource
    from knas_core.groundtruth import GroundTruth
    from knas_core.spaces import SearchSpace

#: The in-process members by default: the best measured training-free ensemble's proxies.
DEFAULT_PROXIES = "synflow,params,eznas"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``knas calibrate`` (nothing heavy is imported here)."""
    p.description = ("Fit a few-shot ranking model (a Gaussian process on the proxies and the "
                     "NB201 cell's structure, from the proxies' log-rank ensemble) on labelled "
                     "architectures, save it as proxy "
                     "calibrated:NAME in $KNAS_STATE_DIR/calibrated, and rank the other "
                     "architectures. Prints one JSON object.")
    p.add_argument("name", metavar="NAME", help="the model's name: usable as proxy calibrated:NAME")
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", metavar="F.csv",
                        help="your labels: columns arch (or index) and accuracy (see --label-column)")
    labels.add_argument("--lookup", type=int, metavar="N",
                        help="label N architectures sampled by --seed from the benchmark table")
    p.add_argument("--label-column", default="accuracy", help="the labels' column in --labels")
    p.add_argument("--scores", metavar="F.csv[.gz]",
                   help="long-format scores (index,proxy,value rows); default: score in-process")
    p.add_argument("--proxies", default=None, metavar="A,B,...",
                   help=f"member proxies (default: every proxy of --scores; in-process {DEFAULT_PROXIES})")
    p.add_argument("--candidates", type=int, default=100, metavar="M",
                   help="in-process: also score M architectures sampled by --seed and rank them")
    p.add_argument("--dataset", default="cifar10", help="benchmark labels (--lookup) and in-process scoring")
    p.add_argument("--metric", default="test",
                   help="--lookup's accuracy: test (200 epochs), valid, valid_12ep")
    p.add_argument("--seed", type=int, default=0, help="sample of --lookup/--candidates; scoring seed")
    p.add_argument("--batch-size", type=int, default=64, help="in-process scoring batch")
    p.add_argument("--device", default="auto", help="in-process scoring device")
    p.add_argument("--data-dir", default=None, help="data root (benchmark table and images)")
    p.add_argument("--out", default=None, metavar="F.csv",
                   help="the ranking of the unlabelled architectures (default: NAME-ranking.csv)")
    p.add_argument("--replace", action="store_true",
                   help="replace a saved model of this name (scores a search stored under it stay)")
    p.set_defaults(run=run)


def _proxy_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--proxies is empty; name at least one proxy")
    return names


def _file_labels(args: argparse.Namespace, space: SearchSpace) -> tuple[dict[int, float], LabelSource]:
    from knas_core.calibration import LabelSource, read_labels

    path = Path(args.labels)
    if not path.is_file():
        raise UsageError(f"labels file {str(path)!r} not found")
    return read_labels(path, space, args.label_column), LabelSource("file", str(path), args.label_column)


def _from_scores_file(args: argparse.Namespace, space: SearchSpace, truth: GroundTruth
                      ) -> tuple[pd.DataFrame, dict[int, float], LabelSource, dict[str, Any]]:
    """Member values of every architecture of the file, the labels, their source, the set-up."""
    from knas_core.calibration import draw_indices, lookup_labels, read_long_scores, select_proxies

    path = Path(args.scores)
    if not path.is_file():
        raise UsageError(f"scores file {str(path)!r} not found")
    table = read_long_scores(path)
    values = select_proxies(table, _proxy_list(args.proxies), str(path))
    if args.lookup is not None:
        if not 0 < args.lookup < len(values):
            raise UsageError(f"--lookup must be between 1 and {len(values) - 1} (the file scores "
                             f"{len(values)} architectures), got {args.lookup}")
        chosen = draw_indices(values.index, args.lookup, args.seed)
        labels, source = lookup_labels(truth, chosen, args.dataset, args.metric)
    else:
        labels, source = _file_labels(args, space)
    return values, labels, source, {"file": str(path), **table.setup}


def _in_process(args: argparse.Namespace, space: SearchSpace, truth: GroundTruth
                ) -> tuple[pd.DataFrame, dict[int, float], LabelSource, dict[str, Any]]:
    """Score the labelled architectures and ``--candidates`` sampled others in this process."""
    import pandas as pd
    from tqdm import tqdm

    from knas_core.calibration import lookup_labels
    from knas_core.proxies import get_proxy
    from knas_core.scoring import Scorer

    proxies = _proxy_list(args.proxies) or DEFAULT_PROXIES.split(",")
    for name in proxies:
        get_proxy(name)
    if args.candidates < 0:
        raise UsageError(f"--candidates cannot be negative, got {args.candidates}")
    if args.lookup is not None:
        if not 0 < args.lookup <= space.size - args.candidates:
            raise UsageError(f"--lookup must be between 1 and {space.size - args.candidates}, "
                             f"got {args.lookup}")
        sample = [space.index_of(a) for a in space.sample(args.lookup + args.candidates, args.seed)]
        labels, source = lookup_labels(truth, sample[:args.lookup], args.dataset, args.metric)
        others = sample[args.lookup:]
    else:
        labels, source = _file_labels(args, space)
        drawn = space.sample(min(space.size, len(labels) + args.candidates), args.seed)
        pool = [space.index_of(a) for a in drawn]
        others = [i for i in pool if i not in labels][:args.candidates]
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    scorer = Scorer(args.dataset, space=space, batch_size=args.batch_size, seed=args.seed,
                    device=args.device, data_dir=args.data_dir)
    rows = {}
    for index in tqdm([*labels, *others], desc="scoring", unit="arch", file=sys.stderr):
        result = scorer.score(space.arch_at(index), proxies, index=index)
        rows[index] = {p: r.value for p, r in result.results.items()}
    values = pd.DataFrame.from_dict(rows, orient="index", columns=proxies, dtype=float)
    setup = {"in_process": True, "dataset": scorer.dataset, "batch_size": args.batch_size,
             "seed": args.seed, "device": scorer.device.type, "data": scorer.source.identity}
    return values, labels, source, setup


def run(args: argparse.Namespace) -> int:
    from knas_core.calibration import calibrate, check_name, require_sklearn, save_calibrated
    from knas_core.groundtruth import GroundTruth, accuracy_column, canonical_dataset
    from knas_core.proxies import CALIBRATED_PREFIX
    from knas_core.spaces import open_space

    require_sklearn()  # a missing extra is said before any work
    name = check_name(args.name)
    args.dataset = canonical_dataset(args.dataset)
    accuracy_column(args.dataset, args.metric)  # an unknown metric is said before any work
    if args.lookup is not None and args.lookup < 1:
        raise UsageError(f"--lookup must be at least 1, got {args.lookup}")
    truth = GroundTruth.load(args.data_dir)
    space = open_space("nb201", archs_in_index_order=truth.archs)
    if args.scores:
        values, labels, source, setup = _from_scores_file(args, space, truth)
    else:
        values, labels, source, setup = _in_process(args, space, truth)
    result = calibrate(values, labels, space, source=source, setup=setup, seed=args.seed,
                       where=args.scores or "the scored architectures")
    path = save_calibrated(result.model, name, replace=args.replace)
    out = Path(args.out or f"{name}-ranking.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.ranking.to_csv(out, index=False)
    print(json.dumps({"proxy": CALIBRATED_PREFIX + name, "model": str(path), "k": result.model.provenance.k,
                      "labels_dropped": result.dropped, "ranked": len(result.ranking), "ranking": str(out),
                      "description": result.model.describe()}))
    return 0
