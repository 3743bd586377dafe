"""EZNAS: the evolved zero-cost proxy (Akhauri et al., "EZNAS: Evolving Zero-Cost Proxies For
Neural Architecture Scoring", NeurIPS 2022; released program of the IntelLabs repository).

For every ReLU-Conv-BN block ``l`` let ``G_l = d sum(logits) / d A_l`` where ``A_l`` is the
input of the block's ReLU, shape ``(B, C, H, W)``. The program is::

    s_l   = || sigmoid( logdet( sign(G_l) ) ) ||_F      # logdet over each H x W map -> (B, C)
    score = mean_l s_l

``logdet`` is NaN for a map with negative determinant (set to 0 before the sigmoid, as the
released code does) and ``-inf`` for a singular map (the sigmoid sends it to 0). No labels are
used; the paper's batch size on NAS-Bench-201 is 16. Difference from the release: networks keep
PyTorch's default initialisation (shared by all our proxies) instead of Kaiming-normal re-init.
"""

from __future__ import annotations

import torch
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy


def relu_conv_bn_blocks(model: nn.Module) -> list[nn.Sequential]:
    """Sequential blocks made of exactly ReLU, Conv2d, BatchNorm2d (in that order)."""
    blocks = []
    for m in model.modules():
        if isinstance(m, nn.Sequential) and len(m) == 3 and isinstance(m[0], nn.ReLU) \
                and isinstance(m[1], nn.Conv2d) and isinstance(m[2], nn.BatchNorm2d):
            blocks.append(m)
    return blocks


@register_proxy("eznas", needs_labels=False, batch_size=16,
                reference="Akhauri et al. 2022 (EZNAS), released NAS-Bench-201 program",
                shares_network=True)
def eznas(model: nn.Module, batch: Batch) -> float:
    """EZNAS evolved program: mean over ReLU-Conv-BN blocks of ||sigmoid(logdet(sign(dY/dA)))||_F."""
    blocks = relu_conv_bn_blocks(model)
    if not blocks:
        raise ValueError("network has no ReLU-Conv-BN blocks")
    acts: list[torch.Tensor] = []

    def keep_input(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        inputs[0].retain_grad()
        acts.append(inputs[0])

    handles = [b[0].register_forward_pre_hook(keep_input) for b in blocks]
    try:
        model.zero_grad(set_to_none=True)
        model(batch.inputs).sum().backward()
    finally:
        for h in handles:
            h.remove()
    values = []
    for a in acts:
        if a.grad is None or a.dim() != 4 or a.shape[-1] != a.shape[-2]:
            continue
        if not torch.isfinite(a.grad).all():
            raise FloatingPointError("non-finite gradient at a ReLU input (diverged network)")
        logdet = torch.logdet(torch.sign(a.grad).double())
        logdet = torch.nan_to_num(logdet, nan=0.0, posinf=float("inf"), neginf=float("-inf"))
        values.append(torch.linalg.vector_norm(torch.sigmoid(logdet)))
    if not values:
        raise ValueError("no ReLU-Conv-BN block received a gradient")
    return float(torch.stack(values).mean())
