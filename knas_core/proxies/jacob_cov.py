"""jacob_cov (Mellor et al., "Neural Architecture Search without Training", arXiv v1 2020,
Eq. 2; as evaluated by Abdelfattah et al., ICLR 2021).

``J`` stacks the per-sample input gradients ``d sum(f(x_i)) / d x_i`` (shape ``(n, 3*H*W)``);
``Sigma`` is their correlation matrix with eigenvalues ``v``; with ``k = 1e-5``::

    score = - sum_i [ log(v_i + k) + 1 / (v_i + k) ]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy

K = 1e-5


@register_proxy("jacob_cov", needs_labels=False,
                reference="Mellor et al. 2020 (NASWOT arXiv v1) Eq. 2; Abdelfattah et al. 2021",
                shares_network=True)
def jacob_cov(model: nn.Module, batch: Batch) -> float:
    """Score of the correlation spectrum of input Jacobians: -sum(log(v+k) + 1/(v+k))."""
    x = batch.inputs.detach().requires_grad_(True)
    y = model(x)
    (jac,) = torch.autograd.grad(y, x, torch.ones_like(y))  # input gradient only: no weight grads
    return jacob_cov_of(jac)


def jacob_cov_of(jac: torch.Tensor) -> float:
    """The score from input Jacobians ``jac`` of shape ``(n, ...)`` (one row per sample)."""
    rows = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(rows)
    if not np.all(np.isfinite(corr)):
        raise FloatingPointError("input Jacobians have zero variance; correlation undefined")
    v = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(v + K) + 1.0 / (v + K)))
