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
because the paper's appendix (B.1: how ``nu`` is determined; B.3: how ``A_t`` is drawn) was not
available to us; each has the alternative the paper's main text supports as an option:

* sampling: by default the soft Gumbel-softmax ``softmax((alpha_0 + g_t) / tau)``, ``tau = 1``;
  ``hard=True`` draws the architecture itself (Algorithm 1, line 4: "determine sampled
  architecture ``A_t`` based on ``alpha_0, g_t``"): the forward pass uses the one-hot
  ``argmax(alpha_0 + g_t)`` and the gradient the soft relaxation (straight-through), see
  :func:`gumbel_weights`.
* ``nu``: by default, when ``nu`` is not given, the trace of the uniformly mixed supernet on the
  first batch (:func:`uniform_supernet_nu`; the penalty then keeps the search away from
  architectures whose trace exceeds the average one, the role the paper gives ``nu``); with
  ``eta`` given, the paper's definition ``nu = gamma * n / eta`` (Sec. 3.3, before Eq. 13), see
  :func:`nu_from_learning_rate`.
"""

from __future__ import annotations

import math
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


#: Lipschitz constant ``gamma`` of softmax cross-entropy in the logits ``f``:
#: ``|| d CE / d f ||_2 = || softmax(f) - e_y ||_2 <= sqrt(2)`` (reached as the softmax puts all
#: its mass on one wrong class).
CE_LIPSCHITZ = math.sqrt(2.0)


def gumbel_weights(alpha: torch.Tensor, gumbel: torch.Tensor, tau: float = 1.0,
                   hard: bool = False) -> torch.Tensor:
    """Mixing weights of one Gumbel-softmax draw (Shu et al. 2022, Sec. 3.3, Eq. 15; Jang et al.,
    ICLR 2017), one row per edge.

    Soft: ``y = softmax((alpha + g) / tau)``. Hard (straight-through): the forward value is the
    one-hot ``argmax(alpha + g)`` (a sampled architecture), the gradient that of ``y``, i.e.
    ``one_hot - y.detach() + y``: what ``torch.nn.functional.gumbel_softmax(hard=True)``
    returns for the same noise ``g`` (the noise is passed in so that both modes see the same
    draws from the search's own generator).
    """
    soft = F.softmax((alpha + gumbel) / tau, dim=-1)
    if not hard:
        return soft
    one_hot = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
    return one_hot - soft.detach() + soft


def nu_from_learning_rate(eta: float, num_classes: int, gamma: float = CE_LIPSCHITZ) -> float:
    """The paper's constraint constant ``nu = gamma * n / eta`` (Shu et al. 2022, Sec. 3.3, the
    definition before Eq. 13): the condition ``eta < 1 / lambda_max`` of Proposition 1 gives
    ``||Theta_0||_tr < m n / eta`` (Eq. 8), and with ``||Theta_0||_tr ~ (m / gamma) T`` (Eq. 12)
    the bound on the trace-norm approximation ``T`` is ``gamma n / eta``.

    ``eta`` is the learning rate the found architecture is trained with (NAS-Bench-201: 0.1),
    ``n`` the output dimension (classes), ``gamma`` the Lipschitz constant of the loss in the
    outputs (softmax cross-entropy: :data:`CE_LIPSCHITZ`). The bound is derived for the NTK
    parameterisation (Jacot et al. 2018); our supernet uses PyTorch's standard one, so the
    scale of ``T`` against this ``nu`` is not the paper's.
    """
    if eta <= 0 or not math.isfinite(eta):
        raise ValueError(f"eta (the training learning rate) must be a finite number > 0, got {eta!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
    return gamma * num_classes / eta


def uniform_supernet_nu(net: NB201SuperNetwork, x: torch.Tensor, y: torch.Tensor) -> float:
    """Our default ``nu`` (not the paper's): the trace norm ``T`` of the supernet with every
    operation weighted ``1/5`` on the batch ``(x, y)``."""
    uniform = torch.full((len(Cell.EDGES), len(OPS)), 1.0 / len(OPS), device=x.device)
    with torch.enable_grad():
        return float(trace_norm(net, x, y, uniform).detach())


def nasi_alpha(net: NB201SuperNetwork, batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
               steps: int = 100, mu: float = 2.0, nu: float | None = None, xi: float = 1.0,
               tau: float = 1.0, seed: int = 0, progress: ProgressFn | None = None,
               hard: bool = False) -> torch.Tensor:
    """Run Algorithm 1; ``batches(t)`` returns the ``(x, y)`` of step ``t``. Returns ``alpha*``.

    ``nu=None``: :func:`uniform_supernet_nu` on the first batch. ``hard``: straight-through
    sampling (:func:`gumbel_weights`)."""
    device = next(net.parameters()).device
    alpha0 = torch.zeros(len(Cell.EDGES), len(OPS), device=device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    total = torch.zeros_like(alpha0)
    largest = 0.0
    for t in range(steps):
        x, y = batches(t)
        if nu is None:
            nu = uniform_supernet_nu(net, x, y)
        gumbel = -torch.log(-torch.log(torch.rand(alpha0.shape, generator=gen).clamp_min(1e-20))).to(device)
        alpha = alpha0.clone().requires_grad_(True)
        weights = gumbel_weights(alpha, gumbel, tau, hard)
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
    hard: bool = False
    eta: float | None = None
    C: int = 16
    N: int = 5
    topk: int = 1
    samples: int = 0
    name: str = "nasi"
    uses_proxies: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.hard = bool(self.hard)  # a config stores the flag as 0 / 1
        if self.nu is not None and self.eta is not None:
            raise ValueError("give nu or eta (nu = sqrt(2) * classes / eta), not both")

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

        nu = self.nu if self.eta is None else nu_from_learning_rate(self.eta, first.num_classes)
        alpha = nasi_alpha(net, batches, steps=self.steps, mu=self.mu, nu=nu, xi=self.xi, tau=self.tau,
                           seed=ctx.seed, progress=ctx.progress, hard=self.hard)
        arch = format_arch([OPS[int(i)] for i in alpha.argmax(dim=-1)])
        ctx.evaluate(arch)
        return arch, None, [arch]
