"""A plugin for failure tests: proxies that fail the way real ones do (KNAS_PLUGINS=tests.plugins.faulty)."""

import torch

from knas_core.proxies import register_proxy


@register_proxy("oom_proxy", reference="test plugin: simulates CUDA running out of memory")
def oom_proxy(model, batch):
    """Always raises torch.cuda.OutOfMemoryError, as a too-large batch on a GPU would."""
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
