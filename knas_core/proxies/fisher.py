"""Fisher information of activations (Theis et al. 2018, Eq. 4; Turner et al., BlockSwap, ICLR
2020), summed as a zero-cost proxy (Abdelfattah et al., ICLR 2021, Sec. 3)::

    score = sum_l sum_c 1/2 * mean_n ( sum_{h,w} a_{nchw} * dL/da_{nchw} )^2

over the outputs ``a`` of every Conv/Linear layer (before BatchNorm).
"""

from __future__ import annotations

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import backward_cross_entropy, prunable_layers


@register_proxy("fisher", reference="Theis et al. 2018 Eq. 4; Abdelfattah et al. 2021, Sec. 3",
                shares_network=True)
def fisher(model: nn.Module, batch: Batch) -> float:
    """Sum over channels of 0.5 * mean_n (sum_hw act * grad)^2 at every Conv/Linear output."""
    outputs: list[torch.Tensor] = []

    def keep_output(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        out.retain_grad()
        outputs.append(out)

    handles = [m.register_forward_hook(keep_output) for m in prunable_layers(model)]
    try:
        backward_cross_entropy(model, batch)
    finally:
        for h in handles:
            h.remove()
    total = torch.zeros((), dtype=torch.float64)
    for a in outputs:
        if a.grad is None:
            continue
        prod = (a.detach() * a.grad).double()
        per_channel = prod.sum(dim=(2, 3)) if prod.dim() == 4 else prod
        total = total + (0.5 * per_channel.pow(2).mean(dim=0)).sum().cpu()
    return float(total)
