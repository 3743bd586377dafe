"""The NAS-Bench-201 network exactly as the benchmark trained it (Dong & Yang, ICLR 2020, Sec. 2.1).

Macro skeleton (for ``C=16, N=5``)::

    stem: Conv3x3(3 -> C, no bias) + BN
    N cells at C  | residual block C -> 2C, stride 2 | N cells at 2C
                  | residual block 2C -> 4C, stride 2 | N cells at 4C
    head: BN - ReLU - global average pool - Linear(4C -> classes)

Cell operations: ``nor_conv_kxk`` = ReLU - Conv(no bias) - BN(affine); ``avg_pool_3x3`` =
AvgPool(3, stride 1, pad 1, ``count_include_pad=False``); ``skip_connect`` = identity;
``none`` = zero. Node ``i`` sums its incoming edges; the cell outputs node 3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import nn

from knas_core.errors import ConfigError


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d(bias=False) -> BatchNorm2d(affine): the benchmark's convolution unit."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
        )


class Zero(nn.Module):
    """The ``none`` operation: an all-zero tensor of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    """One cell edge operation at ``channels`` width (stride 1, as in every NB201 cell)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown operation {name!r}")


class Cell(nn.Module):
    """A NAS-Bench-201 cell: 4 nodes, 6 edges ``(j -> i)`` in string order."""

    EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.op_names = tuple(ops)
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[k](nodes[src])
                             for k, (src, dst) in enumerate(self.EDGES) if dst == target))
        return nodes[3]


class ResidualBlock(nn.Module):
    """Reduction block between stages: two ReLU-Conv3x3-BN, shortcut AvgPool2x2 + Conv1x1."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class _Skeleton(nn.Module):
    """Stem, three stages of ``N`` cells separated by residual blocks, and the head."""

    def __init__(self, make_cell: Callable[[int], nn.Module], num_classes: int, C: int, N: int) -> None:
        super().__init__()
        if C < 1 or N < 0:
            raise ConfigError(f"need C >= 1 and N >= 0, got C={C}, N={N}")
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        c = C
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualBlock(c, 2 * c))
                c *= 2
            layers.extend(make_cell(c) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.lastact(h)).flatten(1))


class NB201Network(_Skeleton):
    """The benchmark network for one cell.

    Args:
        ops: the 6 edge operations (see :func:`knas_core.spaces.nb201.parse_arch`).
        num_classes: output width (10 / 100 / 120).
        C: stem width (benchmark: 16). N: cells per stage (benchmark: 5).

    Input ``(batch, 3, H, W)`` images; output ``(batch, num_classes)`` logits.
    """

    def __init__(self, ops: Sequence[str], num_classes: int = 10, C: int = 16, N: int = 5) -> None:
        super().__init__(lambda c: Cell(ops, c), num_classes, C, N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


class MixedCell(nn.Module):
    """A cell whose every edge holds all 5 operations, mixed by per-edge weights (6, 5)."""

    def __init__(self, channels: int, ops: Sequence[str]) -> None:
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleList(make_op(op, channels) for op in ops)
                                   for _ in Cell.EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            mixed = sum(weights[k, o] * op(nodes[src])
                        for k, (src, dst) in enumerate(Cell.EDGES) if dst == target
                        for o, op in enumerate(cast(nn.ModuleList, self.edges[k])))
            nodes.append(cast(torch.Tensor, mixed))  # every node has an incoming edge: never 0
        return nodes[3]


class NB201SuperNetwork(_Skeleton):
    """One-shot supernet of the space (the same skeleton, :class:`MixedCell` cells sharing one
    set of architecture weights): ``forward(x, weights)`` with ``weights`` of shape (6, 5)."""

    def __init__(self, ops: Sequence[str], num_classes: int = 10, C: int = 16, N: int = 5) -> None:
        super().__init__(lambda c: MixedCell(c, ops), num_classes, C, N)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for layer in self.cells:
            h = layer(h, weights) if isinstance(layer, MixedCell) else layer(h)
        return self.head(h)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the benchmark's ``params`` is this / 1e6)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
