"""SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively conserving
synaptic flow", NeurIPS 2020, Eq. 2), as a zero-cost proxy (Abdelfattah et al., ICLR 2021)::

    R = 1^T ( prod_l |W_l| ) 1,   score = sum_{Conv/Linear weights} | dR/dW (*) W |

computed in float64 with every parameter replaced by its absolute value, BatchNorm removed
(replaced by identity), and a single all-ones input of the batch's image shape. Data-free.

The network is not copied: its BatchNorm layers are swapped for identities for the duration of
the call, and the float64 absolute weights are fed through ``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import prunable_layers


@contextmanager
def batchnorm_removed(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block every BatchNorm layer of ``model`` is ``nn.Identity``; restored on exit."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.modules.batchnorm._BatchNorm):
                    swapped.append((parent, name, child))
                    setattr(parent, name, nn.Identity())
        yield model
    finally:
        for parent, name, child in reversed(swapped):
            setattr(parent, name, child)


@register_proxy("synflow", needs_labels=False,
                reference="Tanaka et al. 2020 (SynFlow) Eq. 2; Abdelfattah et al. 2021",
                shares_network=True)
def synflow(model: nn.Module, batch: Batch) -> float:
    """Sum of |dR/dW * W| with R the all-ones-input output of the |W| network (no BN, float64)."""
    with batchnorm_removed(model):
        names = {id(m.weight) for m in prunable_layers(model)}
        abs_params = {k: p.detach().abs().double().requires_grad_(True)
                      for k, p in model.named_parameters()}
        buffers = {k: b.double() if b.is_floating_point() else b for k, b in model.named_buffers()}
        weights = {k: abs_params[k] for k, p in model.named_parameters() if id(p) in names}
        ones = torch.ones((1, *batch.inputs.shape[1:]), dtype=torch.float64, device=batch.inputs.device)
        r = functional_call(model, (abs_params, buffers), (ones,)).sum()
    grads = torch.autograd.grad(r, list(weights.values()), allow_unused=True)
    terms = [(g * w.detach()).abs().sum() for g, w in zip(grads, weights.values(), strict=True)
             if g is not None]
    return float(torch.stack(terms).sum()) if terms else 0.0
