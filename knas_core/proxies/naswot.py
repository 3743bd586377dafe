"""NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021, Eq. 2).

Each ReLU's input gives every sample a binary code ``c_i`` (unit active or not); the kernel
counts agreements, ``K_ij = sum_relu [ c_i.c_j + (1-c_i).(1-c_j) ] = N_A - d_H(c_i, c_j)``,
and the score is ``log |det K|``.
"""

from __future__ import annotations

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy


@register_proxy("naswot", needs_labels=False, reference="Mellor et al. 2021 (NASWOT), Eq. 2")
def naswot(model: nn.Module, batch: Batch) -> float:
    """log|det K| of the ReLU-code Hamming kernel K_ij = N_A - d_H(c_i, c_j)."""
    n = len(batch)
    kernel = torch.zeros((n, n), dtype=torch.float64, device=batch.inputs.device)

    def accumulate(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        act = inputs[0].detach().reshape(n, -1)
        if not torch.isfinite(act).all():
            raise FloatingPointError("non-finite activation at a ReLU input (diverged network)")
        codes = (act > 0).double()
        kernel.add_(codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T)

    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError("network has no ReLU")
    handles = [m.register_forward_pre_hook(accumulate) for m in relus]
    try:
        with torch.no_grad():
            model(batch.inputs)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel.cpu())
    if sign.item() == 0:
        raise FloatingPointError("NASWOT kernel is singular (duplicate activation codes)")
    return float(logdet)
