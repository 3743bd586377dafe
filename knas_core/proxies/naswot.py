"""NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021, Eq. 2).

Each ReLU's input gives every sample a binary code ``c_i`` (unit active or not); the kernel
counts agreements, ``K_ij = sum_relu [ c_i.c_j + (1-c_i).(1-c_j) ] = N_A - d_H(c_i, c_j)``,
and the score is ``log |det K|``.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy

# float32 sums of 0/1 products are exact integers below 2**24.
_EXACT_FLOAT32 = 2**24


class HammingKernel:
    """Forward pre-hooks on every ReLU accumulating the NASWOT kernel of one batch.

    Per ReLU with input codes ``c`` of shape ``(n, D)`` (``D`` units) the hook adds
    ``c c^T + (1-c)(1-c)^T = 2 c c^T - r 1^T - 1 r^T + D`` with ``r = diag(c c^T)`` the active
    units per sample: one matrix product, exact in float32 while ``D < 2**24``, accumulated in
    float64. ReLUs that receive the same tensor (the edges leaving one cell node) each count, as
    in the definition, but its product is computed once. A diverged network is detected from
    its output (:meth:`see_output`; NaN and inf reach the logits of these networks) rather than
    by a pass over every activation, and reported by :meth:`logdet`, so the hooks never abort a
    pass that other proxies share.
    """

    def __init__(self, model: nn.Module, n: int, device: torch.device) -> None:
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        if not relus:
            raise ValueError("network has no ReLU")
        self.n = n
        self.kernel = torch.zeros((n, n), dtype=torch.float64, device=device)
        self.finite: torch.Tensor | None = None
        # id(input) -> (input, its term); the input is held so that its id stays unique
        self._terms: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._handles = [m.register_forward_pre_hook(self._accumulate) for m in relus]

    def _accumulate(self, _m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0]
        if id(x) in self._terms and self._terms[id(x)][0] is x:
            self.kernel.add_(self._terms[id(x)][1])
            return
        agree = _code_agreements(x.detach(), self.n)
        active = agree.diagonal()
        term = 2.0 * agree - active[:, None] - active[None, :] + x[0].numel()
        self._terms[id(x)] = (x, term)
        self.kernel.add_(term)

    def see_output(self, output: torch.Tensor) -> None:
        """Record whether the network's output on the batch is finite."""
        self.finite = torch.isfinite(output.detach()).all()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._terms.clear()

    def logdet(self) -> float:
        """``log |det K|``; raises for a diverged network or a singular kernel."""
        if self.finite is None or not bool(self.finite):
            raise FloatingPointError("non-finite network output (diverged network)")
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
            kernel.see_output(model(batch.inputs))
    finally:
        kernel.remove()
    return kernel.logdet()


def _code_agreements(x: torch.Tensor, n: int) -> torch.Tensor:
    """``c c^T`` in float64 for the binary codes ``c = (x > 0)`` of ``x: (n, ...)``, i.e. the
    number of units active for both samples, shape ``(n, n)``; exact integers.

    The unit order does not change the product, so a channels-last activation is read as it
    lies in memory (no copy). On a CPU with AVX-512 (where torch's int8 kernels use VNNI) the
    product is an int8 x int8 -> int32 matrix product (``torch._int_mm``; the bool codes are
    reinterpreted as int8 without a copy), several times faster there than float32; without it
    (e.g. an AVX2 AMD EPYC) the same int8 product was 8x slower than converting the codes to
    float32 for the BLAS product (naswot 1.14 -> 0.30 s per benchmark network at batch 64, one
    thread), so float32 it is (exact below 2**24 units; float64 above).
    """
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        x = x.permute(0, 2, 3, 1)
    codes = (x > 0).reshape(n, -1)
    width = codes.shape[1]
    if codes.device.type == "cpu" and width < 2**31 and _fast_int8():
        try:
            as_int8 = codes.view(torch.int8)
            return torch._int_mm(as_int8, as_int8.T).double()
        except (RuntimeError, AttributeError):  # a torch without the CPU int8 kernel
            pass
    numbers = codes.to(torch.float32 if width < _EXACT_FLOAT32 else torch.float64)
    return (numbers @ numbers.T).double()


@lru_cache(maxsize=1)
def _fast_int8() -> bool:
    """Whether this CPU runs torch's int8 matrix product fast: AVX-512 capability (VNNI)."""
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")
