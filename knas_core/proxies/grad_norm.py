"""grad_norm (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, Sec. 3):
the sum over Conv/Linear layers of the Euclidean norm of the loss gradient of their weights::

    score = sum_l || dL/dW_l ||_2
"""

from __future__ import annotations

from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import backward_cross_entropy, prunable_layers


@register_proxy("grad_norm", reference="Abdelfattah et al. 2021, Sec. 3 (grad_norm)")
def grad_norm(model: nn.Module, batch: Batch) -> float:
    """Sum over Conv/Linear layers of ||dL/dW||_2."""
    backward_cross_entropy(model, batch)
    return float(sum(m.weight.grad.double().norm() for m in prunable_layers(model)
                     if m.weight.grad is not None))
