"""What the released KNAS code computes on NAS-Bench-201 (Xu et al., ICML 2021; repository
``Jingjing-NLP/KNAS``, ``exps/NAS-Bench-201/functions.py``, function ``procedure``).

This is *not* the paper's mean Gram matrix; it reproduces the shipped procedure:

1. 50 training samples, one at a time (batch size 1, network in train mode, cross-entropy).
2. For each sample, walk ``named_parameters()`` in order and keep the first 11 gradient
   tensors with at least 50 elements (stem conv, then the earliest cells' convs; BN
   parameters are too small); store the first 100 entries of each flattened gradient.
3. The score only reads entries ``0..49`` of each stored vector: for tensor ``t`` and entry
   ``i``, ``a`` = that entry over samples 0..24, ``b`` over samples 25..49, and::

       score = sum_t sum_{i<50} <a - mean(a), b - mean(b)> / 2500

   a centred cross-product between the two halves (an unnormalised covariance).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy

SAMPLES = 50
MAX_TENSORS = 11
MIN_ELEMENTS = 50
STORED_ENTRIES = 100
USED_ENTRIES = 50


@register_proxy("knas_official", batch_size=SAMPLES,
                reference="KNAS released code (functions.py::procedure), NAS-Bench-201 experiments",
                shares_network=True)
def knas_official(model: nn.Module, batch: Batch) -> float:
    """Released-code KNAS score: centred cross-product of two halves of 25 batch-size-1 gradients."""
    if len(batch) < SAMPLES:
        raise ValueError(f"knas_official needs {SAMPLES} samples, got {len(batch)}")
    rows: list[torch.Tensor] = []  # per sample: (tensors, STORED_ENTRIES)
    for k in range(SAMPLES):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch.inputs[k:k + 1]), batch.targets[k:k + 1]).backward()
        kept = [p.grad.reshape(-1)[:STORED_ENTRIES]
                for p in model.parameters()
                if p.grad is not None and p.numel() >= MIN_ELEMENTS][:MAX_TENSORS]
        rows.append(torch.stack([F.pad(g, (0, STORED_ENTRIES - g.numel())) for g in kept]))
    grads = torch.stack(rows).double()[:, :, :USED_ENTRIES]  # (50, tensors, 50)
    half = SAMPLES // 2
    a, b = grads[:half], grads[half:]
    a = a - a.mean(dim=0, keepdim=True)
    b = b - b.mean(dim=0, keepdim=True)
    return float((a * b).sum() / (SAMPLES * SAMPLES))
