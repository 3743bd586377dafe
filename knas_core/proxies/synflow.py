"""SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively conserving
synaptic flow", NeurIPS 2020, Eq. 2), as a zero-cost proxy (Abdelfattah et al., ICLR 2021)::

    R = 1^T ( prod_l |W_l| ) 1,   score = sum_{Conv/Linear weights} | dR/dW (*) W |

computed in float64 with every parameter replaced by its absolute value, BatchNorm removed
(replaced by identity), and a single all-ones input of the batch's image shape. Data-free.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import prunable_layers


def without_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every BatchNorm layer replaced by ``nn.Identity``."""
    clone = copy.deepcopy(model)
    for parent in clone.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())
    return clone


@register_proxy("synflow", needs_labels=False,
                reference="Tanaka et al. 2020 (SynFlow) Eq. 2; Abdelfattah et al. 2021")
def synflow(model: nn.Module, batch: Batch) -> float:
    """Sum of |dR/dW * W| with R the all-ones-input output of the |W| network (no BN, float64)."""
    net = without_batchnorm(model).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *batch.inputs.shape[1:]), dtype=torch.float64, device=batch.inputs.device)
    net(ones).sum().backward()
    return float(sum((m.weight.grad * m.weight.detach()).abs().sum() for m in prunable_layers(net)
                     if m.weight.grad is not None))
