"""NASI: NTK trace norm at initialisation (Shu et al., "NASI: Label- and Data-agnostic Neural
Architecture Search at Initialization", ICLR 2022).

The trace norm of the NTK is approximated (Sec. 3.2) by the squared norm of the gradient of the
mini-batch loss over all parameters::

    T = || 1/b * sum_{x in batch} d L_x / d theta ||_2^2

(the paper's constant ``m / gamma`` does not change rankings and is dropped). The penalised
objective the search maximises (Eq. 6) is ``R = T - mu * max(0, T - nu)``, see
:func:`penalised_trace`. Unlike :mod:`knas_core.proxies.knas`, BatchNorm here uses the
statistics of the whole mini-batch (one ordinary forward pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import overload

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import loss_gradients


@overload
def penalised_trace(trace: torch.Tensor, mu: float, nu: float) -> torch.Tensor: ...
@overload
def penalised_trace(trace: float, mu: float, nu: float) -> float: ...
def penalised_trace(trace: torch.Tensor | float, mu: float, nu: float) -> torch.Tensor | float:
    """NASI's penalised objective ``R = T - mu * max(0, T - nu)`` (Shu et al. 2022, Eq. 6)."""
    if isinstance(trace, torch.Tensor):
        return trace - mu * torch.clamp(trace - nu, min=0.0)
    return trace - mu * max(0.0, trace - nu)


@register_proxy("nasi", reference="Shu et al. 2022 (NASI), Sec. 3.2: NTK trace-norm approximation",
                shares_network=True)
def nasi_trace(model: nn.Module, batch: Batch) -> float:
    """NTK trace-norm approximation: squared norm of the mini-batch loss gradient."""
    return nasi_of(loss_gradients(model, batch))


def nasi_of(grads: Mapping[int, torch.Tensor | None]) -> float:
    """``||g||^2`` over every parameter, from loss gradients keyed by ``id(param)``."""
    terms = [g.double().pow(2).sum() for g in grads.values() if g is not None]
    return float(torch.stack(terms).sum()) if terms else 0.0
