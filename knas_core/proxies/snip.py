"""SNIP saliency (Lee et al., ICLR 2019, Eq. 6), summed over the network as a zero-cost proxy
(Abdelfattah et al., ICLR 2021, Eq. 1)::

    score = sum_{Conv/Linear weights} | dL/dW (*) W |
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import loss_gradients, prunable_layers


@register_proxy("snip", reference="Lee et al. 2019 (SNIP) Eq. 6; Abdelfattah et al. 2021 Eq. 1",
                shares_network=True)
def snip(model: nn.Module, batch: Batch) -> float:
    """Sum of |dL/dW * W| over Conv/Linear weights."""
    return snip_of(model, loss_gradients(model, batch))


def snip_of(model: nn.Module, grads: Mapping[int, torch.Tensor | None]) -> float:
    """``sum |g (*) W|`` over Conv/Linear weights, from loss gradients keyed by ``id(param)``."""
    terms = [(g * m.weight.detach()).abs().double().sum() for m in prunable_layers(model)
             if (g := grads.get(id(m.weight))) is not None]
    return float(torch.stack(terms).sum()) if terms else 0.0
