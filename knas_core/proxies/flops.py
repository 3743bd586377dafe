"""Floating-point operations of one forward pass, counted as NAS-Bench-201 counts them
(Dong & Yang, ICLR 2020; the ``#FLOPs`` of Abdelfattah et al. 2021, Table 1, and of
NAS-Bench-Suite-Zero).

Per input image, in multiply-accumulates:

* ``Conv2d``: ``C_out * H_out * W_out * C_in/groups * kH * kW``, plus ``C_out * H_out * W_out``
  when the convolution has a bias;
* ``Linear``: ``in * out``, plus ``out`` with a bias;
* ``AvgPool2d`` / ``MaxPool2d``: ``C * H_out * W_out * kH * kW`` (each window element read once).

Not counted (as in the benchmark's counter): BatchNorm, ReLU, additions of a cell's node sums and
adaptive (global) pooling. On the benchmark network an ``avg_pool_3x3`` edge costs about
1.3 MFLOPs over the 15 cells against 35.4 for a ``nor_conv_3x3`` edge, so unlike ``params`` the
count separates pooling from skip and none edges.
"""

from __future__ import annotations

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy

COUNTED = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.MaxPool2d)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[-1]))


def layer_flops(m: nn.Module, out: torch.Tensor) -> int:
    """Operations of ``m`` for one sample, given its output ``out`` (batch first)."""
    per_sample = out[0]
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        positions = per_sample[0].numel()  # H_out * W_out
        ops = per_sample.numel() * (m.in_channels // m.groups) * kh * kw
        return ops + (m.out_channels * positions if m.bias is not None else 0)
    if isinstance(m, nn.Linear):
        return m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)
    if isinstance(m, nn.AvgPool2d | nn.MaxPool2d):
        kh, kw = _pair(m.kernel_size)
        return per_sample.numel() * kh * kw
    return 0


class MacCounter:
    """Forward hooks on the counted layers, adding up :func:`layer_flops` of one sample.

    ``total`` grows with every forward the hooks see; :meth:`remove` detaches them.
    """

    def __init__(self, model: nn.Module) -> None:
        self.total = 0
        self._handles = [m.register_forward_hook(self._count) for m in model.modules()
                         if isinstance(m, COUNTED)]

    def _count(self, m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        self.total += layer_flops(m, out)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@register_proxy("flops", needs_labels=False, reference="Dong & Yang 2020 (NAS-Bench-201 #FLOPs); "
                "Abdelfattah et al. 2021, Table 1", shares_network=True)
def flops(model: nn.Module, batch: Batch) -> float:
    """Conv, linear and pooling operations for one input image (NAS-Bench-201's count)."""
    counter = MacCounter(model)
    try:
        with torch.no_grad():
            model(batch.inputs[:1])
    finally:
        counter.remove()
    return float(counter.total)
