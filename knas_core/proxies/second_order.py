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

The second backward of GraSP runs through the backward of every BatchNorm layer. PyTorch's
double backward of a train-mode BatchNorm (``batchnorm_double_backward``) takes some thirty
passes over the layer's tensors and was 42 % of GraSP's second backward on the benchmark
networks (CPU); :func:`twice_differentiable_batchnorm` computes the BatchNorm layers' forward
and first backward with PyTorch's own kernels and their double backward from the closed form
of :class:`_BatchNormBackward` (about a dozen passes): grasp alone at 4.4x a forward+backward
instead of 7.0x (docs/RESULTS.md, Scoring throughput), equal to PyTorch's double backward up to
float rounding (``tests/test_proxies.py``: ``gradgradcheck``, and 1e-10 in float64).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from knas_core.proxies.base import batchnorm_forward, prunable_layers


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


def _per_channel(t: torch.Tensor, dim: int) -> torch.Tensor:
    """A per-channel vector ``(C,)`` as ``(1, C, 1, ...)`` for a tensor of ``dim`` dimensions."""
    return t.view(1, -1, *([1] * (dim - 2)))


class _BatchNormBackward(torch.autograd.Function):
    """The backward of a train-mode BatchNorm, ``(g, x, w) -> (dx, dw, db)``, as a function that
    can be differentiated once more, with its derivative written out.

    Per channel, over the ``m`` values of the batch and positions, with ``r = 1/sqrt(var + eps)``
    and ``xh = (x - mean) * r`` (Ioffe & Szegedy 2015, Sec. 3)::

        dx = w r (g - S(g)/m - xh S(g xh)/m),   dw = S(g xh),   db = S(g)

    where ``S`` sums over the channel's values. For upstream gradients ``u`` (of ``dx``), ``uw``
    (of ``dw``) and ``ub`` (of ``db``), with ``A = S(u g) - S(u) S(g)/m`` and ``k = w r^2 / m``::

        d/dg = w r u + xh (uw - w r S(u xh)/m) + ub - w r S(u)/m
        d/dw = r (A - S(u xh) S(g xh)/m)
        d/dx = k [xh (3 S(u xh) S(g xh)/m - A) - S(g xh) (u - S(u)/m) - S(u xh) (g - S(g)/m)]
               + uw r (g - S(g)/m - xh S(g xh)/m)

    (``d/dx`` differentiates ``r`` and ``xh`` through the batch mean and variance:
    ``dr/dx_i = -r^3 (x_i - mean) / m``). The forward is PyTorch's own kernel
    (``native_batch_norm_backward``), so the first backward is unchanged.
    """

    @staticmethod
    def forward(ctx: Any, g: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,  # ctx: autograd's
                mean: torch.Tensor, invstd: torch.Tensor, eps: float) -> tuple[torch.Tensor, ...]:
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(g, x, weight, mean, invstd)
        return tuple(torch.ops.aten.native_batch_norm_backward(
            g, x, weight, None, None, mean, invstd, True, eps, [True, True, True]))

    @staticmethod
    def backward(ctx: Any, u: torch.Tensor | None, uw: torch.Tensor | None,
                 ub: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        g, x, weight, mean, invstd = ctx.saved_tensors
        n = x.dim()
        dims = [0, *range(2, n)]
        m = x.numel() // x.shape[1]
        r, w = _per_channel(invstd, n), _per_channel(weight, n)
        xh = (x - _per_channel(mean, n)) * r
        s_g = g.sum(dims, keepdim=True)
        s_gx = (g * xh).sum(dims, keepdim=True)
        zero = torch.zeros_like(r)
        s_u = s_ux = a = zero
        if u is not None:
            s_u = u.sum(dims, keepdim=True)
            s_ux = (u * xh).sum(dims, keepdim=True)
            a = (u * g).sum(dims, keepdim=True) - s_u * s_g / m
        uw_c = zero if uw is None else _per_channel(uw, n)
        d_g = d_x = d_w = None
        if ctx.needs_input_grad[0]:
            d_g = xh * (uw_c - w * r * s_ux / m)
            if u is not None:
                d_g.addcmul_(u, w * r)
            d_g.add_((zero if ub is None else _per_channel(ub, n)) - w * r * s_u / m)
        if ctx.needs_input_grad[1]:
            k = w * r * r / m
            d_x = xh * (k * (3 * s_ux * s_gx / m - a) - uw_c * r * s_gx / m)
            if u is not None:
                d_x.addcmul_(u, -k * s_gx)
            d_x.addcmul_(g, uw_c * r - k * s_ux)
            d_x.add_(k * (s_gx * s_u + s_ux * s_g) / m - uw_c * r * s_g / m)
        if ctx.needs_input_grad[2] and u is not None:
            d_w = (r * (a - s_ux * s_gx / m)).view(-1)
        return d_g, d_x, d_w, None, None, None


class _BatchNormTrain(torch.autograd.Function):
    """A train-mode BatchNorm (batch statistics; running statistics neither read nor written)
    whose backward is :class:`_BatchNormBackward`, so that a ``create_graph`` backward through
    it can be differentiated with the written-out double backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,  # ctx: autograd's
                eps: float) -> torch.Tensor:
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        if g is None:
            return None, None, None, None
        x, weight, mean, invstd = ctx.saved_tensors
        dx, dw, db = _BatchNormBackward.apply(g, x, weight, mean, invstd, ctx.eps)
        return dx, dw, db, None


def _twice_differentiable_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn`` in train mode through :class:`_BatchNormTrain` (the same values as ``bn(x)``)."""
    channels = x.shape[1]
    if x.numel() // channels == 1:
        raise ValueError("Expected more than 1 value per channel when training, got input size "
                         f"{list(x.shape)}")
    weight = bn.weight if bn.weight is not None else x.new_ones(channels)
    bias = bn.bias if bn.bias is not None else x.new_zeros(channels)
    return _BatchNormTrain.apply(x, weight, bias, bn.eps)


@contextmanager
def twice_differentiable_batchnorm(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every train-mode BatchNorm layer of ``model`` computes its output and
    its first backward with PyTorch's kernels (the same values) and its double backward with
    :class:`_BatchNormBackward`; running statistics are neither read nor written (they do not
    affect a train-mode output). The layers are restored on exit."""
    with batchnorm_forward(model, _twice_differentiable_norm):
        yield model
