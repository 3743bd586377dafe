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

# float32 sums of 0/1 products are exact integers below 2**24.
_EXACT_FLOAT32 = 2**24


class HammingKernel:
    """Forward pre-hooks on every ReLU accumulating the NASWOT kernel of one batch.

    Per ReLU with input codes ``c`` of shape ``(n, D)`` (``D`` units) the hook adds
    ``c c^T + (1-c)(1-c)^T = 2 c c^T - r 1^T - 1 r^T + D`` (``r`` = active units per sample):
    one matrix product, exact in float32 while ``D < 2**24``, accumulated in float64. A
    non-finite activation is recorded and reported by :meth:`logdet`, so the hook never
    aborts a pass that other proxies share.
    """

    def __init__(self, model: nn.Module, n: int, device: torch.device) -> None:
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        if not relus:
            raise ValueError("network has no ReLU")
        self.n = n
        self.kernel = torch.zeros((n, n), dtype=torch.float64, device=device)
        self.finite = torch.ones((), dtype=torch.bool, device=device)
        self._handles = [m.register_forward_pre_hook(self._accumulate) for m in relus]

    def _accumulate(self, _m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        act = inputs[0].detach().reshape(self.n, -1)
        self.finite &= torch.isfinite(act).all()
        width = act.shape[1]
        codes = (act > 0).to(torch.float32 if width < _EXACT_FLOAT32 else torch.float64)
        active = codes.sum(dim=1, dtype=torch.float64)
        agree = (codes @ codes.T).double()
        self.kernel.add_(2.0 * agree - active[:, None] - active[None, :] + width)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def logdet(self) -> float:
        """``log |det K|``; raises for a diverged network or a singular kernel."""
        if not bool(self.finite):
            raise FloatingPointError("non-finite activation at a ReLU input (diverged network)")
        sign, logdet = torch.linalg.slogdet(self.kernel.cpu())
        if sign.item() == 0:
            raise FloatingPointError("NASWOT kernel is singular (duplicate activation codes)")
        return float(logdet)


@register_proxy("naswot", needs_labels=False, reference="Mellor et al. 2021 (NASWOT), Eq. 2",
                shares_network=True)
def naswot(model: nn.Module, batch: Batch) -> float:
    """log|det K| of the ReLU-code Hamming kernel K_ij = N_A - d_H(c_i, c_j)."""
    kernel = HammingKernel(model, len(batch), batch.inputs.device)
    try:
        with torch.no_grad():
            model(batch.inputs)
    finally:
        kernel.remove()
    return kernel.logdet()
