"""grad_norm (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, Sec. 3):
the sum over Conv/Linear layers of the Euclidean norm of the loss gradient of their weights::

    score = sum_l || dL/dW_l ||_2
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import loss_gradients, prunable_layers


@register_proxy("grad_norm", reference="Abdelfattah et al. 2021, Sec. 3 (grad_norm)",
                shares_network=True)
def grad_norm(model: nn.Module, batch: Batch) -> float:
    """Sum over Conv/Linear layers of ||dL/dW||_2."""
    return grad_norm_of(model, loss_gradients(model, batch))


def grad_norm_of(model: nn.Module, grads: Mapping[int, torch.Tensor | None]) -> float:
    """``sum_l ||g_l||_2`` over Conv/Linear weights, from loss gradients keyed by ``id(param)``."""
    norms = [g.double().norm() for m in prunable_layers(model)
             if (g := grads.get(id(m.weight))) is not None]
    return float(torch.stack(norms).sum()) if norms else 0.0
