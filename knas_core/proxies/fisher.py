"""Fisher information of activations (Theis et al. 2018, Eq. 4; Turner et al., BlockSwap, ICLR
2020), summed per weight as a zero-cost proxy (Abdelfattah et al., ICLR 2021, Sec. 3)::

    F_{l,c} = 1/2 * mean_n ( sum_{h,w} a_{nchw} * dL/da_{nchw} )^2
    score   = sum_l sum_c |F_{l,c}| * fan_in_l

over the outputs ``a`` of every Conv/Linear layer (before BatchNorm). The zero-cost proxies
are per-weight saliencies summed over the network, so the reference implementation (the code
released with Abdelfattah et al., which NAS-Bench-Suite-Zero uses) copies each channel's value
onto every weight of that channel before summing: a channel counts ``fan_in_l`` times
(``C_in/groups * kH * kW`` for a convolution, ``in_features`` for a linear layer).

Only the layer outputs' gradients are needed: the loss backward stops there and computes no
weight gradient (:mod:`knas_core.proxies.second_order` has the steps it shares with the shared
passes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.second_order import LayerOutputs, fisher_of


@register_proxy("fisher", reference="Theis et al. 2018 Eq. 4; Abdelfattah et al. 2021, Sec. 3 "
                "(per-weight sum, as their released code)", shares_network=True)
def fisher(model: nn.Module, batch: Batch) -> float:
    """Sum over weights of the activation Fisher information of their output channel."""
    outputs = LayerOutputs(model)
    try:
        logits = model(batch.inputs)
    finally:
        outputs.remove()
    if not outputs.calls:
        return 0.0
    loss = F.cross_entropy(logits, batch.targets)
    return fisher_of(outputs, torch.autograd.grad(loss, outputs.tensors, allow_unused=True))
