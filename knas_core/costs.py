"""Size and cost of NAS-Bench-201 networks without building one per architecture.

Every edge of every cell runs at its stage's width and resolution whatever the other edges
hold, and the stem, the residual blocks and the head do not depend on the cell. So the
``flops`` proxy's count (:mod:`knas_core.proxies.flops`, NAS-Bench-201's ``#FLOPs``: Dong &
Yang, ICLR 2020) is additive over edges::

    FLOPs(cell) = FLOPs(all-none cell) + sum over the 6 edges of extra(op on the edge)

where ``extra(op)`` is what one edge holding ``op`` adds over ``none`` across all ``3N`` cells.
:func:`flops_model` measures the base and the four extras once per data set and network size (five
networks, counted with the proxy's own :class:`~knas_core.proxies.flops.MacCounter`), after which
:func:`nb201_flops` prices any of the 15,625 cells in microseconds; ``tests/test_costs.py``
checks the sum against the counter on whole networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from knas_core.data import IMAGE_SIZE, NUM_CLASSES
from knas_core.groundtruth import canonical_dataset
from knas_core.spaces.nb201 import NUM_EDGES, OPS, parse_arch


@dataclass(frozen=True)
class FlopsModel:
    """``base``: MFLOPs of the all-``none`` network; ``extra[op]``: MFLOPs one edge holding ``op``
    adds over ``none`` (``none`` itself: 0). Per input image, in multiply-accumulates."""

    dataset: str
    base: float
    extra: dict[str, float]

    def flops(self, arch: str) -> float:
        """MFLOPs of the network of cell ``arch`` (raises for an invalid string)."""
        return self.base + sum(self.extra[op] for op in parse_arch(arch))


def count_flops(arch: str, dataset: str, C: int = 16, N: int = 5) -> float:
    """MFLOPs of one network, counted by running it once (the ``flops`` proxy's counter)."""
    from knas_core.models.nb201 import NB201Network
    from knas_core.proxies.flops import MacCounter

    ds = canonical_dataset(dataset)
    model = NB201Network(parse_arch(arch), num_classes=NUM_CLASSES[ds], C=C, N=N).eval()
    counter = MacCounter(model)
    side = IMAGE_SIZE[ds]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, side, side))
    finally:
        counter.remove()
    return counter.total / 1e6


def _single_edge(op: str) -> str:
    from knas_core.spaces.nb201 import format_arch

    return format_arch((op,) + ("none",) * (NUM_EDGES - 1))


@lru_cache(maxsize=16)
def flops_model(dataset: str, C: int = 16, N: int = 5) -> FlopsModel:
    """The additive FLOPs model of the benchmark network on ``dataset`` (cached per process)."""
    ds = canonical_dataset(dataset)
    base = count_flops(_single_edge("none"), ds, C, N)
    extra = {op: (count_flops(_single_edge(op), ds, C, N) - base if op != "none" else 0.0) for op in OPS}
    return FlopsModel(ds, base, extra)


def nb201_flops(arch: str, dataset: str, C: int = 16, N: int = 5) -> float:
    """MFLOPs of the NAS-Bench-201 network of ``arch`` on ``dataset`` (see :class:`FlopsModel`)."""
    return flops_model(dataset, C, N).flops(arch)
