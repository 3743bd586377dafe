"""Multiply-accumulate count of one forward pass (Abdelfattah et al. 2021, Table 1, #FLOPs).

Counts Conv2d (``C_out * H_out * W_out * C_in/groups * kH * kW``) and Linear (``in * out``)
multiply-accumulates for one input of the batch's image shape; pooling, BN and additions are
not counted, matching the usual NAS-Bench-201 convention.
"""

from __future__ import annotations

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import prunable_layers


class MacCounter:
    """Conv/Linear forward hooks counting the multiply-accumulates of one sample of a forward.

    ``total`` grows with every forward the hooks see; :meth:`remove` detaches them.
    """

    def __init__(self, model: nn.Module) -> None:
        self.total = 0
        self._handles = [m.register_forward_hook(self._count) for m in prunable_layers(model)]

    def _count(self, m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            self.total += out[0].numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, nn.Linear):
            self.total += m.in_features * m.out_features

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@register_proxy("flops", needs_labels=False, reference="Abdelfattah et al. 2021, Table 1 (#FLOPs)",
                shares_network=True)
def flops(model: nn.Module, batch: Batch) -> float:
    """Conv/Linear multiply-accumulates for one input image."""
    counter = MacCounter(model)
    try:
        with torch.no_grad():
            model(batch.inputs[:1])
    finally:
        counter.remove()
    return float(counter.total)
