"""KNAS: the mean gradient kernel (Xu et al., "KNAS: Green Neural Architecture Search", ICML 2021).

For per-sample loss gradients ``g_i = d l(f(x_i; theta), y_i) / d theta`` over *all* parameters,
the Gram matrix is ``H_ij = <g_i, g_j>`` (Sec. 3, Eq. 4) and the score is its mean entry
(the "MGM" hypothesis, Sec. 3.2)::

    score = 1/n^2 * sum_ij <g_i, g_j> = || 1/n * sum_i g_i ||^2

Per-sample means each sample is its own forward pass, as in the released code (batch size 1):
BatchNorm normalises a sample by its own statistics. Two equivalent forms are provided:

* :func:`knas_gram` builds the ``(n, n)`` Gram matrix from per-sample gradients
  (``torch.func.vmap`` over ``torch.func.grad``): O(n * P) memory.
* :func:`knas_mean_gradient` (the registered proxy) back-propagates the mean of the per-sample
  losses once and returns the squared norm of that mean gradient: O(P) memory. It runs one
  ordinary batched forward/backward pass in which every BatchNorm layer normalises each sample
  by its own statistics (:func:`per_sample_batchnorm`: a train-mode BatchNorm pass of batch
  size 1 is instance normalisation with the layer's affine parameters), so it costs one
  forward+backward of the batch, and leaves the network as it found it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vmap

from knas_core.data import Batch
from knas_core.proxies import register_proxy
from knas_core.proxies.base import batchnorm_forward


def _per_sample_loss(model: nn.Module) -> Callable[[dict, dict, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(params, buffers, x, y)`` for one sample ``x: (3, H, W)``, ``y: ()``."""

    def loss(params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (params, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    return loss


class _ChannelsLastInstanceNorm(torch.autograd.Function):
    """Instance normalisation with a per-channel affine, for ``(n, C, H, W)`` tensors in
    channels-last memory, returned in the same layout.

    Per sample ``i`` and channel ``c`` over the ``m = H*W`` positions (biased variance, as a
    train-mode BatchNorm of batch size 1)::

        mean = sum(x) / m,   d = x - mean,   rstd = (sum(d^2) / m + eps)^(-1/2)
        y = w_c * rstd * d + b_c

    and, for an upstream gradient ``g`` with ``a = w_c * rstd`` (the BatchNorm backward of
    Ioffe & Szegedy 2015, Sec. 3, over the positions of one sample)::

        dx = a * (g - sum(g)/m - d * rstd^2 * sum(g*d)/m)
        dw = sum_i rstd * sum(g*d),   db = sum_i sum(g)

    PyTorch's ``instance_norm`` reshapes to a contiguous ``(1, n*C, H, W)`` tensor, so on the
    channels-last activations that CPU (oneDNN) convolutions produce it converts every
    normalisation's input, output and gradients between layouts; and its CPU variance
    (Welford) is many times slower than the two plain reductions used here. Written with
    ordinary tensor ops, both passes stay in the input's layout (docs/RESULTS.md: knas at
    1.08x a forward+backward instead of 1.55x). It equals ``instance_norm`` to float rounding
    (``tests/test_proxies.py``: to 1e-12 in float64, values and gradients).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None,  # ctx: autograd's context
                bias: torch.Tensor | None, eps: float) -> torch.Tensor:
        m = x.shape[2] * x.shape[3]
        d = x - x.sum(dim=(2, 3), keepdim=True) / m
        rstd = torch.rsqrt((d * d).sum(dim=(2, 3), keepdim=True) / m + eps)
        a = rstd if weight is None else rstd * weight.view(1, -1, 1, 1)
        y = d * a
        if bias is not None:
            y.add_(bias.view(1, -1, 1, 1))
        ctx.save_for_backward(d, rstd, a)
        ctx.affine = (weight is not None, bias is not None)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        d, rstd, a = ctx.saved_tensors
        m = d.shape[2] * d.shape[3]
        sum_g = g.sum(dim=(2, 3), keepdim=True)                  # (n, C, 1, 1)
        sum_g_xhat = rstd * (g * d).sum(dim=(2, 3), keepdim=True)  # sum of g * normalised x
        dx = None
        if ctx.needs_input_grad[0]:
            dx = (g * a).addcmul_(d, a * rstd * sum_g_xhat / -m).add_(a * sum_g / -m)
        has_weight, has_bias = ctx.affine
        dw = sum_g_xhat.sum(dim=0).view(-1) if has_weight and ctx.needs_input_grad[1] else None
        db = sum_g.sum(dim=0).view(-1) if has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db, None


def _per_sample_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn`` applied to every sample of ``x: (n, C, *spatial)`` as a batch of one.

    A train-mode BatchNorm over one sample normalises each channel by the mean and biased
    variance over its spatial positions, i.e. instance normalisation with the layer's affine
    parameters; running statistics are neither read nor written (they do not affect a
    train-mode output). Channels-last ``(n, C, H, W)`` inputs (CPU convolutions) take
    :class:`_ChannelsLastInstanceNorm`, others PyTorch's ``instance_norm``.
    """
    if x.dim() <= 2:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"{list(x.shape[1:])} per sample")
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return _ChannelsLastInstanceNorm.apply(x, bn.weight, bn.bias, bn.eps)
    return F.instance_norm(x, None, None, bn.weight, bn.bias, use_input_stats=True, eps=bn.eps)


@contextmanager
def per_sample_batchnorm(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every train-mode BatchNorm layer of ``model`` normalises each sample by
    its own statistics (as a batch-size-1 pass does); the layers are restored on exit."""
    with batchnorm_forward(model, _per_sample_norm):
        yield model


def _prepare(model: nn.Module) -> tuple[dict, dict]:
    """Parameters and buffers for ``torch.func``; modifies ``model``'s BatchNorm layers."""
    # BN running-statistics updates are in-place writes that vmap cannot batch; dropping them
    # leaves BN in train mode using each sample's own statistics, as a batch-size-1 pass does.
    replace_all_batch_norm_modules_(model)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    return params, buffers


def per_sample_gradients(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Flattened per-sample gradients, shape ``(n, P)`` with ``P`` = number of parameters."""
    params, buffers = _prepare(model)
    grads = vmap(grad(_per_sample_loss(model)), in_dims=(None, None, 0, 0))(
        params, buffers, batch.inputs, batch.targets)
    n = len(batch)
    return torch.cat([g.reshape(n, -1) for g in grads.values()], dim=1)


def gradient_gram(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The ``(n, n)`` Gram matrix ``H_ij = <g_i, g_j>`` of per-sample loss gradients (Eq. 4)."""
    g = per_sample_gradients(model, batch).double()
    return g @ g.T


def knas_gram(model: nn.Module, batch: Batch) -> float:
    """KNAS score as the mean entry of the gradient Gram matrix (Gram form)."""
    return float(gradient_gram(model, batch).mean())


@register_proxy("knas", reference="Xu et al. 2021 (KNAS), Sec. 3.2: mean of the gradient Gram matrix",
                shares_network=True)
def knas_mean_gradient(model: nn.Module, batch: Batch) -> float:
    """KNAS mean gradient kernel ||mean_i g_i||^2 (one backward pass over per-sample losses)."""
    params = [p for p in model.parameters() if p.requires_grad]
    with per_sample_batchnorm(model):
        loss = F.cross_entropy(model(batch.inputs), batch.targets)  # mean of per-sample losses
    mean_grad = torch.autograd.grad(loss, params, allow_unused=True)
    terms = [g.double().pow(2).sum() for g in mean_grad if g is not None]
    return float(torch.stack(terms).sum()) if terms else 0.0
