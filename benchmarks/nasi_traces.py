"""Where NASI's constraint ``nu`` sits among the trace norms its penalty compares it with.

Builds the supernet and the first batch exactly as the ``nasi`` strategy does for a seed
(C=16, N=5, batch 64), then prints the trace-norm approximation ``T`` (Shu et al. 2022, Eq. 12:
``|| d CE / d theta ||^2`` of the mini-batch loss) of the uniformly mixed supernet (our default
``nu``), the paper's ``nu = sqrt(2) * classes / eta`` (Sec. 3.3), ``T`` of each architecture
given (one-hot weights in the same supernet: what a hard Gumbel-softmax step evaluates), and
the quartiles of ``T`` over uniformly drawn architectures.

    python benchmarks/nasi_traces.py --dataset cifar10 --seed 0 --random 20 \\
        --archs "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from knas_core.data import load_source
from knas_core.models.nb201 import NB201SuperNetwork
from knas_core.scoring import seed_everything
from knas_core.search.nasi import nu_from_learning_rate, trace_norm, uniform_supernet_nu
from knas_core.spaces.nb201 import OPS, format_arch, parse_arch


def one_hot(arch: str) -> torch.Tensor:
    """The (6, 5) mixing weights that select ``arch``'s operation on every edge."""
    return F.one_hot(torch.tensor([OPS.index(op) for op in parse_arch(arch)]), len(OPS)).float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--eta", type=float, default=0.1, help="learning rate of the paper's nu")
    ap.add_argument("--archs", default="", help="architectures to measure, separated by ';'")
    ap.add_argument("--random", type=int, default=20, help="uniformly drawn architectures")
    args = ap.parse_args()

    print(f"# machine: {platform.node()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    first = load_source(args.dataset).batch(args.batch_size, args.seed)  # as NASISearch.search
    seed_everything(args.seed)
    net = NB201SuperNetwork(OPS, num_classes=first.num_classes).train()
    x, y = first.inputs, first.targets
    print(f"nu, uniform supernet's T (default): {uniform_supernet_nu(net, x, y):.2f}")
    print(f"nu = sqrt(2) * {first.num_classes} / {args.eta:g} (paper, Sec. 3.3): "
          f"{nu_from_learning_rate(args.eta, first.num_classes):.2f}")
    for arch in filter(None, (a.strip() for a in args.archs.split(";"))):
        print(f"T {float(trace_norm(net, x, y, one_hot(arch)).detach()):9.2f}  {arch}")
    rng = np.random.default_rng(args.seed)
    drawn = [format_arch([OPS[i] for i in rng.integers(0, len(OPS), 6)]) for _ in range(args.random)]
    traces = np.array([float(trace_norm(net, x, y, one_hot(a)).detach()) for a in drawn])
    if len(traces):
        q = np.percentile(traces, [0, 25, 50, 75, 100])
        print(f"T of {len(traces)} uniformly drawn architectures: min {q[0]:.2f}, quartiles {q[1]:.2f} / "
              f"{q[2]:.2f} / {q[3]:.2f}, max {q[4]:.2f}")


if __name__ == "__main__":
    main()
