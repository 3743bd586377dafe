"""Parameter count, the baseline every zero-cost paper compares against (Abdelfattah et al.
2021, Table 1; NAS-Bench-201's ``params``)."""

from __future__ import annotations

from torch import nn

from knas_core.data import Batch
from knas_core.proxies import register_proxy


@register_proxy("params", needs_labels=False, reference="Abdelfattah et al. 2021, Table 1 (#params)",
                shares_network=True)
def params(model: nn.Module, batch: Batch) -> float:
    """Number of trainable parameters (data-free)."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))
