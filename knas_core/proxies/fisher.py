"""Fisher information of activations (Theis et al. 2018, Eq. 4; Turner et al., BlockSwap, ICLR
2020), summed per weight as a zero-cost proxy (Abdelfattah et al., ICLR 2021, Sec. 3)::

    F_{l,c} = 1/2 * mean_n ( sum_{h,w} a_{nchw} * dL/da_{nchw} )^2
    score   = sum_l sum_c |F_{l,c}| * fan_in_l

over the outputs ``a`` of every Conv/Linear layer (before BatchNorm). The zero-cost proxies
are per-weight saliencies summed over the network, so the reference implementation (the code
released with Abdelfattah et al., which NAS-Bench-Suite-Zero uses) copies each channel's value
onto every weight of that channel before summing: a channel counts ``fan_in_l`` times
(``C_in/groups * kH * kW`` for a convolution, ``in_features`` for a linear layer).
"""

from __future__ import annotations

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import backward_cross_entropy, prunable_layers


def channel_fisher(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``F_c = 0.5 * mean_n (sum_hw a * dL/da)^2`` of a layer output ``act`` (N, C[, H, W])
    and its gradient; shape (C,), float64."""
    prod = (act.detach() * grad).double()
    per_sample = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
    return 0.5 * per_sample.pow(2).mean(dim=0)


@register_proxy("fisher", reference="Theis et al. 2018 Eq. 4; Abdelfattah et al. 2021, Sec. 3 "
                "(per-weight sum, as their released code)", shares_network=True)
def fisher(model: nn.Module, batch: Batch) -> float:
    """Sum over weights of the activation Fisher information of their output channel."""
    layers = list(prunable_layers(model))
    outputs: dict[int, list[torch.Tensor]] = {}

    def keep_output(m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        out.retain_grad()
        outputs.setdefault(id(m), []).append(out)  # a layer called twice adds both calls

    handles = [m.register_forward_hook(keep_output) for m in layers]
    try:
        backward_cross_entropy(model, batch)
    finally:
        for h in handles:
            h.remove()
    total = torch.zeros((), dtype=torch.float64)
    for m in layers:
        calls = [(a, a.grad) for a in outputs.get(id(m), []) if a.grad is not None]
        if not calls:
            continue  # not reached by the loss: zero, as in the reference
        per_channel = torch.stack([channel_fisher(a, g) for a, g in calls]).sum(0)
        total = total + (per_channel.abs().sum() * m.weight[0].numel()).cpu()
    return float(total)
