"""The steps of ``grasp`` and ``fisher`` that follow a loss backward, so that the shared passes
(:mod:`knas_core.proxies.shared`) and the proxies on their own compute them alike.

* **GraSP** (Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient Flow",
  ICLR 2020, Eq. 8; summed over the network as a zero-cost proxy by Abdelfattah et al.,
  "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, Eq. 2)::

      score = sum_{Conv/Linear weights} -W (*) (H g),   H g = d/dW < stop_grad(g), g >

  with ``g = dL/dW`` of the mean cross-entropy (temperature 1, one iteration).
  :func:`hessian_gradient_product` takes ``g`` from a backward run with ``create_graph=True``
  and differentiates ``<stop_grad(g), g>`` once more: the same ``g`` is both the constant
  vector and the differentiated gradient (the released code computes the constant in a first,
  separate forward+backward of the same batch and network, which gives the same values).
  Taken over all parameters, that one backward also gives the loss gradients of ``nasi``,
  ``grad_norm`` and ``snip``.
* **Fisher** of activations (Theis et al., "Faster gaze prediction with dense networks and
  Fisher pruning", 2018, Eq. 4; Turner et al., "BlockSwap", ICLR 2020; per weight, as
  Abdelfattah et al. 2021 Sec. 3 and their released code)::

      F_{l,c} = 1/2 * mean_n ( sum_{h,w} a_{nchw} * dL/da_{nchw} )^2
      score   = sum_l sum_c |F_{l,c}| * fan_in_l

  needs the outputs ``a`` of every Conv/Linear layer (recorded by :class:`LayerOutputs` during
  the forward) and their loss gradients, which ``torch.autograd.grad`` returns from the same
  loss backward as the parameter gradients when the outputs are among its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from knas_core.proxies.base import prunable_layers


def hessian_gradient_product(weights: Sequence[torch.Tensor],
                             grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """``H g = d/dW <stop_grad(g), g>`` for GraSP (Wang et al. 2020, Eq. 8).

    Args:
        weights: the Conv/Linear weights.
        grads: ``dL/dW`` of each weight from a backward with ``create_graph=True`` (so they can
            be differentiated again), or ``None`` for a weight the loss does not reach.

    Returns:
        ``H g`` per weight; zeros where the loss does not reach a weight. The graph of ``grads``
        is freed.
    """
    terms = [(g.detach() * g).sum() for g in grads if g is not None]
    z = torch.stack(terms).sum() if terms else None
    if z is None or not z.requires_grad:  # <g, g> does not depend on W: H g = 0
        return [torch.zeros_like(w) for w in weights]
    return list(torch.autograd.grad(z, list(weights), allow_unused=True, materialize_grads=True))


def grasp_of(weights: Sequence[torch.Tensor], hg: Sequence[torch.Tensor]) -> float:
    """``sum -W (*) H g`` over the weights, summed in float64 (Abdelfattah et al. 2021, Eq. 2)."""
    return float(sum((-w.detach() * h).double().sum() for w, h in zip(weights, hg, strict=True)))


class LayerOutputs:
    """Forward hooks that record every output of the Conv/Linear layers of ``model``, in call
    order (a layer called twice records both calls); :meth:`remove` takes the hooks off."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = list(prunable_layers(model))
        self.calls: list[tuple[nn.Module, torch.Tensor]] = []
        self._handles = [m.register_forward_hook(self._keep) for m in self.layers]

    def _keep(self, module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self.calls.append((module, output))

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The recorded outputs, to pass to ``torch.autograd.grad`` as inputs."""
        return [out for _, out in self.calls]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def channel_fisher(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``F_c = 0.5 * mean_n (sum_hw a * dL/da)^2`` of a layer output ``act`` (N, C[, H, W])
    and its gradient; shape (C,), float64."""
    prod = (act.detach() * grad).double()
    per_sample = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
    return 0.5 * per_sample.pow(2).mean(dim=0)


def fisher_of(outputs: LayerOutputs, grads: Sequence[torch.Tensor | None]) -> float:
    """``sum_l sum_c |F_{l,c}| * fan_in_l`` from the recorded layer outputs and their loss
    gradients (``grads[i]`` for ``outputs.calls[i]``; ``None`` where the loss does not reach
    an output: such a layer adds zero, as in the released code)."""
    per_layer: dict[int, list[torch.Tensor]] = {}
    for (module, act), grad in zip(outputs.calls, grads, strict=True):
        if grad is not None:
            per_layer.setdefault(id(module), []).append(channel_fisher(act, grad.detach()))
    total = torch.zeros((), dtype=torch.float64)
    for m in outputs.layers:
        if id(m) in per_layer:
            per_channel = torch.stack(per_layer[id(m)]).sum(0)
            total = total + (per_channel.abs().sum() * m.weight[0].numel()).cpu()
    return float(total)
