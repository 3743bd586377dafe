"""NASI one-shot search (Shu et al., "NASI: Label- and Data-agnostic Neural Architecture Search
at Initialization", ICLR 2022, Sec. 4 / Algorithm 1).

A supernet holds every operation on each of the cell's 6 edges; architecture logits
``alpha`` (6 x 5) start at ``alpha_0 = 0``. For ``t = 1..T``: draw a mini-batch and Gumbel noise
``g_t``, mix the operations with ``softmax((alpha_0 + g_t) / tau)``, and take
``G_t = d R / d alpha`` of the penalised NTK trace ``R = T - mu * max(0, T - nu)``, where
``T = || d L / d theta ||^2`` is the trace-norm approximation at initialisation (the supernet's
weights ``theta`` are never trained). Then::

    alpha* = alpha_0 + (xi / T) * sum_t G_t / max_{s <= t} ||G_s||

and the architecture takes the arg-max operation on every edge.

Defaults: T = 100, batch 64, mu = 2, xi = 1 (the paper's DARTS settings). Two choices are ours,
because the paper's appendix was not available to us: the soft (not straight-through)
Gumbel-softmax with temperature ``tau = 1``, and, when ``nu`` is not given, ``nu`` set to the
trace of the uniformly mixed supernet on the first batch (the penalty then keeps the search
away from architectures whose trace exceeds the average one, the role the paper gives ``nu``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
import torch.nn.functional as F

from knas_core.models.nb201 import Cell, NB201SuperNetwork
from knas_core.proxies.nasi import penalised_trace
from knas_core.scoring import seed_everything
from knas_core.search import register_strategy
from knas_core.search.base import ProgressFn, ProgressStage, SearchContext, Strategy
from knas_core.spaces.base import SearchSpace
from knas_core.spaces.nb201 import OPS, NB201Space, format_arch


def trace_norm(net: NB201SuperNetwork, x: torch.Tensor, y: torch.Tensor,
               weights: torch.Tensor) -> torch.Tensor:
    """``|| d CE / d theta ||^2`` as a differentiable function of the mixing ``weights``."""
    params = [p for p in net.parameters() if p.requires_grad]
    loss = F.cross_entropy(net(x, weights), y)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    # a Tensor: some parameter always reaches the loss (sum() of nothing would be the int 0)
    return cast(torch.Tensor, sum((g ** 2).sum() for g in grads if g is not None))


def nasi_alpha(net: NB201SuperNetwork, batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
               steps: int = 100, mu: float = 2.0, nu: float | None = None, xi: float = 1.0,
               tau: float = 1.0, seed: int = 0, progress: ProgressFn | None = None) -> torch.Tensor:
    """Run Algorithm 1; ``batches(t)`` returns the ``(x, y)`` of step ``t``. Returns ``alpha*``."""
    device = next(net.parameters()).device
    alpha0 = torch.zeros(len(Cell.EDGES), len(OPS), device=device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    total = torch.zeros_like(alpha0)
    largest = 0.0
    for t in range(steps):
        x, y = batches(t)
        if nu is None:
            with torch.enable_grad():
                uniform = torch.full_like(alpha0, 1.0 / len(OPS))
                nu = float(trace_norm(net, x, y, uniform).detach())
        gumbel = -torch.log(-torch.log(torch.rand(alpha0.shape, generator=gen).clamp_min(1e-20))).to(device)
        alpha = alpha0.clone().requires_grad_(True)
        weights = F.softmax((alpha + gumbel) / tau, dim=-1)
        r = penalised_trace(trace_norm(net, x, y, weights), mu, nu)
        (g,) = torch.autograd.grad(r, alpha)
        largest = max(largest, float(g.norm()))
        if largest > 0:
            total += g / largest
        if progress is not None:
            progress(ProgressStage.NASI, t + 1, steps)
    return alpha0 + xi / steps * total


@register_strategy("nasi")
@dataclass
class NASISearch(Strategy):
    steps: int = 100
    batch_size: int = 64
    mu: float = 2.0
    nu: float | None = None
    xi: float = 1.0
    tau: float = 1.0
    C: int = 16
    N: int = 5
    topk: int = 1
    samples: int = 0
    name: str = "nasi"
    uses_proxies: ClassVar[bool] = False

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        if not isinstance(space, NB201Space):
            raise ValueError(f"nasi optimises a NAS-Bench-201 supernet and searches only space 'nb201', "
                             f"not {space.name!r}")

    def search(self, ctx: SearchContext) -> tuple[str, float | None, list[str]]:
        batch = ctx.batch
        if batch is None:
            raise ValueError("NASI needs data: the search context has no batch source")
        first = batch(self.batch_size, ctx.seed)
        seed_everything(ctx.seed)
        net = NB201SuperNetwork(OPS, num_classes=first.num_classes, C=self.C, N=self.N).to(ctx.device).train()

        def batches(t: int) -> tuple[torch.Tensor, torch.Tensor]:
            b = first if t == 0 else batch(self.batch_size, ctx.seed + t)
            return b.inputs.to(ctx.device), b.targets.to(ctx.device)

        alpha = nasi_alpha(net, batches, self.steps, self.mu, self.nu, self.xi, self.tau, ctx.seed,
                           ctx.progress)
        arch = format_arch([OPS[int(i)] for i in alpha.argmax(dim=-1)])
        ctx.evaluate(arch)
        return arch, None, [arch]
