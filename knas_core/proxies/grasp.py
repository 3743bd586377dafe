"""GraSP (Wang et al., ICLR 2020, Eq. 8), summed as a zero-cost proxy (Abdelfattah et al.,
ICLR 2021, Eq. 2)::

    score = sum_{Conv/Linear weights} -W (*) (H g)

where ``g = dL/dW`` and ``H g`` is the Hessian-gradient product, obtained by differentiating
``z = <stop_grad(g), dL/dW>`` once more (temperature 1, one iteration).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import prunable_layers


@register_proxy("grasp", reference="Wang et al. 2020 (GraSP) Eq. 8; Abdelfattah et al. 2021 Eq. 2",
                shares_network=True)
def grasp(model: nn.Module, batch: Batch) -> float:
    """Sum of -W * (Hessian @ gradient) over Conv/Linear weights."""
    weights = [m.weight for m in prunable_layers(model)]
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    g = [t.detach() for t in torch.autograd.grad(loss, weights, allow_unused=True,
                                                 materialize_grads=True)]
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True,
                                materialize_grads=True)
    z = cast(torch.Tensor, sum((gi * fi).sum() for gi, fi in zip(g, grads)))  # a Tensor: some weights
    hg = torch.autograd.grad(z, weights, allow_unused=True, materialize_grads=True)
    return float(sum((-w.detach() * h).double().sum() for w, h in zip(weights, hg)))
