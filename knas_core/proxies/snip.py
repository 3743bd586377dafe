"""SNIP saliency (Lee et al., ICLR 2019, Eq. 6), summed over the network as a zero-cost proxy
(Abdelfattah et al., ICLR 2021, Eq. 1)::

    score = sum_{Conv/Linear weights} | dL/dW (*) W |
"""

from __future__ import annotations

from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import backward_cross_entropy, prunable_layers


@register_proxy("snip", reference="Lee et al. 2019 (SNIP) Eq. 6; Abdelfattah et al. 2021 Eq. 1")
def snip(model: nn.Module, batch: Batch) -> float:
    """Sum of |dL/dW * W| over Conv/Linear weights."""
    backward_cross_entropy(model, batch)
    return float(sum((m.weight.grad * m.weight.detach()).abs().double().sum() for m in prunable_layers(model)
                     if m.weight.grad is not None))
