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


@register_proxy("flops", needs_labels=False, reference="Abdelfattah et al. 2021, Table 1 (#FLOPs)",
                shares_network=True)
def flops(model: nn.Module, batch: Batch) -> float:
    """Conv/Linear multiply-accumulates for one input image."""
    total = 0

    def count(m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total += out[0].numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(batch.inputs[:1])
    finally:
        for h in handles:
            h.remove()
    return float(total)
