"""A plugin proxy for the plugin tests (entry point ``knas.proxies``:
``toy_width = tests.plugins.toy_proxy``)."""

from __future__ import annotations

from torch import nn

from knas_core.proxies import register_proxy


@register_proxy("toy_width", needs_labels=False, shares_network=True,
                reference="test plugin: the number of trainable parameters, in thousands")
def toy_width(model: nn.Module, batch: object) -> float:
    """Thousands of trainable parameters (a stand-in for a real proxy)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1000.0
